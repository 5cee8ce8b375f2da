"""An input image URL with user:password@ is refused outright, before anything is sent, and its
credentials are never echoed: the message shows the URL with its userinfo masked. A refused URL
is never recorded (history, --json), so no record can hold them either."""

from __future__ import annotations

import json

import pytest

URL = "https://user:hunter2@example.com/a.png"


@pytest.mark.parametrize("url", [URL, "http://user:hunter2@example.com/a.png", "https://user:hunter2@exa mple.com/a.png"])
def test_an_image_url_with_credentials_is_refused_without_echoing_them(cli, sandbox, url):
    run = cli("edit", "x", "-i", url, "--dry-run", "--sandbox")
    assert run.exit_code == 2
    assert "hunter2" not in run.stderr and "user:hunter" not in run.stderr
    assert "***@exa" in run.stderr and "carries credentials (user:password@)" in run.stderr
    assert sandbox.stats.submits == 0  # only the schema was read


def test_a_refused_credentials_url_is_sent_and_recorded_nowhere(cli, sandbox, tmp_path):
    run = cli("edit", "x", "-i", URL, "-o", tmp_path / "out", "--json")
    assert run.exit_code == 2 and "hunter2" not in run.stdout + run.stderr
    assert json.loads(run.stdout)["request_id"] is None  # the error document, without the URL
    assert [r.method for r in sandbox.stats.requests if r.method == "POST"] == []
    listed = cli("history", "--json")
    assert listed.exit_code == 0 and "hunter2" not in listed.stdout


def test_a_batch_line_with_a_credentials_url_is_refused_without_echoing_them(cli, sandbox, tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text(json.dumps({"prompt": "x", "images": [URL]}) + "\n")
    run = cli("batch", lines, "--model", "nano-banana-2", "-o", tmp_path / "out")
    assert run.exit_code == 2 and "hunter2" not in run.stdout + run.stderr
    assert "lines.jsonl:1" in run.stderr and "***@example.com" in run.stderr
    assert sandbox.stats.submits == 0
