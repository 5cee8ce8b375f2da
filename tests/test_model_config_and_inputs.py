"""Points that worked without a test: `config set model` picks the endpoint of `generate` and
`edit`; an input URL that only looks local is refused before anything is sent, while the sandbox's
own asset host is taken; `--resolution` changes the saved image's pixel size."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from .test_sandbox_family import RED, picture


def submits(sandbox) -> list:
    return [r for r in sandbox.stats.requests if r.method == "POST" and r.path.startswith("/v1/models/")]


def png_size(path: str | Path) -> tuple[int, int]:
    """Width and height from the PNG header itself (the IHDR chunk), not from what the CLI says."""
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def test_the_configured_model_is_the_one_generate_and_edit_call(cli, sandbox, tmp_path):
    assert cli("config", "set", "model", "nano-banana-2").exit_code == 0
    made = cli("generate", "a fox", "-q", "-o", tmp_path / "a")
    assert made.exit_code == 0, made.stderr
    (tmp_path / "red.png").write_bytes(picture(RED))
    edited = cli("edit", "make it dusk", "-i", tmp_path / "red.png", "-q", "-o", tmp_path / "b")
    assert edited.exit_code == 0, edited.stderr
    assert [r.path for r in submits(sandbox)] == [
        "/v1/models/google/nano-banana-2/text-to-image", "/v1/models/google/nano-banana-2/edit",
    ]
    assert sorted(job.model_id for job in sandbox.jobs()) == ["google/nano-banana-2/edit", "google/nano-banana-2/text-to-image"]


@pytest.mark.parametrize("url", ["http://localhost.evil.com/a.png", "http://127.0.0.1.nip.io/a.png"])
def test_a_plain_http_url_that_only_looks_local_is_refused_before_anything_is_sent(cli, sandbox, tmp_path, url):
    run = cli("edit", "x", "-i", url, "-o", tmp_path)
    assert run.exit_code == 2
    assert "plain http is allowed only to this machine" in run.stderr
    # nothing submitted: the only request is the catalog's schema of the edit model (it carries no URL)
    assert submits(sandbox) == [] and sandbox.jobs() == []
    assert [(r.method, r.path) for r in sandbox.stats.requests] in ([], [("GET", "/v1/models/google/nano-banana/edit")])


def test_the_sandboxs_own_asset_host_over_plain_http_is_taken(cli, sandbox, tmp_path):
    made = cli("generate", "a fox", "-o", tmp_path / "a", "--json")
    assert made.exit_code == 0, made.stderr
    url = json.loads(made.stdout)["outputs"][0]["url"]
    assert url.startswith("http://127.0.0.1:")
    run = cli("edit", "make it dusk", "-i", url, "-q", "-o", tmp_path / "b")
    assert run.exit_code == 0, run.stderr
    edit = [job for job in sandbox.jobs() if job.model_id == "google/nano-banana/edit"]
    assert len(edit) == 1 and edit[0].input["image_urls"] == [url]


def test_edit_resolution_changes_the_saved_images_pixel_size(cli, sandbox, tmp_path):
    (tmp_path / "red.png").write_bytes(picture(RED))
    sizes = {}
    for resolution in ("1K", "2K"):
        run = cli("edit", "make it dusk", "-i", tmp_path / "red.png", "--model", "nano-banana-2", "--resolution", resolution,
                  "-a", "1:1", "-q", "-o", tmp_path / resolution)
        assert run.exit_code == 0, run.stderr
        sizes[resolution] = png_size(run.stdout.split()[0])
    assert [job.input["resolution"] for job in sorted(sandbox.jobs(), key=lambda job: job.input["resolution"])] == ["1K", "2K"]
    (w1, h1), (w2, h2) = sizes["1K"], sizes["2K"]
    assert w1 == h1 and w2 == h2  # 1:1, as asked
    assert w2 == 2 * w1, sizes  # twice the pixels on a side
