"""The sandbox: a faithful local RunComfy Model API, with failures on demand.

Two listeners, as in production: the API, and a separate image host (like RunComfy's CDN) that
serves outputs without auth; with TLS on the image host, a plain-http twin of it as well. Jobs
follow a timetable fixed at submit. Faults (faults.py) are injected per run or mid-test.
"""

from __future__ import annotations

import hmac
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .api_handler import ApiHandler
from .asset_handler import AssetHandler
from .faults import Faults
from .images import CONTENT_TYPES, EXTENSIONS, ensure_can_render, render_output
from .jobs import IN_QUEUE, SUCCEEDED, Asset, Job, JobQueue, JobView
from .models import MODELS, SandboxModel
from .transport import PLAIN_TWIN, RecordedRequest, SandboxServer, SandboxStats, TLSConfig

DEFAULT_TOKEN = "sandbox-token"
FAIL_MARKER = "sandbox:fail"

# (queue seconds, run seconds) for a job, from its input: lets a benchmark vary them per job
Durations = Callable[[Mapping[str, Any]], tuple[float, float]]


class Sandbox:
    """Run with `with Sandbox() as sandbox:`; point a client at `sandbox.base_url` with `sandbox.token`.

    `queue_seconds` and `run_seconds` may be changed between submits; each job keeps the values
    it was submitted with (or what `durations(input)` returned for it).

    Request bodies are capped at 64 MiB (`transport.MAX_BODY_BYTES`); a missing, malformed or
    larger Content-Length is answered 411, 400 or 413 in the API's error shape.

    `image_bytes`, when given, is served as every output file instead of a drawn image, exactly
    as given: a crafted file (a malformed WebP, say) reaches a client as a real CDN would send it.
    """

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
        durations: Durations | None = None,
        tls: TLSConfig | None = None,
        models: Mapping[str, SandboxModel] | None = None,
        image_bytes: bytes | None = None,
    ) -> None:
        self.host = host
        self.models = dict(MODELS if models is None else models)  # by id: the bundled snapshot's, or models.load_models(file)
        self.token = token
        self.queue_seconds = queue_seconds
        self.run_seconds = run_seconds
        self.durations = durations
        self.faults = faults or Faults()
        self.image_long_side = image_long_side
        self.asset_padding_bytes = asset_padding_bytes
        self.image_bytes = image_bytes
        self.stats = SandboxStats()
        self._log = log
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._jobs: dict[str, Job] = {}
        self._queue = JobQueue()
        self._fault_counts: dict[str, int] = {}
        api_tls = tls.server_context() if tls and tls.api else None
        asset_tls = tls.server_context() if tls and tls.assets else None
        self._api = SandboxServer((host, port), ApiHandler, sandbox=self, listener="api", tls=api_tls)
        self._assets = SandboxServer((host, asset_port), AssetHandler, sandbox=self, listener="assets", tls=asset_tls)
        self._plain_assets = (
            SandboxServer((host, 0), AssetHandler, sandbox=self, listener=PLAIN_TWIN, tls=None) if asset_tls else None
        )

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def _servers(self) -> list[SandboxServer]:
        return [server for server in (self._api, self._assets, self._plain_assets) if server is not None]

    def _url(self, server: SandboxServer) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{server.scheme}://{host}:{server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self._url(self._api)

    @property
    def asset_base_url(self) -> str:
        return self._url(self._assets)

    @property
    def plain_asset_base_url(self) -> str:
        """The image host over plain http: its twin when the image host speaks TLS, else itself."""
        return self._url(self._plain_assets or self._assets)

    def start(self) -> Sandbox:
        for server in self._servers:
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled and trickling answers so they finish at once
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults and records ---------------------------------------------------------------------

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

    def pause(self, seconds: float) -> None:
        """Sleep, unless the sandbox stops meanwhile: a stalled answer must not outlive it."""
        self._stopping.wait(seconds)

    def note_api_request(self) -> None:
        with self._lock:
            self.stats.api_requests_started += 1

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self.stats.requests.append(entry)
        if self._log:
            self._log(f"{entry.listener:6} {entry.method} {entry.path} -> {entry.status}")

    def accepts(self, token: str) -> bool:
        return hmac.compare_digest(token.encode(), self.token.encode())

    # -- jobs -----------------------------------------------------------------------------------

    def create_job(
        self, model: SandboxModel, body: dict[str, Any], *, inputs: tuple[bytes, ...] = (), refusal: str | None = None
    ) -> Job:
        """Queue a job for a validated submit body and its decoded input images; UsageError if its
        images cannot be drawn here. A `refusal` (an input it would not fetch) makes the job fail."""
        job_input = model.job_input(body)
        ensure_can_render(model.image_spec(job_input).output_format)
        queue_seconds, run_seconds = self.durations(job_input) if self.durations else (self.queue_seconds, self.run_seconds)
        job = Job(
            request_id=str(uuid.uuid4()),
            model=model,
            input=job_input,
            fails=self.faults.fail_jobs or FAIL_MARKER in model.image_spec(job_input).prompt or refusal is not None,
            queue_seconds=queue_seconds,
            run_seconds=run_seconds,
            inputs=inputs,
            error=refusal,
        )
        with self._lock:
            self._jobs[job.request_id] = job
            self._queue.add(job, time.monotonic())
            self.stats.submits += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._queue.in_flight)
        if not job.fails and self.image_bytes is None:
            # A CDN has the files when the job completes; render now so downloads never wait on drawing.
            threading.Thread(target=self._render_all, args=(job,), daemon=True).start()
        return job

    def find_job(self, request_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(request_id)
            if job is not None:
                self._queue.advance(time.monotonic())
                self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._queue.in_flight)
            return job

    def queue_position(self, job: Job) -> int | None:
        with self._lock:
            return self._queue.position(job, time.monotonic())

    def cancel(self, job: Job) -> bool:
        with self._lock:
            return self._queue.cancel(job, time.monotonic())

    # A test hook: tests submit with queue_seconds (or run_seconds) math.inf, and move each job on
    # once they have seen what they wait for, never after a guessed delay. See jobs.py.

    def start_job(self, request_id: str) -> bool:
        """Move a queued job to in_progress now, until `finish_job`; False if it had left the queue."""
        with self._lock:
            return self._queue.start(self._jobs[request_id], time.monotonic())

    def finish_job(self, request_id: str) -> bool:
        """End a queued or running job now, succeeded or failed as decided at submit; False if it had ended."""
        with self._lock:
            return self._queue.finish(self._jobs[request_id], time.monotonic())

    def jobs(self) -> list[JobView]:
        """Every job so far, in submit order."""
        with self._lock:
            return [self._view(job) for job in self._jobs.values()]

    def job(self, request_id: str) -> JobView | None:
        with self._lock:
            job = self._jobs.get(request_id)
            return self._view(job) if job is not None else None

    def _view(self, job: Job) -> JobView:
        now = time.monotonic()
        state = job.state(now)
        return JobView(
            request_id=job.request_id, model_id=job.model.model_id, input=dict(job.input), state=state,
            cancelled=job.cancelled, fails=job.fails, queue_seconds=job.queue_seconds, run_seconds=job.run_seconds,
            queue_position=self._queue.position(job, now) if state == IN_QUEUE else None,
            created_at=job.created_wall, finished_at=job.finished_at,
        )

    # -- files ----------------------------------------------------------------------------------

    def asset_url(self, job: Job, index: int, *, plain_http: bool = False) -> str:
        base = self.plain_asset_base_url if plain_http else self.asset_base_url
        return f"{base}/files/{job.request_id}/{index}.{EXTENSIONS[job.model.image_spec(job.input).output_format]}"

    def job_output(self, job: Job, *, plain_http: bool = False) -> dict[str, Any]:
        """The `output` of a succeeded job's /result: its file URLs, as the model lists them."""
        count = job.model.image_spec(job.input).count
        return job.model.output([self.asset_url(job, index, plain_http=plain_http) for index in range(1, count + 1)])

    def asset(self, request_id: str, index: int) -> tuple[Job, Asset] | None:
        """A succeeded job's file number `index`, or None where a CDN would answer 404."""
        job = self.find_job(request_id)
        if job is None or job.state(time.monotonic()) != SUCCEEDED:
            return None
        spec = job.model.image_spec(job.input)
        if not 1 <= index <= spec.count + self.faults.extra_outputs:  # the extra-outputs fault lists more
            return None
        return job, Asset(self._rendered(job, index), CONTENT_TYPES[spec.output_format])

    def _render_all(self, job: Job) -> None:
        for index in range(1, job.model.image_spec(job.input).count + 1):
            self._rendered(job, index)

    def _rendered(self, job: Job, index: int) -> bytes:
        if self.image_bytes is not None:
            return self.image_bytes
        with self._lock:
            cached = job.images.get(index)
        if cached is None:
            cached = render_output(
                job.model.image_spec(job.input), index, self.image_long_side, inputs=job.inputs,
                padding_bytes=self.asset_padding_bytes,
            )
            with self._lock:
                cached = job.images.setdefault(index, cached)
        return cached

    def api_urls(self, request_id: str) -> dict[str, str]:
        base = f"{self.base_url}/v1/requests/{request_id}"
        return {"status_url": f"{base}/status", "result_url": f"{base}/result", "cancel_url": f"{base}/cancel"}
