"""A server that hands the token back inside an output URL never gets it printed.

`http://<token>:x@host/…` is refused for what it is (credentials in the URL), with the
user:password@ part and every occurrence of the token masked; a URL that holds the token
anywhere else is refused before it is printed, recorded or fetched.
"""

from __future__ import annotations

import pytest

from nanobanana_cli.api.urls import check_asset_url, redacted
from nanobanana_cli.errors import APIError

from .conftest import SENTINEL_TOKEN
from .fake_api import JOB_PATH, Answer, FakeAPI


def test_redacted_masks_userinfo_and_the_token():
    assert redacted(f"http://{SENTINEL_TOKEN}:x@cdn.example/a.png") == "http://***@cdn.example/a.png"
    assert redacted(f"https://u:p@cdn.example/{SENTINEL_TOKEN}/a.png?t={SENTINEL_TOKEN}", SENTINEL_TOKEN) == (
        "https://***@cdn.example/***/a.png?t=***"
    )
    assert redacted("https://cdn.example/a@b.png") == "https://cdn.example/a@b.png"  # an @ in the path is no userinfo


@pytest.mark.parametrize("url", [
    f"http://{SENTINEL_TOKEN}:x@127.0.0.1/a.png", f"https://{SENTINEL_TOKEN}@cdn.example/a.png",
    f"https://user:{SENTINEL_TOKEN}@cdn.example/a.png",
])
def test_an_asset_url_with_credentials_is_refused_for_that_reason_with_nothing_secret_shown(url):
    with pytest.raises(APIError) as refused:
        check_asset_url(url, "http://127.0.0.1:8000", secret=SENTINEL_TOKEN)
    message = str(refused.value)
    assert message.endswith("': the URL carries credentials (user:password@)")
    assert SENTINEL_TOKEN not in message and "***@" in message


@pytest.fixture
def answers(monkeypatch):
    """A FakeAPI whose job answers are `answers[...]`, the CLI pointed at it with the sentinel token."""
    scripted: dict = {}

    def override(request, api):
        found = JOB_PATH.match(request.path)
        if found and found.group(2) in scripted:
            return Answer.json(scripted[found.group(2)])
        return None

    with FakeAPI(override=override) as api:
        monkeypatch.setenv("NANOBANANA_BASE_URL", api.base_url)
        monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
        scripted["host"] = api.base_url.split("//", 1)[1]
        yield scripted


def test_an_output_url_carrying_the_token_as_userinfo_is_refused_without_printing_it(cli, answers, tmp_path):
    url = f"http://{SENTINEL_TOKEN}:x@{answers['host']}/files/abc/0.png"
    answers["status"] = {"status": "completed"}
    answers["result"] = {"status": "succeeded", "output": {"images": [url]}}
    out = tmp_path / "out"
    for args in (("result", "abc"), ("result", "abc", "--download", "-o", out), ("result", "abc", "--json")):
        run = cli(*args, "--retries", "0")  # the cli fixture fails the test if the token shows up anywhere
        assert run.exit_code != 0, (args, run.stdout)
        assert "API token" in run.stderr or "credentials" in run.stderr, run.stderr
        assert "only https" not in run.stderr
    assert not out.exists() or not any(out.iterdir())


def test_an_output_url_with_someone_elses_credentials_is_refused_for_that_reason(cli, answers, tmp_path):
    answers["status"] = {"status": "completed"}
    answers["result"] = {"status": "succeeded", "output": {"images": [f"http://alice:secret@{answers['host']}/files/abc/0.png"]}}
    run = cli("result", "abc", "--download", "-o", tmp_path, "--retries", "0")
    assert run.exit_code != 0
    assert "the URL carries credentials (user:password@)" in run.stderr and "alice:secret" not in run.stderr
    assert "only https" not in run.stderr
