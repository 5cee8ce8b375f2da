"""The sandbox reads a request body only as far as a valid Content-Length allows: a malformed,
negative, missing or huge one is answered at once, as JSON in the API's error shape, with no
traceback; raw sockets, since no HTTP client sends such requests."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from nanobanana_cli.sandbox.transport import MAX_BODY_BYTES

# Only how long a broken sandbox would hold the test: a working one answers without waiting for anything.
GIVE_UP_SECONDS = 30


def exchange(base_url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send a raw request (without closing our side) and read the answer until the server closes."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=GIVE_UP_SECONDS) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    header_block, _, answer = rest.partition(b"\r\n\r\n")
    headers = dict(line.decode().split(": ", 1) for line in header_block.split(b"\r\n") if line)
    return int(status_line.split()[1]), headers, answer


def submit_head(token: str, length: str | None) -> str:
    declared = f"Content-Length: {length}\n" if length is not None else ""
    return (
        "POST /v1/models/google/nano-banana/text-to-image HTTP/1.1\nHost: sandbox\n"
        f"Authorization: Bearer {token}\nContent-Type: application/json\n{declared}"
    )


@pytest.mark.parametrize(("length", "status"), [
    ("abc", 400), ("-1", 400), ("+5", 400), ("1e3", 400), ("٣", 400), (None, 411), (str(MAX_BODY_BYTES + 1), 413),
])
def test_a_bad_content_length_is_answered_at_once_in_the_api_s_error_shape(sandbox, capfd, length, status):
    code, headers, body = exchange(sandbox.base_url, submit_head(sandbox.token, length))
    answer = json.loads(body)
    assert code == status and headers["Content-Type"] == "application/json"
    assert answer["error_code"] == status * 1000 and answer["error_message"]
    assert sandbox.stats.submits == 0 and [request.status for request in sandbox.stats.requests] == [status]
    assert "Traceback" not in capfd.readouterr().err


def test_conflicting_content_lengths_are_refused(sandbox, capfd):
    head = submit_head(sandbox.token, "2") + "Content-Length: 3\n"
    code, _, body = exchange(sandbox.base_url, head, b"{}")
    assert code == 400 and "conflicting" in json.loads(body)["error_message"] and sandbox.stats.submits == 0
    assert "Traceback" not in capfd.readouterr().err


def test_a_good_body_within_the_limit_is_still_served(sandbox, capfd):
    payload = json.dumps({"prompt": "a raw fox"}).encode()
    head = submit_head(sandbox.token, str(len(payload))) + "Connection: close\n"
    code, _, body = exchange(sandbox.base_url, head, payload)
    assert code == 200 and json.loads(body)["request_id"] and sandbox.stats.submits == 1
    assert "Traceback" not in capfd.readouterr().err


def test_the_image_host_checks_the_body_too(sandbox, capfd):
    code, _, body = exchange(sandbox.asset_base_url, "POST /files/x/1.png HTTP/1.1\nHost: sandbox\nContent-Length: abc\n")
    assert code == 400 and json.loads(body)["error_code"] == 400000
    assert "Traceback" not in capfd.readouterr().err
