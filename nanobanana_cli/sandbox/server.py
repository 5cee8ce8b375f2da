"""The sandbox server: RunComfy's Model API paths, auth, JSON shapes, job lifecycle and errors.

Two listeners, as in production: the API, and a separate asset host (like RunComfy's CDN) that
serves the images without auth. Faults can be injected, each for the first N matching requests,
so tests and CI scripts can rehearse rate limits, outages and broken downloads.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..api.models import ASPECT_RATIOS, MODEL_ID, NUM_IMAGES_CHOICES, OUTPUT_FORMATS, PROMPT_MAX_LENGTH
from .images import CONTENT_TYPES, render_image

DEFAULT_TOKEN = "sandbox-token"
FAIL_MARKER = "sandbox:fail"
PRICE_PER_IMAGE_USD = 0.039
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}


@dataclass
class Faults:
    """Injected failures. Each count applies to the first N requests of its kind, then stops."""

    rate_limit: int = 0  # API requests answered 429 with Retry-After
    retry_after: str = "1"
    server_error: int = 0  # status/result polls answered 502 with an HTML page
    submit_unavailable: int = 0  # submits answered 503 (job not created: safe to retry)
    drop_after_submit: int = 0  # submits that create the job, then drop the connection unanswered
    malformed_json: int = 0  # status/result polls answered 200 with a body that is not JSON
    truncate_download: int = 0  # asset downloads cut off halfway
    not_an_image: int = 0  # asset downloads answered with an HTML page
    redirect_result: int = 0  # result polls redirected (307) to the asset host, which must not get the token
    drop_connection: int = 0  # status/result polls whose connection is closed without an answer
    unknown_status: int = 0  # status/result polls answering a state the docs do not list ("warming_up")
    slow_seconds: float = 0.0  # delay before API answers
    slow_requests: int = 0  # how many API requests are slowed (0: all of them)
    fail_jobs: bool = False  # every job ends `failed` (prompts containing "sandbox:fail" always do)

    @classmethod
    def parse(cls, specs: list[str]) -> Faults:
        """Build from `name=value` strings such as `rate-limit=2` (dashes or underscores)."""
        faults = cls()
        names = {f.name: f for f in dataclasses.fields(cls)}
        for spec in specs:
            name, _, value = spec.partition("=")
            key = name.strip().replace("-", "_")
            if key not in names or not value:
                raise ValueError(f"unknown fault {spec!r}: use NAME=VALUE with NAME one of {', '.join(n.replace('_', '-') for n in names)}")
            kind = names[key].type
            try:
                if kind in ("int", int):
                    parsed: Any = int(value)
                elif kind in ("float", float):
                    parsed = float(value)
                elif kind in ("bool", bool):
                    parsed = value.lower() in ("1", "true", "yes", "on")
                else:
                    parsed = value
            except ValueError:
                raise ValueError(f"fault {name!r} needs a number, got {value!r}") from None
            setattr(faults, key, parsed)
        return faults


@dataclass
class RecordedRequest:
    listener: str  # "api" or "assets"
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    client_port: int = 0
    at: float = 0.0  # time.time() when the answer was sent


@dataclass
class SandboxJob:
    request_id: str
    input: dict[str, Any]
    created: float
    created_wall: float
    fails: bool
    queue_seconds: float
    run_seconds: float
    cancelled: bool = False


@dataclass
class SandboxStats:
    api_requests_started: int = 0  # counted on arrival, before any slow-down: lets a test act mid-request
    submits: int = 0
    peak_in_flight: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def validate_input(body: Any) -> list[str]:
    """The published JSON schema, checked strictly as a server would (no aliases, no trimming)."""
    if not isinstance(body, dict):
        return ["body must be a JSON object"]
    problems = []
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append("prompt: required non-empty string")
    elif len(prompt) > PROMPT_MAX_LENGTH:
        problems.append(f"prompt: at most {PROMPT_MAX_LENGTH} characters")
    if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
        problems.append(f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
    if body.get("output_format", "png") not in OUTPUT_FORMATS:
        problems.append(f"output_format: must be one of {', '.join(OUTPUT_FORMATS)}")
    num_images = body.get("num_images", 1)
    if isinstance(num_images, bool) or num_images not in NUM_IMAGES_CHOICES:
        problems.append("num_images: must be one of 1, 2, 3, 4")
    return problems


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up mid-answer is normal (a cancelled download, a size cap); anything else is a bug."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Sandbox:
    """Run with `with Sandbox() as sandbox:`; point a client at `sandbox.base_url` with `sandbox.token`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        asset_port: int = 0,
        token: str = DEFAULT_TOKEN,
        queue_seconds: float = 1.0,
        run_seconds: float = 2.0,
        faults: Faults | None = None,
        image_long_side: int = 1024,
        asset_padding_bytes: int = 0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self.token = token
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.faults = faults or Faults()
        self.image_long_side = image_long_side
        self.asset_padding_bytes = asset_padding_bytes
        self.stats = SandboxStats()
        self._log = log
        self._lock = threading.Lock()
        self._jobs: dict[str, SandboxJob] = {}
        self._assets: dict[tuple[str, int], bytes] = {}
        self._fault_counts: dict[str, int] = {}
        self._api = _QuietServer((host, port), _make_handler(self, "api"))
        self._files = _QuietServer((host, asset_port), _make_handler(self, "assets"))
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self._display_host()}:{self._api.server_address[1]}"

    @property
    def asset_base_url(self) -> str:
        return f"http://{self._display_host()}:{self._files.server_address[1]}"

    def _display_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def start(self) -> Sandbox:
        for server in (self._api, self._files):
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._api, self._files):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state ----------------------------------------------------------------------------------

    def inject(self, faults: Faults) -> None:
        """Replace the active faults and start their counts afresh."""
        with self._lock:
            self.faults = faults
            self._fault_counts.clear()

    def take_fault(self, name: str) -> bool:
        """Consume one occurrence of a counted fault; True while its budget lasts."""
        with self._lock:
            used = self._fault_counts.get(name, 0)
            if used < getattr(self.faults, name):
                self._fault_counts[name] = used + 1
                return True
            return False

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self.stats.requests.append(entry)
        if self._log:
            self._log(f"{entry.listener:6} {entry.method} {entry.path} -> {entry.status}")

    def state_of(self, job: SandboxJob, now: float | None = None) -> str:
        if job.cancelled:
            return "cancelled"
        age = (now if now is not None else time.monotonic()) - job.created
        if age < job.queue_seconds:
            return "in_queue"
        if age < job.queue_seconds + job.run_seconds:
            return "in_progress"
        return "failed" if job.fails else "succeeded"

    def finished_wall(self, job: SandboxJob) -> float:
        """When the job completed (or will), on the wall clock: what `finished_at` reports."""
        return job.created_wall + job.queue_seconds + job.run_seconds

    def _in_flight(self, now: float) -> int:
        return sum(1 for job in self._jobs.values() if self.state_of(job, now) in ("in_queue", "in_progress"))

    def create_job(self, payload: dict[str, Any]) -> SandboxJob:
        generation = {
            "prompt": payload["prompt"],
            "aspect_ratio": payload.get("aspect_ratio", "16:9"),
            "output_format": payload.get("output_format", "png"),
            "num_images": payload.get("num_images", 1),
        }
        now = time.monotonic()
        job = SandboxJob(
            request_id=secrets.token_hex(16)[:8] + "-" + secrets.token_hex(14),
            input=generation,
            created=now,
            created_wall=time.time(),
            fails=self.faults.fail_jobs or FAIL_MARKER in generation["prompt"],
            # fixed at submit: changing the sandbox's durations later affects only new jobs
            queue_seconds=self.queue_seconds,
            run_seconds=self.run_seconds,
        )
        with self._lock:
            self._jobs[job.request_id] = job
            self.stats.submits += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._in_flight(now))
        if not job.fails:
            # A CDN has the files when the job completes; render now so downloads never wait on Pillow.
            threading.Thread(target=self._render_all, args=(job,), daemon=True).start()
        return job

    def _render_all(self, job: SandboxJob) -> None:
        for index in range(1, job.input["num_images"] + 1):
            self._rendered(job, index)

    def job(self, request_id: str) -> SandboxJob | None:
        with self._lock:
            job = self._jobs.get(request_id)
            if job is not None:
                self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._in_flight(time.monotonic()))
            return job

    def cancel(self, job: SandboxJob) -> bool:
        with self._lock:
            if self.state_of(job) != "in_queue":
                return False
            job.cancelled = True
            return True

    def queue_position(self, job: SandboxJob) -> int:
        now = time.monotonic()
        with self._lock:
            ahead = sum(
                1 for other in self._jobs.values()
                if other.created < job.created and self.state_of(other, now) == "in_queue"
            )
        return ahead + 1

    def asset_url(self, job: SandboxJob, index: int) -> str:
        return f"{self.asset_base_url}/files/{job.request_id}/{index}.{EXTENSIONS[job.input['output_format']]}"

    def asset_bytes(self, request_id: str, index: int) -> tuple[bytes, str] | None:
        job = self.job(request_id)
        if job is None or self.state_of(job) != "succeeded" or not 1 <= index <= job.input["num_images"]:
            return None
        return self._rendered(job, index), CONTENT_TYPES[job.input["output_format"]]

    def _rendered(self, job: SandboxJob, index: int) -> bytes:
        key = (job.request_id, index)
        with self._lock:
            cached = self._assets.get(key)
        if cached is None:
            cached = render_image(
                job.input["prompt"], job.input["aspect_ratio"], job.input["output_format"], index,
                self.image_long_side, padding_bytes=self.asset_padding_bytes,
            )
            with self._lock:
                cached = self._assets.setdefault(key, cached)
        return cached

    def api_urls(self, request_id: str) -> dict[str, str]:
        base = f"{self.base_url}/v1/requests/{request_id}"
        return {"status_url": f"{base}/status", "result_url": f"{base}/result", "cancel_url": f"{base}/cancel"}


def _error_body(code: int, message: str) -> dict[str, Any]:
    return {"error_code": code, "error_message": message}


HTML_ERROR_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
REQUEST_PATH = re.compile(r"^/v1/requests/(?P<id>[^/]+)/(?P<action>status|result|cancel)$")


def _make_handler(sandbox: Sandbox, listener: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out as separate writes; with Nagle on, a kept-alive client waits
        # for a delayed ACK (about 40 ms) on every answer
        disable_nagle_algorithm = True
        server_version = "nanobanana-sandbox"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass  # requests are recorded (and optionally logged) by Sandbox.record

        def _record(self, status: int) -> None:
            sandbox.record(RecordedRequest(
                listener, self.command, self.path, dict(self.headers.items()), status, self.client_address[1], time.time(),
            ))

        def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
            self._record(status)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", extra)

        def _drop(self) -> None:
            self._record(0)
            self.close_connection = True
            self.connection.close()

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            if listener == "assets":
                self._serve_asset()
            else:
                self._api("GET")

        def do_POST(self) -> None:
            if listener == "assets":
                self._read_body()
                self._json(405, {"detail": "method not allowed"})
            else:
                self._api("POST")

        def _api(self, method: str) -> None:
            with sandbox._lock:
                sandbox.stats.api_requests_started += 1
            body = self._read_body() if method == "POST" else b""
            if sandbox.faults.slow_seconds and (not sandbox.faults.slow_requests or sandbox.take_fault("slow_requests")):
                time.sleep(sandbox.faults.slow_seconds)
            if self.headers.get("Authorization") != f"Bearer {sandbox.token}":
                self._json(401, _error_body(400004, "missing, invalid or expired API token"))
                return
            if sandbox.take_fault("rate_limit"):
                self._json(429, {"detail": "rate limit exceeded"}, {"Retry-After": sandbox.faults.retry_after})
                return
            url = urlsplit(self.path)
            if method == "POST" and url.path.startswith("/v1/models/"):
                self._submit(url.path[len("/v1/models/"):], body)
                return
            match = REQUEST_PATH.match(url.path)
            if not match or (method == "POST") != (match["action"] == "cancel"):
                self._json(404, {"detail": "Not Found"})
                return
            job = sandbox.job(match["id"])
            if job is None:
                self._json(404, _error_body(404001, f"request {match['id']} not found"))
                return
            if match["action"] == "cancel":
                outcome = "cancelled" if sandbox.cancel(job) else "not_cancellable"
                self._json(202, {"request_id": job.request_id, "status": "completed", "outcome": outcome})
                return
            if sandbox.take_fault("server_error"):
                self._send(502, HTML_ERROR_PAGE, "text/html")
                return
            if sandbox.take_fault("drop_connection"):
                self._drop()
                return
            if sandbox.take_fault("unknown_status"):
                self._json(200, {"request_id": job.request_id, "status": "warming_up"})
                return
            if sandbox.take_fault("malformed_json"):
                self._send(200, b'{"request_id": "', "application/json")
                return
            query = parse_qs(url.query)
            if match["action"] == "result" and sandbox.take_fault("redirect_result"):
                self._send(307, b"", "text/plain", {"Location": f"{sandbox.asset_base_url}{self.path}"})
                return
            if match["action"] == "status":
                self._json(200, self._status_body(job))
            else:
                self._json(200, self._result_body(job, query.get("include_cost") == ["true"]))

        def _submit(self, model_id: str, body: bytes) -> None:
            if model_id != MODEL_ID:
                self._json(400, _error_body(400001, f"unknown model {model_id!r}"))
                return
            if sandbox.take_fault("submit_unavailable"):
                self._json(503, {"detail": "service temporarily unavailable"})
                return
            try:
                payload = json.loads(body or b"null")
            except ValueError:
                self._json(422, {"detail": "body is not valid JSON"})
                return
            problems = validate_input(payload)
            if problems:
                self._json(422, {"detail": [{"loc": ["body", p.split(":")[0]], "msg": p} for p in problems]})
                return
            job = sandbox.create_job(payload)
            if sandbox.take_fault("drop_after_submit"):
                self._drop()
                return
            self._json(200, {"request_id": job.request_id, **sandbox.api_urls(job.request_id)})

        def _status_body(self, job: SandboxJob) -> dict[str, Any]:
            state = sandbox.state_of(job)
            urls = sandbox.api_urls(job.request_id)
            body: dict[str, Any] = {
                "request_id": job.request_id,
                "status": state if state in ("in_queue", "in_progress", "cancelled") else "completed",
                "status_url": urls["status_url"],
                "result_url": urls["result_url"],
            }
            if state == "in_queue":
                body["queue_position"] = sandbox.queue_position(job)
            return body

        def _result_body(self, job: SandboxJob, include_cost: bool) -> dict[str, Any]:
            state = sandbox.state_of(job)
            body: dict[str, Any] = {"request_id": job.request_id, "status": state}
            if state not in ("succeeded", "failed"):
                return body
            body["created_at"] = _iso(job.created_wall)
            body["finished_at"] = _iso(sandbox.finished_wall(job))
            if state == "succeeded":
                body["output"] = {"images": [sandbox.asset_url(job, i) for i in range(1, job.input["num_images"] + 1)]}
                if include_cost:
                    body["cost"] = round(PRICE_PER_IMAGE_USD * job.input["num_images"], 4)
            else:
                body["error"] = {"type": "generation_failed", "message": "the model could not render this prompt"}
            return body

        def _serve_asset(self) -> None:
            mirrored = REQUEST_PATH.match(urlsplit(self.path).path)
            if mirrored and mirrored["action"] == "result" and sandbox.job(mirrored["id"]):
                # the target of the redirect_result fault: answers like the API, but records headers
                self._json(200, self._result_body(sandbox.job(mirrored["id"]), False))
                return
            match = re.match(r"^/files/(?P<id>[A-Za-z0-9_-]+)/(?P<index>\d+)\.\w+$", urlsplit(self.path).path)
            found = sandbox.asset_bytes(match["id"], int(match["index"])) if match else None
            if found is None:
                self._json(404, {"detail": "Not Found"})
                return
            data, content_type = found
            if sandbox.take_fault("not_an_image"):
                self._send(200, HTML_ERROR_PAGE, "text/html")
                return
            if sandbox.take_fault("truncate_download"):
                self._record(200)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(200, data, content_type, {"Cache-Control": "public, max-age=604800"})

    return Handler
