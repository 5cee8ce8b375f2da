"""A rejected token is named by where it came from (--token, a variable, the stored one) and by the
API that refused it, with the fix for that source."""

from __future__ import annotations

import pytest

from .conftest import SENTINEL_TOKEN


@pytest.fixture
def api(sandbox, monkeypatch):
    """A sandbox; the environment provides no token, only what each test sets."""
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    return sandbox


def test_a_rejected_variable_is_named_with_the_api(cli, api, monkeypatch):
    monkeypatch.setenv("YOUR_API_TOKEN", "env-token-that-is-wrong")
    run = cli("status", "3f2a9c1e-aaaa-bbbb")
    assert run.exit_code == 3
    assert f"the API at {api.base_url} rejected the token in $YOUR_API_TOKEN" in run.stderr
    assert "check $YOUR_API_TOKEN" in run.stderr


def test_a_rejected_flag_and_a_rejected_stored_token_are_named(cli, api, tmp_path):
    run = cli("generate", "a fox", "--token", "not-the-token-at-all")
    assert run.exit_code == 3 and "rejected the token given with --token" in run.stderr
    assert cli("auth", "login", "--with-token", "--no-verify", input="stored-but-wrong-token\n").exit_code == 0
    run = cli("generate", "a fox")
    assert run.exit_code == 3 and "rejected the stored token" in run.stderr and "nanobanana auth login" in run.stderr
    assert api.stats.submits == 0


def test_auth_status_advises_unsetting_a_variable_that_shadows_the_stored_token(cli, api, monkeypatch):
    assert cli("auth", "login", "--with-token", input=SENTINEL_TOKEN + "\n").exit_code == 0
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "env-token-that-is-wrong")
    run = cli("auth", "status")
    assert run.exit_code == 3
    assert "rejected the token in $RUNCOMFY_API_TOKEN" in run.stderr
    assert "unset RUNCOMFY_API_TOKEN" in run.stderr and "stored token is used" in run.stderr
    assert "run `nanobanana auth login`" not in run.stderr


def test_auth_login_names_the_api_it_asked(cli, api):
    good = cli("auth", "login", "--with-token", input=SENTINEL_TOKEN + "\n")
    assert good.exit_code == 0 and f"accepted by {api.base_url}" in good.stderr
    bad = cli("auth", "login", "--with-token", input="definitely-wrong-token\n")
    assert bad.exit_code == 3 and f"the API at {api.base_url} rejected this token" in bad.stderr


def test_doctor_names_the_rejected_token_and_its_fix(cli, api, monkeypatch):
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "env-token-that-is-wrong")
    run = cli("doctor")
    assert "rejected the token in $RUNCOMFY_API_TOKEN" in run.stdout + run.stderr
    assert "unset RUNCOMFY_API_TOKEN" in run.stdout + run.stderr


def test_a_resolved_token_never_shows_the_token_in_its_repr():
    from nanobanana_cli.stores.tokens import ResolvedToken

    shown = repr(ResolvedToken(SENTINEL_TOKEN, "RUNCOMFY_API_TOKEN"))
    assert SENTINEL_TOKEN not in shown and "RUNCOMFY_API_TOKEN" in shown
