"""A hostile server, and a token in the wrong place.

Server strings never reach the terminal with their control characters; our token never comes
back out of the server's text; a download from an https API never goes to plain http, not even
after a redirect; a token on the command line or in a loose file is pointed out with its fix.
The hostile server is the sandbox with its faults.
"""

from __future__ import annotations

import json
import os
import re
import socket
from collections.abc import Iterator

import pytest

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.models import GenerationInput, parse_result, parse_status
from nanobanana_cli.errors import APIError, BadResponseError
from nanobanana_cli.sandbox import Faults

from .conftest import HELD, SENTINEL_TOKEN

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"  # retitle the window, clear the screen, a C1 CSI
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # anything a terminal acts on, but \t and \n


def assert_printable(*streams: str) -> None:
    for stream in streams:
        assert not RAW_CONTROL.search(stream), repr(stream)


def submit(cli, prompt: str = "a fox") -> str:
    run = cli("generate", prompt, "--no-wait", "-q")
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


def test_status_values_and_echoed_ids_are_escaped(cli, start_sandbox):
    sandbox = start_sandbox(queue_seconds=HELD)
    request_id = submit(cli)
    sandbox.inject(Faults(control_chars=2))  # escapes after the status and the id echoed back, twice
    run = cli("status", request_id)
    assert run.exit_code == 0, run.stderr
    assert_printable(run.stdout, run.stderr)
    assert "\\x1b]0;pwned\\x07" in run.stdout  # visible, harmless
    as_json = cli("status", request_id, "--json")
    assert_printable(as_json.stdout, as_json.stderr)
    document = json.loads(as_json.stdout)
    assert document["request_id"] == request_id  # the id we asked about, not the one echoed
    assert document["status"].startswith("in_queue\\x1b]0;pwned")


def test_a_failed_jobs_error_masks_our_token_wherever_it_is_shown(cli, start_sandbox):
    """The server quotes our token in a failed job's error (token-echo). That escapes inside such a
    text are made harmless is checked where every server string is: test_parsed_strings_are_printable_bounded_and_masked."""
    sandbox = start_sandbox(faults=Faults(token_echo=True))
    request_id = submit(cli, "a fox sandbox:fail")
    for args in (("result", request_id), ("watch", request_id), ("result", request_id, "--json")):
        run = cli(*args)  # the fixture fails the test if the token shows up anywhere
        assert run.exit_code == 5, run.stderr
        assert_printable(run.stdout, run.stderr)
        assert "Bearer ***" in run.stdout + run.stderr
    assert sandbox.stats.submits == 1


def test_output_urls_with_control_characters_are_refused():
    with pytest.raises(BadResponseError, match="control characters") as caught:
        parse_result({"status": "succeeded", "output": {"images": [f"https://cdn.example/a.png{ESCAPES}"]}}, "r")
    assert caught.value.exit_code == 7
    assert_printable(str(caught.value))


@pytest.mark.parametrize("position", ["3", 3.7, float("inf"), float("nan"), -2, [1], {"n": 1}, True, 10**12])
def test_queue_positions_of_any_type_parse_without_crashing(position):
    parsed = parse_status({"status": "in_queue", "queue_position": position}, "r").queue_position
    assert parsed in (None, 3)


def test_parsed_strings_are_printable_bounded_and_masked():
    from nanobanana_cli.api.models import printable

    status = parse_status({"status": "x" * 10_000 + ESCAPES}, "r").status
    assert len(status) < 100 and not RAW_CONTROL.search(status)
    result = parse_result({"status": "failed", "error": [f"{SENTINEL_TOKEN}\u202eevil", {"message": "\x00"}]}, "r",
                          secret=SENTINEL_TOKEN)
    assert result.error == "***\\u202eevil; \\x00"
    assert printable("tok\x1ben", secret="token") == "tok\\x1ben"  # escaping never rejoins a split token
    assert_printable(printable(ESCAPES))  # C1 controls too (a one-byte CSI)


# -- the token on argv or in a loose file ------------------------------------------------------------

TOKEN_WARNING = "warning: --token is visible to other users in ps; use RUNCOMFY_API_TOKEN or nanobanana auth login --with-token"


def test_a_token_on_the_command_line_is_pointed_out_once(cli, sandbox, monkeypatch):
    request_id = submit(cli)
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    run = cli("status", request_id, "--token", SENTINEL_TOKEN)
    assert run.exit_code == 0 and run.stderr.splitlines().count(TOKEN_WARNING) == 1
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
    assert "warning" not in cli("status", request_id).stderr


def test_a_stored_token_readable_by_others_is_pointed_out_with_the_chmod_that_fixes_it(cli, sandbox, monkeypatch):
    from nanobanana_cli.stores.tokens import TokenStore

    request_id = submit(cli)
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    store = TokenStore()
    store.save(SENTINEL_TOKEN)
    os.chmod(store.path, 0o644)
    run = cli("status", request_id)
    assert run.exit_code == 0
    (warning,) = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert "readable by other users (mode 644)" in warning and warning.endswith(f"chmod 600 {store.path}")
    os.chmod(store.path, 0o600)
    assert "warning" not in cli("status", request_id).stderr


# -- an https API never sends a download to plain http -----------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A plain TCP port that records whether anything ever connected to it."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.3)
        yield server


def assert_never_connected(server: socket.socket) -> None:
    with pytest.raises(socket.timeout):
        server.accept()


def test_an_https_api_never_sends_a_download_to_plain_http(listener):
    port = listener.getsockname()[1]
    with Client(SENTINEL_TOKEN, "https://model-api.runcomfy.net") as client:
        with pytest.raises(APIError, match="only https"):
            client.open_asset(f"http://127.0.0.1:{port}/a.png")
    assert_never_connected(listener)


def test_an_https_to_http_redirect_is_refused_before_connecting(tls_sandbox):
    with Client(SENTINEL_TOKEN, tls_sandbox.base_url) as client:
        request_id = client.submit(GenerationInput("a fox")).request_id
        (asset,) = client.result(request_id).output_urls
        tls_sandbox.inject(Faults(asset_redirect_http=1))  # a 302 to the same file on the image host's plain-http twin
        with pytest.raises(APIError, match="only https"):
            client.open_asset(asset)
    downloads = [r.listener for r in tls_sandbox.stats.requests if "/files/" in r.path]
    assert downloads == ["assets"]  # the https hop was followed; the http one never
