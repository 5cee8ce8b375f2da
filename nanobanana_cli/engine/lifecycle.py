"""Running a job to the end: wait, then download, reporting progress to whoever listens."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .downloads import DEFAULT_MAX_BYTES, SavedFile, download_all
from ..errors import InterruptedWaitError, JobFailedError, NanobananaError
from ..api.models import CANCELLED, GenerationInput, JobResult, JobStatus
from .polling import PollSchedule, resumable, wait_for_result

if TYPE_CHECKING:
    from ..api.client import Client
    from ..stores.history import History


class Reporter(Protocol):
    """What the CLI's output object (or any library user) hears while a job runs."""

    def job_update(self, status: JobStatus, elapsed: float) -> None: ...

    def download_progress(self, url: str, received: int, total: int | None) -> None: ...


class SilentReporter:
    def job_update(self, status: JobStatus, elapsed: float) -> None:
        pass

    def download_progress(self, url: str, received: int, total: int | None) -> None:
        pass


@dataclass
class JobOutcome:
    """A finished (or abandoned) job as `generate --json` and `watch --json` print it."""

    request_id: str
    status: str
    input: GenerationInput | None = None
    output_urls: list[str] = field(default_factory=list)
    saved: list[SavedFile] | None = None
    elapsed_seconds: float = 0.0
    error: NanobananaError | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        if self.saved is not None:
            outputs = [item.to_dict() for item in self.saved]
        else:
            outputs = [{"url": url, "path": None, "bytes": None, "sha256": None} for url in self.output_urls]
        data: dict[str, Any] = {
            "request_id": self.request_id,
            "status": self.status,
            "input": self.input.to_payload() if self.input else None,
            "outputs": outputs,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }
        if self.error is not None:
            data["error"] = str(self.error)
            data["exit_code"] = int(self.error.exit_code)
        return data


@dataclass(frozen=True)
class DownloadPlan:
    directory: Path
    max_bytes: int = DEFAULT_MAX_BYTES


def failure_for(result: JobResult) -> JobFailedError | None:
    if result.succeeded:
        return None
    if result.status == CANCELLED:
        return JobFailedError(f"job {result.request_id} was cancelled", request_id=result.request_id, status=result.status)
    return JobFailedError(
        f"job {result.request_id} {result.status}: {result.error or 'no reason given'}",
        request_id=result.request_id,
        status=result.status,
    )


def run_job(
    client: Client,
    request_id: str,
    *,
    generation: GenerationInput | None,
    downloads: DownloadPlan | None,
    reporter: Reporter | None = None,
    timeout: float | None = None,
    schedule: PollSchedule | None = None,
    stop: threading.Event | None = None,
    history: History | None = None,
    file_stem: str | None = None,
    expected_seconds: float | None = None,
) -> JobOutcome:
    """Wait for `request_id` and fetch its images; a failed job raises `JobFailedError`.

    Files are named after `file_stem` if given, else after the prompt.

    With a history, the final status, the output URLs and the saved paths are recorded as they become known.
    """
    listener = reporter or SilentReporter()
    started = time.monotonic()
    with resumable(request_id):
        result = wait_for_result(
            client, request_id, timeout=timeout, on_update=listener.job_update, schedule=schedule, stop=stop,
            expected_seconds=expected_seconds,
        )
        if history is not None:
            history.update(
                request_id, status=result.status, output_urls=list(result.output_urls),
                duration_seconds=result.server_duration,
            )
        failure = failure_for(result)
        if failure:
            raise failure
        saved = None
        if downloads is not None:
            saved = download_all(
                client,
                result.output_urls,
                downloads.directory,
                prompt=file_stem or (generation.prompt if generation else None),
                request_id=request_id,
                output_format=generation.output_format if generation else "png",
                max_bytes=downloads.max_bytes,
                on_progress=listener.download_progress,
            )
            if history is not None:
                history.update(request_id, paths=[item.path for item in saved])
    return JobOutcome(
        request_id=request_id,
        status=result.status,
        input=generation,
        output_urls=list(result.output_urls),
        saved=saved,
        elapsed_seconds=time.monotonic() - started,
    )


def watch_jobs(
    client: Client,
    jobs: list[tuple[str, GenerationInput | None]],
    *,
    downloads: DownloadPlan | None,
    reporter: Reporter | None = None,
    timeout: float | None = None,
    schedule: PollSchedule | None = None,
    history: History | None = None,
) -> Iterator[JobOutcome]:
    """Yield one `JobOutcome` per job as each finishes; a job's error is carried, not raised.

    Ctrl-C stops every wait and raises one `InterruptedWaitError` naming the unfinished jobs.
    """
    started = time.monotonic()
    stop = threading.Event()

    def one(job: tuple[str, GenerationInput | None]) -> JobOutcome:
        request_id, generation = job
        try:
            return run_job(
                client, request_id, generation=generation, downloads=downloads,
                reporter=reporter, timeout=timeout, schedule=schedule, stop=stop, history=history,
            )
        except NanobananaError as exc:
            status = getattr(exc, "status", None) or "error"
            return JobOutcome(
                request_id=request_id, status=status, input=generation,
                elapsed_seconds=time.monotonic() - started, error=exc,
            )

    pool = ThreadPoolExecutor(max_workers=max(1, min(16, len(jobs))))
    futures = {pool.submit(one, job): job[0] for job in jobs}
    pending = set(futures.values())
    try:
        for future in as_completed(futures):
            pending.discard(futures[future])
            yield future.result()
    except KeyboardInterrupt:
        stop.set()
        unfinished = " ".join(request_id for request_id, _ in jobs if request_id in pending)
        raise InterruptedWaitError(
            f"interrupted; jobs {unfinished} were not cancelled and keep running",
            hint=f"resume with: nanobanana watch {unfinished}",
        ) from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
