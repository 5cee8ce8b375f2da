"""A server that hands the token back inside an output URL never gets it printed.

`http://<token>:x@host/…` is refused for what it is (credentials in the URL), with the
user:password@ part and every occurrence of the token masked; a URL that holds the token
anywhere else is refused before it is printed, recorded or fetched.
"""

from __future__ import annotations

import pytest

from nanobanana_cli.api.urls import check_asset_url, redacted
from nanobanana_cli.errors import APIError
from nanobanana_cli.sandbox import Faults

from .conftest import SENTINEL_TOKEN


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


def finished_job(cli) -> str:
    submitted = cli("generate", "a fox", "--no-wait", "-q")
    assert submitted.exit_code == 0, submitted.stderr
    return submitted.stdout.strip()


def test_an_output_url_carrying_the_token_as_userinfo_is_refused_without_printing_it(cli, sandbox, tmp_path):
    request_id = finished_job(cli)
    sandbox.inject(Faults(output_userinfo="{token}:x"))
    out = tmp_path / "out"
    for args in (("result", request_id), ("result", request_id, "--download", "-o", out), ("result", request_id, "--json")):
        run = cli(*args, "--retries", "0")  # the cli fixture fails the test if the token shows up anywhere
        assert run.exit_code != 0, (args, run.stdout)
        assert "API token" in run.stderr or "credentials" in run.stderr, run.stderr
        assert "only https" not in run.stderr
    assert not out.exists() or not any(out.iterdir())
    assert not [r for r in sandbox.stats.requests if r.listener != "api"], "nothing is fetched from such a URL"


def test_an_output_url_with_someone_elses_credentials_is_refused_for_that_reason(cli, sandbox, tmp_path):
    request_id = finished_job(cli)
    sandbox.inject(Faults(output_userinfo="alice:secret"))
    run = cli("result", request_id, "--download", "-o", tmp_path, "--retries", "0")
    assert run.exit_code != 0
    assert "the URL carries credentials (user:password@)" in run.stderr and "alice:secret" not in run.stderr
    assert "only https" not in run.stderr
    assert not [r for r in sandbox.stats.requests if r.listener != "api"]
