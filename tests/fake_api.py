"""A scriptable RunComfy Model API on 127.0.0.1 for the few hostile-server tests the sandbox cannot script yet.

It plays the documented job flow (submit, status, result, files), counts every submit per prompt
on arrival, and lets a test replace any answer with a hostile one: trickled byte by byte,
endless, deeply nested, laced with control characters, cut off, or redirected. It stands beside
the sandbox so these tests do not wait for sandbox faults that do not exist yet.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .conftest import SENTINEL_TOKEN

# A PNG signature is all a download checks (it sniffs the format); the rest is filler.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SUBMIT_PATH = "/v1/models/google/nano-banana/text-to-image"
JOB_PATH = re.compile(r"^/v1/requests/([^/]+)/(status|result|cancel)$")
FILE_PATH = re.compile(r"^/files/([^/]+)/(\d+)\.png$")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # Content-Length for an iterable body
    trickle: float = 0.0  # seconds between the bytes of the whole answer, status line and headers included
    drop: bool = False  # close the connection without a word

    @classmethod
    def json(cls, data: Any, status: int = 200, *, headers: dict[str, str] | None = None, **kwargs: Any) -> Answer:
        return cls(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})}, **kwargs)


Override = Callable[[Request, "FakeAPI"], "Answer | None"]


@dataclass
class FakeJob:
    request_id: str
    prompt: str
    created: float


class FakeAPI:
    """`with FakeAPI(...) as api:`; `override(request, api)` may answer any request instead of the script."""

    def __init__(
        self,
        *,
        queue_seconds: float = 0.0,
        run_seconds: float = 0.0,
        submit_delay: float = 0.0,
        override: Override | None = None,
    ) -> None:
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.submit_delay = submit_delay  # between a submit's arrival and its job's creation
        self.override = override
        self.posts: Counter[str] = Counter()  # submits per prompt, counted on arrival
        self.requests: list[Request] = []
        self.jobs: dict[str, FakeJob] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeAPI:
        # serve_forever notices shutdown() only at its next poll: 0.5 s by default, at every exit
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def job_state(self, job: FakeJob) -> str:
        age = time.monotonic() - job.created
        return "in_queue" if age < self.queue_seconds else "in_progress" if age < self.queue_seconds + self.run_seconds else "done"

    def answer(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
        if self.override is not None:
            overridden = self.override(request, self)
            if overridden is not None:
                return overridden
        if request.method == "POST" and request.path == SUBMIT_PATH:
            return self._submit(request)
        found = JOB_PATH.match(request.path)
        if found and found.group(1) in self.jobs:
            return self._job_answer(self.jobs[found.group(1)], found.group(2))
        found = FILE_PATH.match(request.path)
        if found and found.group(1) in self.jobs:
            return Answer(200, PNG, {"Content-Type": "image/png"})
        return Answer.json({"error_code": 404001, "error_message": "not found"}, 404)

    def _submit(self, request: Request) -> Answer:
        prompt = json.loads(request.body)["prompt"]
        with self._lock:
            self.posts[prompt] += 1
        time.sleep(self.submit_delay)
        job = FakeJob(uuid.uuid4().hex, prompt, time.monotonic())
        with self._lock:
            self.jobs[job.request_id] = job
        return Answer.json({"request_id": job.request_id})

    def _job_answer(self, job: FakeJob, action: str) -> Answer:
        state = self.job_state(job)
        if action == "status":
            return Answer.json({"request_id": job.request_id, "status": "completed" if state == "done" else state})
        if state != "done":
            return Answer.json({"request_id": job.request_id, "status": state})
        return Answer.json({
            "request_id": job.request_id, "status": "succeeded",
            "output": {"images": [f"{self.base_url}/files/{job.request_id}/1.png"]},
        })


def trickled(data: bytes, interval: float, stopping: threading.Event) -> Iterable[bytes]:
    """A body sent one byte per `interval` (its headers go out at once)."""
    for byte in data:
        if stopping.wait(interval):
            return
        yield bytes([byte])


def _handler_for(api: FakeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Authorization") != f"Bearer {SENTINEL_TOKEN}" and not self.path.startswith("/files/"):
                answer = Answer.json({"error_code": 400004, "error_message": "bad token"}, 400)
            else:
                # routed on the path alone, as a server does: clients may add a query (include_cost=true)
                answer = api.answer(Request(self.command, self.path.split("?", 1)[0], self.rfile.read(length)))
            try:
                self._send(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client hung up (or was cut off at its deadline): what these tests provoke

        def _send(self, answer: Answer) -> None:
            if answer.drop:
                self.close_connection = True
                return
            headers = dict(answer.headers)
            if isinstance(answer.body, bytes):
                headers["Content-Length"] = str(len(answer.body))
            elif answer.length is not None:
                headers["Content-Length"] = str(answer.length)
            head = f"HTTP/1.0 {answer.status} {self.responses.get(answer.status, ('',))[0]}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
            if answer.trickle:
                for chunk in trickled(head.encode() + bytes(answer.body), answer.trickle, api.stopping):  # type: ignore[arg-type]
                    self.wfile.write(chunk)
                return
            self.wfile.write(head.encode())
            for chunk in [answer.body] if isinstance(answer.body, bytes) else answer.body:
                self.wfile.write(chunk)

    return Handler
