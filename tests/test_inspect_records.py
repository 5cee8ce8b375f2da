"""`inspect` (human output) shows what a job was made with: the model, the resolution, the seed and
every input image (a URL with its credentials masked, a local file as name, size and sha256), and
nothing it does not know as `?`."""

from __future__ import annotations

import hashlib

from .test_sandbox_family import RED, picture
from .test_sanitise import HOSTILE, assert_clean, crafted_png


def field_lines(stdout: str) -> dict[str, str]:
    """`  model:      x` lines of the report, by their label."""
    found = {}
    for line in stdout.splitlines():
        label, _, value = line.strip().partition(":")
        if line.startswith("  ") and value.startswith(" ") and label not in found:
            found[label] = value.strip()
    return found


def test_inspect_shows_the_model_resolution_and_seed_of_a_generated_image(cli, sandbox, tmp_path):
    made = cli("generate", "a fox", "--model", "nano-banana-2", "--resolution", "2K", "-a", "1:1", "--seed", "5",
               "-q", "-o", tmp_path)
    assert made.exit_code == 0, made.stderr
    run = cli("inspect", made.stdout.split()[0])
    assert run.exit_code == 0, run.stderr
    fields = field_lines(run.stdout)
    assert fields["model"] == "nano-banana-2 (google/nano-banana-2/text-to-image)"
    assert fields["input"] == "1:1 2K, seed 5; image 1 of 1"
    assert "?" not in run.stdout


def test_inspect_lists_every_local_input_of_an_edit_by_name_size_and_hash(cli, sandbox, tmp_path):
    inputs = []
    for name, size in (("a.png", 16), ("b.png", 24), ("c.png", 32)):
        path = tmp_path / name
        path.write_bytes(picture(RED, size=(size, size)))
        inputs += ["-i", str(path)]
    made = cli("edit", "p", *inputs, "-q", "-o", tmp_path / "out")
    assert made.exit_code == 0, made.stderr
    run = cli("inspect", made.stdout.split()[0])
    assert run.exit_code == 0, run.stderr
    assert field_lines(run.stdout)["model"] == "nano-banana (google/nano-banana/edit)"
    shown = [line for line in run.stdout.splitlines() if ". " in line and ".png (" in line]
    expected = []
    for number, name in enumerate(("a.png", "b.png", "c.png"), 1):
        data = (tmp_path / name).read_bytes()
        expected.append(f"{number}. {name} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}…)")
    assert [line.split("  ")[-1].strip() for line in shown] == expected
    assert shown[0].startswith("  images in:  1. ")
    assert "?" not in run.stdout and "base64" not in run.stdout


def test_inspect_masks_credentials_in_a_recorded_url_and_never_shows_image_data(cli, tmp_path):
    image = crafted_png(tmp_path / "gift.png", {
        "prompt": "a fox", "model": f"acme/model{HOSTILE}", "resolution": HOSTILE,
        "image_urls": [
            {"url": "https://alice:hunter2@images.example/a.png"},
            {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"},
            {"file": f"b{HOSTILE}.png", "bytes": 12, "sha256": "ab" * 32},
        ],
    })
    run = cli("inspect", image)
    assert run.exit_code == 0, run.stderr
    assert_clean(run.stdout, run.stderr)
    assert "hunter2" not in run.stdout and "alice" not in run.stdout
    assert "https://***@images.example/a.png" in run.stdout
    assert "iVBORw0KGgo" not in run.stdout and "data:image/png;base64,… (image data, not shown)" in run.stdout
    assert "b\\x1b]0;pwned" in run.stdout and "(12 bytes, sha256 abababababababab…)" in run.stdout
    assert field_lines(run.stdout)["model"].startswith("acme/model\\x1b]0;pwned")
