"""`nanobanana edit` and input images end to end against the sandbox: local files sent inline,
checked before anything is sent, recorded without their data, and sent again by `regen`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from PIL import Image

from nanobanana_cli.stores.history import History

from .test_sandbox_family import BLUE, RED, picture

EDIT_1 = "google/nano-banana/edit"
EDIT_2 = "google/nano-banana-2/edit"


def submits(sandbox) -> list:
    return [r for r in sandbox.stats.requests if r.method == "POST" and r.path.startswith("/v1/models/")]


def write(path, data: bytes):
    path.write_bytes(data)
    return path


DATA = re.compile(r"base64,[A-Za-z0-9+/]{16}")


def all_text(tmp_path, *runs) -> str:
    """Every place a data URI must never reach: stdout/stderr, the history, the sidecars and the saved files."""
    texts = [run.stdout + run.stderr for run in runs]
    texts.append(json.dumps([entry.to_dict() for entry in History().entries()]))
    for root, _, files in os.walk(tmp_path):
        for name in files:
            if name.endswith((".json", ".png", ".jpg", ".log")):
                texts.append(Path(root, name).read_bytes().decode("latin-1"))
    return "\n".join(texts)


def test_edit_with_two_local_files_is_drawn_from_the_first(cli, sandbox, tmp_path):
    red, blue = write(tmp_path / "red.png", picture(RED)), write(tmp_path / "blue.png", picture(BLUE))
    run = cli("edit", "make it dusk", "-i", red, "-i", blue, "-a", "1:1", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    (job,) = sandbox.jobs()
    assert job.model_id == EDIT_1
    assert [url.split(",")[0] for url in job.input["image_urls"]] == ["data:image/png;base64", "data:image/png;base64"]
    document = json.loads(run.stdout)
    assert document["model"] == EDIT_1
    assert [item["file"] for item in document["input"]["image_urls"]] == ["red.png", "blue.png"]
    image = Image.open(document["outputs"][0]["path"]).convert("RGB")
    pixel = image.getpixel((image.width - 2, image.height - 2))
    assert pixel[0] > pixel[2] + 60  # red shows through: the first input was drawn, not the second
    assert not DATA.search(all_text(tmp_path, run))


def test_a_too_large_image_is_refused_before_anything_is_sent(cli, sandbox, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(picture(RED) + b"\0" * (6 * 1024 * 1024))  # a PNG by its bytes, over 6 MiB
    run = cli("edit", "x", "-i", big, "-o", tmp_path / "out")
    assert run.exit_code == 2
    assert "big.png" in run.stderr and "6.0 MiB" in run.stderr and "--fit" in run.stderr
    assert submits(sandbox) == [] and sandbox.jobs() == []


def test_image_count_follows_the_schema_and_text_to_image_takes_none(cli, sandbox, tmp_path):
    red = write(tmp_path / "red.png", picture(RED))
    run = cli("edit", "x", *(["-i", str(red)] * 4), "-o", tmp_path / "out")  # nano-banana edit takes 1-3
    assert run.exit_code == 2 and "image_urls" in run.stderr and "at most 3" in run.stderr
    run = cli("generate", "x", "--model", "nano-banana-2", "-i", red, "-o", tmp_path / "out")
    assert run.exit_code == 2 and "takes no input images" in run.stderr
    run = cli("edit", "x", "-i", "http://example.com/a.png", "-o", tmp_path / "out")
    assert run.exit_code == 2 and "plain http" in run.stderr
    assert submits(sandbox) == []


def test_dry_run_and_debug_never_show_the_data_uri(cli, sandbox, tmp_path):
    red = write(tmp_path / "red.png", picture(RED))
    run = cli("edit", "x", "-i", red, "--model", "nano-banana-2", "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    body = json.loads(run.stdout)["body"]
    assert body["image_urls"][0]["file"] == "red.png" and len(body["image_urls"][0]["sha256"]) == 64
    assert not DATA.search(run.stdout + run.stderr)
    run = cli("--debug", "edit", "x", "-i", red, "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert not DATA.search(all_text(tmp_path, run))


def test_regen_of_an_edit_sends_the_same_inputs_again(cli, sandbox, tmp_path):
    red, blue = write(tmp_path / "red.png", picture(RED)), write(tmp_path / "blue.png", picture(BLUE))
    run = cli("edit", "make it dusk", "-i", red, "-i", blue, "--model", "nano-banana-2", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    path = json.loads(run.stdout)["outputs"][0]["path"]
    run = cli("regen", path, "-o", tmp_path / "again", "--json")
    assert run.exit_code == 0, run.stderr
    first, second = sandbox.jobs()
    assert second.model_id == EDIT_2
    assert second.input["image_urls"] == first.input["image_urls"]
    assert not DATA.search(all_text(tmp_path, run))
    # a changed input is not sent in its place: the user is asked for it
    blue.write_bytes(picture(RED))
    run = cli("regen", path, "-o", tmp_path / "again")
    assert run.exit_code == 2 and "-i" in run.stderr and len(sandbox.jobs()) == 2
