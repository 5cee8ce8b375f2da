"""HTTP plumbing shared by the sandbox's listeners: optional TLS, answering, recording, trickling.

`SandboxHandler` is the `Exchange` that fault actions work through (see faults.py).

A request body is read only as far as a valid Content-Length says, and at most 64 MiB
(`MAX_BODY_BYTES`): a POST without one is answered 411, a malformed or negative one 400, a
bigger one 413, each as JSON in the API's error shape and before the handler runs.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import answers
from .faults import Endpoint

if TYPE_CHECKING:
    from .jobs import Asset, Job
    from .server import Sandbox

HANDSHAKE_TIMEOUT = 10.0
MAX_BODY_BYTES = 64 * 1024 * 1024  # a submit body is a few hundred bytes; this only bounds a hostile one
PLAIN_TWIN = "assets-http"  # the listener name of a TLS image host's plain-http twin


@dataclass(frozen=True)
class TLSConfig:
    """Serve https with this certificate and key (PEM files): the API, the image host, or both.

    With TLS on the image host, a plain-http twin of it also runs, for the downgrade faults
    (`http-asset-urls`, `asset-redirect-http`).
    """

    certfile: str | Path
    keyfile: str | Path
    api: bool = True
    assets: bool = True

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.certfile), str(self.keyfile))
        return context


@dataclass
class RecordedRequest:
    listener: str  # "api", "assets", or "assets-http" (the plain twin of a TLS image host)
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0  # 0: the connection was dropped unanswered
    client_port: int = 0
    at: float = 0.0  # time.time() when the answer was sent


@dataclass
class SandboxStats:
    api_requests_started: int = 0  # counted on arrival, before any slow-down: lets a test act mid-request
    submits: int = 0
    peak_in_flight: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    # The stdlib's listen backlog is 5: a batch opening 32 connections at once overflowed it, and
    # the kernel dropped SYNs (a 1 s retransmit each) or reset connections whose POST was already
    # sent (an uncertain submit, exit 7). A real API's load balancer accepts far more than that.
    request_queue_size = 1024

    def __init__(
        self, address: tuple[str, int], handler: type[SandboxHandler], *,
        sandbox: Sandbox, listener: str, tls: ssl.SSLContext | None,
    ) -> None:
        self.sandbox = sandbox
        self.listener = listener
        self.tls = tls
        super().__init__(address, handler)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # The handshake runs here, in the connection's own thread, so a slow client stalls no one else.
        request.settimeout(HANDSHAKE_TIMEOUT)
        secure = self.tls.wrap_socket(request, server_side=True)
        try:
            secure.settimeout(None)
            super().finish_request(secure, client_address)
        finally:
            self.shutdown_request(secure)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-answer is normal (a cancelled download, a size cap, a rejected
        certificate); anything else is a bug worth a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class SandboxHandler(BaseHTTPRequestHandler):
    """One connection; `begin()` resets the per-request state at the start of each request."""

    protocol_version = "HTTP/1.1"
    # headers and body go out as separate writes; with Nagle on, a kept-alive client waits
    # for a delayed ACK (about 40 ms) on every answer
    disable_nagle_algorithm = True
    server_version = "nanobanana-sandbox"
    server: SandboxServer

    endpoint: Endpoint | None = None
    job: Job | None = None
    payload: dict[str, Any] | None = None
    asset: Asset | None = None
    trickle_interval: float | None = None

    @property
    def sandbox(self) -> Sandbox:
        return self.server.sandbox

    def begin(self) -> None:
        self.endpoint, self.job, self.payload, self.asset, self.trickle_interval = None, None, None, None, None

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded (and optionally logged) by Sandbox.record

    def bearer_token(self) -> str:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def parse_request(self) -> bool:
        """The stdlib's parsing, then the body's framing checked before any handler reads it."""
        if not super().parse_request():
            return False
        problem = self._body_problem()
        if problem is None:
            return True
        status, message = problem
        self.close_connection = True  # the body was not read: what follows on the connection is not a request
        self.answer_json(status, answers.error(status * 1000, message))  # like the API's 400001, 404001
        return False

    def _body_problem(self) -> tuple[int, str] | None:
        declared = self.headers.get_all("Content-Length") or []
        if not declared:
            return (411, "a POST needs a Content-Length header") if self.command == "POST" else None
        if len(set(declared)) > 1:
            return 400, "conflicting Content-Length headers"
        text = declared[0].strip()
        if not (text.isascii() and text.isdigit()):
            return 400, "Content-Length must be a non-negative integer"
        if int(text) > MAX_BODY_BYTES:
            return 413, f"the body is over the sandbox's {MAX_BODY_BYTES}-byte limit"
        return None

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)  # checked by parse_request
        return self.rfile.read(length) if length else b""

    def _record(self, status: int) -> None:
        self.sandbox.record(RecordedRequest(
            self.server.listener, self.command, self.path, dict(self.headers.items()), status,
            self.client_address[1], time.time(),
        ))

    # -- answering ------------------------------------------------------------------------------

    def send_head(self, status: int, length: int, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def write(self, data: bytes) -> None:
        if self.trickle_interval is None:
            self.wfile.write(data)
            return
        for offset in range(len(data)):
            self.wfile.write(data[offset:offset + 1])
            self.sandbox.pause(self.trickle_interval)

    def flush_headers(self) -> None:
        # the stdlib writes the buffered status line and headers straight to wfile; through
        # write() they trickle too when asked
        buffered: list[bytes] = getattr(self, "_headers_buffer", [])
        if buffered:
            self.write(b"".join(buffered))
            buffered.clear()

    def answer_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_head(status, len(body), content_type, headers)
        self.write(body)

    def answer_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.answer_bytes(status, json.dumps(payload).encode(), "application/json", headers)

    def trickle(self, interval: float) -> None:
        """Send the rest of this answer one byte at a time, `interval` seconds apart."""
        self.trickle_interval = interval

    def end_connection(self) -> None:
        """Close the connection once this answer is written, whatever the answer claimed."""
        self.close_connection = True

    def drop(self) -> None:
        """Close the connection without a byte of answer."""
        self._record(0)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the client may have gone already
        self.connection.close()
