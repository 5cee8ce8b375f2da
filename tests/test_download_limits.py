"""What a server's answer can make the CLI save, and for how long (issue 21, items 8 and 10).

At most the images asked for are saved, however many URLs the server lists; `--timeout` bounds
the whole command, downloads included, whatever pace the image host keeps.
"""

from __future__ import annotations

import json
from pathlib import Path

from nanobanana_cli.engine import downloads, provenance
from nanobanana_cli.sandbox import Faults

LISTED = 300


def test_a_server_listing_more_images_than_asked_for_gets_only_those_saved(cli, sandbox, tmp_path):
    out = tmp_path / "out"
    sandbox.inject(Faults(extra_outputs=LISTED - 1))  # every finished job lists LISTED images, each one served
    run = cli("generate", "one fox", "-n", "1", "-o", out, "--json")
    fetched = [request.path for request in sandbox.stats.requests if request.listener == "assets"]
    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    assert len(document["outputs"]) == 1 and document["outputs"][0]["url"].endswith("/1.png")
    assert [path.name for path in out.iterdir() if path.suffix == ".png"] == [Path(document["outputs"][0]["path"]).name]
    assert fetched == [f"/files/{document['request_id']}/1.png"]
    assert f"warning: job {document['request_id']}: the server listed {LISTED} images for 1 asked for" in run.stderr
    found, _ = provenance.read(Path(document["outputs"][0]["path"]))
    assert found is not None and found["count"] == 1  # the provenance counts what was saved, not what was listed


def test_timeout_bounds_a_download_from_a_trickling_image_host(cli, sandbox, monkeypatch, tmp_path):
    # Without the bound, the per-file limit would end this run, not --timeout: 30 s here instead of
    # 15 minutes, so a regression fails rather than hangs.
    monkeypatch.setattr(downloads, "DOWNLOAD_TOTAL_SECONDS", 30.0)
    sandbox.inject(Faults(trickle_download=5, trickle_interval=1.0))  # a byte a second: hours for one image
    out = tmp_path / "out"
    run = cli("generate", "a fox on a slow CDN", "--timeout", "3", "-o", out)
    assert run.exit_code == 6, run.stderr
    assert "error: gave up after 3s; still downloading http" in run.stderr
    assert "nanobanana result" in run.stderr and "--download" in run.stderr  # the job is done: fetch it later
    assert not out.exists() or [path.name for path in out.iterdir()] == []  # no partial file left behind
