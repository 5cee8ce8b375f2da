"""A hostile server, and a token in the wrong place.

Server strings never reach the terminal with their control characters; our token never comes
back out of the server's text; a download from an https API never goes to plain http, not even
after a redirect; a token on the command line or in a loose file is pointed out with its fix.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator

import pytest

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.models import parse_result, parse_status
from nanobanana_cli.errors import APIError

from .conftest import SENTINEL_TOKEN
from .test_reliability_fakeapi import JOB_PATH, Answer, FakeAPI

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x9b31m"  # retitle the window, clear the screen, a C1 CSI
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # anything a terminal acts on, but \t and \n


@pytest.fixture
def hostile(monkeypatch) -> Iterator[dict]:
    """A FakeAPI whose polls answer `answers["status"]` / `answers["result"]`, with the CLI pointed at it."""
    answers: dict = {}

    def override(request, api):
        found = JOB_PATH.match(request.path)
        if found and found.group(2) in answers:
            return Answer.json(answers[found.group(2)])
        return None

    with FakeAPI(override=override) as api:
        monkeypatch.setenv("NANOBANANA_BASE_URL", api.base_url)
        monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
        yield answers


def assert_printable(*streams: str) -> None:
    for stream in streams:
        assert not RAW_CONTROL.search(stream), repr(stream)


def test_status_values_and_echoed_ids_are_escaped(cli, hostile):
    hostile["status"] = {"request_id": f"evil{ESCAPES}", "status": f"in_progress{ESCAPES}", "queue_position": ESCAPES}
    run = cli("status", "abc")
    assert run.exit_code == 0, run.stderr
    assert_printable(run.stdout, run.stderr)
    assert "\\x1b]0;pwned\\x07" in run.stdout  # visible, harmless
    as_json = json.loads(cli("status", "abc", "--json").stdout)
    assert as_json["request_id"] == "abc" and as_json["queue_position"] is None


def test_a_failed_jobs_error_is_escaped_and_our_token_masked(cli, hostile):
    error = {"code": "E1", "message": f"bad auth {SENTINEL_TOKEN}{ESCAPES}"}
    hostile["status"] = {"status": "completed"}
    hostile["result"] = {"status": "failed", "error": error}
    for args in (("result", "abc"), ("watch", "abc"), ("result", "abc", "--json")):
        run = cli(*args)  # the fixture fails the test if the token shows up anywhere
        assert run.exit_code == 5, run.stderr
        assert_printable(run.stdout, run.stderr)
        assert "bad auth ***" in run.stdout + run.stderr


def test_output_urls_with_control_characters_are_refused(cli, hostile):
    hostile["status"] = {"status": "completed"}
    hostile["result"] = {"status": "succeeded", "output": {"images": [f"https://cdn.example/a.png{ESCAPES}"]}}
    run = cli("result", "abc", "--retries", "0")
    assert run.exit_code == 7 and "control characters" in run.stderr, run.stderr
    assert run.stdout == ""
    assert_printable(run.stderr)


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


# -- the token on argv or in a loose file ------------------------------------------------------------

TOKEN_WARNING = "warning: --token is visible to other users in ps; use RUNCOMFY_API_TOKEN or nanobanana auth login --with-token"


def test_a_token_on_the_command_line_is_pointed_out_once(cli, hostile, monkeypatch):
    hostile["status"] = {"status": "in_queue"}
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    run = cli("status", "abc", "--token", SENTINEL_TOKEN)
    assert run.exit_code == 0 and run.stderr.splitlines().count(TOKEN_WARNING) == 1
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
    assert "warning" not in cli("status", "abc").stderr


def test_a_stored_token_readable_by_others_is_pointed_out_with_the_chmod_that_fixes_it(cli, hostile, monkeypatch):
    from nanobanana_cli.stores.tokens import TokenStore

    hostile["status"] = {"status": "in_queue"}
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    store = TokenStore()
    store.save(SENTINEL_TOKEN)
    os.chmod(store.path, 0o644)
    run = cli("status", "abc")
    assert run.exit_code == 0
    (warning,) = [line for line in run.stderr.splitlines() if line.startswith("warning:")]
    assert "readable by other users (mode 644)" in warning and warning.endswith(f"chmod 600 {store.path}")
    os.chmod(store.path, 0o600)
    assert "warning" not in cli("status", "abc").stderr


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


@pytest.fixture
def tls_files(tmp_path) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate for the local https server")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)


def test_an_https_to_http_redirect_is_refused_before_connecting(listener, tls_files, monkeypatch):
    cert, key = tls_files
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # requests prefers it to session.verify
    target = f"http://127.0.0.1:{listener.getsockname()[1]}/a.png"
    seen: list[str] = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    https_base = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        with Client(SENTINEL_TOKEN, https_base) as client:
            with pytest.raises(APIError, match="only https"):
                client.open_asset(f"{https_base}/a.png")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == ["/a.png"]  # the https hop was followed; the http one never
    assert_never_connected(listener)
