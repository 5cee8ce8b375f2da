"""A job's whole life in one place: submit and record, wait, check, download, record again.

`Jobs` is the only code that writes job state to the history. `generate`, `batch`, `watch`,
`result`, `status` and `cancel` all go through it, so every path records the same facts and
names the job (with the command that resumes it) before anything can interrupt it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..api.models import CANCELLED, COMPLETED, CancelOutcome, GenerationInput, JobResult, JobStatus, Submission
from ..errors import InterruptedWaitError, JobFailedError, NanobananaError, NotFinishedError, WaitTimeoutError
from .downloads import DEFAULT_MAX_BYTES, SavedFile, download_all
from .polling import PollSchedule, wait_for_result
from .workers import run_concurrently

if TYPE_CHECKING:
    from ..api.client import Client
    from ..stores.history import History

MAX_WATCHED_AT_ONCE = 16


class Reporter(Protocol):
    """What the CLI's progress display (or any library user) hears while a job runs."""

    def job_update(self, status: JobStatus, elapsed: float) -> None: ...

    def download_progress(self, url: str, received: int, total: int | None) -> None: ...


class SilentReporter:
    def job_update(self, status: JobStatus, elapsed: float) -> None:
        pass

    def download_progress(self, url: str, received: int, total: int | None) -> None:
        pass


@dataclass(frozen=True)
class DownloadPlan:
    directory: Path
    max_bytes: int = DEFAULT_MAX_BYTES


def _directory_flag(directory: Path | None) -> str:
    """` -o DIR` when the images belong somewhere other than the current directory."""
    if directory is None or Path(directory).resolve() == Path.cwd().resolve():
        return ""
    import shlex

    return f" -o {shlex.quote(str(directory))}"


def resume_command(request_ids: list[str], directory: Path | None, *, finished: bool = False) -> str:
    """The command that picks a job up again: keep waiting, or fetch what is already done."""
    if finished and len(request_ids) == 1:
        return f"nanobanana result {request_ids[0]} --download{_directory_flag(directory)}"
    return f"nanobanana watch {' '.join(request_ids)}{_directory_flag(directory)}"


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
            data["error"] = self.error.reason if isinstance(self.error, JobFailedError) else str(self.error)
            data["exit_code"] = int(self.error.exit_code)
        return data


def failure_for(result: JobResult) -> JobFailedError | None:
    if result.succeeded:
        return None
    if result.status == CANCELLED:
        return JobFailedError(f"job {result.request_id} was cancelled", request_id=result.request_id, status=result.status)
    reason = result.error or "no reason given"
    return JobFailedError(
        f"job {result.request_id} {result.status}: {reason}", request_id=result.request_id, status=result.status, reason=reason
    )


@contextmanager
def submitting() -> Iterator[None]:
    """Ctrl-C while a submit is in flight: the job may exist, so say so rather than exit silently."""
    try:
        yield
    except KeyboardInterrupt:
        raise InterruptedWaitError(
            "interrupted while submitting; a job may have been created and billed",
            hint="check `nanobanana history` or your RunComfy dashboard before submitting again",
        ) from None


class Jobs:
    """The job lifecycle for one command, over one client and one history."""

    def __init__(
        self,
        client: Client,
        history: History | None = None,
        *,
        reporter: Reporter | None = None,
        downloads: DownloadPlan | None = None,
        timeout: float | None = None,
        schedule: PollSchedule | None = None,
    ) -> None:
        self.client = client
        self.history = history
        self.reporter = reporter or SilentReporter()
        self.downloads = downloads
        self.timeout = timeout
        self.schedule = schedule
        self.stop = threading.Event()
        self._finished: set[str] = set()

    # -- naming the job whatever happens ----------------------------------------------------------

    @contextmanager
    def resumable(self, request_ids: list[str]) -> Iterator[None]:
        """Ctrl-C, a timeout or a stop: the error names the jobs and the command that resumes them.

        The jobs are left alone: cancelling on Ctrl-C would surprise anyone who only meant to stop watching.
        """
        directory = self.downloads.directory if self.downloads else None
        try:
            yield
        except KeyboardInterrupt:
            self.stop.set()
            raise self._interrupted(request_ids, directory) from None
        except (InterruptedWaitError, WaitTimeoutError) as exc:
            if exc.hint is None:
                exc.hint = f"resume with: {resume_command(request_ids, directory)}"
            raise

    def _interrupted(self, request_ids: list[str], directory: Path | None) -> InterruptedWaitError:
        if len(request_ids) == 1 and request_ids[0] in self._finished:
            return InterruptedWaitError(
                f"interrupted; job {request_ids[0]} has finished on the server",
                hint=f"fetch its images with: {resume_command(request_ids, directory, finished=True)}",
            )
        names = " ".join(request_ids)
        return InterruptedWaitError(
            f"interrupted; job{'s' if len(request_ids) > 1 else ''} {names} "
            f"{'were' if len(request_ids) > 1 else 'was'} not cancelled and keep{'' if len(request_ids) > 1 else 's'} running",
            hint=f"resume with: {resume_command(request_ids, directory)}",
        )

    # -- the steps -----------------------------------------------------------------------------

    def submit(self, generation: GenerationInput) -> Submission:
        """Submit once and record the job before anything else can happen to it."""
        with submitting():
            submission = self.client.submit(generation)
        with self.resumable([submission.request_id]):
            if self.history is not None:
                self.history.record_submission(submission.request_id, generation, self.client.base_url)
        return submission

    def expected_seconds(self) -> float | None:
        return self.history.typical_duration(self.client.base_url) if self.history is not None else None

    def generation_of(self, request_id: str) -> GenerationInput | None:
        entry = self.history.get(request_id) if self.history is not None else None
        return entry.generation if entry else None

    def finish(
        self,
        request_id: str,
        generation: GenerationInput | None,
        *,
        file_stem: str | None = None,
        expected_seconds: float | None = None,
    ) -> JobOutcome:
        """Wait for the job, then save its images; a failed or cancelled job raises `JobFailedError`."""
        started = time.monotonic()
        with self.resumable([request_id]):
            result = wait_for_result(
                self.client, request_id, timeout=self.timeout, on_update=self.reporter.job_update,
                schedule=self.schedule, stop=self.stop, expected_seconds=expected_seconds,
            )
            outcome = self._complete(result, generation, file_stem)
        outcome.elapsed_seconds = time.monotonic() - started
        return outcome

    def outcome_of(self, request_id: str, generation: GenerationInput | None, **finish: Any) -> JobOutcome:
        """`finish`, with a failure carried in the outcome instead of raised (an interrupt still raises)."""
        started = time.monotonic()
        try:
            return self.finish(request_id, generation, **finish)
        except (InterruptedWaitError, KeyboardInterrupt):
            raise
        except NanobananaError as exc:
            status = getattr(exc, "status", None) or ("timeout" if isinstance(exc, WaitTimeoutError) else "error")
            return JobOutcome(request_id, status, generation, elapsed_seconds=time.monotonic() - started, error=exc)

    def fetch(self, request_id: str) -> JobOutcome:
        """A job's outcome without waiting; unfinished or failed jobs carry `NotFinishedError` or `JobFailedError`."""
        result = self.client.result(request_id)
        generation = self.generation_of(request_id)
        if not result.is_finished:
            self._record(request_id, status=result.status)
            directory = self.downloads.directory if self.downloads else None
            waiting = NotFinishedError(
                f"job {request_id} is not finished yet: {result.status}",
                hint=f"wait for it with: {resume_command([request_id], directory)}",
            )
            return JobOutcome(request_id, result.status, generation, error=waiting)
        with self.resumable([request_id]):
            try:
                return self._complete(result, generation, None)
            except JobFailedError as exc:
                return JobOutcome(request_id, exc.status, generation, error=exc)

    def _complete(self, result: JobResult, generation: GenerationInput | None, file_stem: str | None) -> JobOutcome:
        request_id = result.request_id
        self._finished.add(request_id)
        self._record(request_id, status=result.status, output_urls=list(result.output_urls) or None,
                     duration_seconds=result.server_duration)
        failure = failure_for(result)
        if failure:
            raise failure
        saved = None
        if self.downloads is not None:
            saved = download_all(
                self.client, result.output_urls, self.downloads.directory,
                prompt=file_stem or (generation.prompt if generation else None), request_id=request_id,
                output_format=generation.output_format if generation else "png",
                max_bytes=self.downloads.max_bytes, on_progress=self.reporter.download_progress, stop=self.stop,
            )
            self._record(request_id, paths=[item.path for item in saved])
        return JobOutcome(request_id, result.status, generation, list(result.output_urls), saved)

    def status(self, request_id: str) -> tuple[JobStatus, str | None]:
        """The live state and, for a completed job, its outcome: "completed" alone is not success."""
        status = self.client.status(request_id)
        outcome = self.client.result(request_id).status if status.status == COMPLETED else None
        self._record(request_id, status=outcome or status.status)
        return status, outcome

    def cancel(self, request_id: str) -> CancelOutcome:
        outcome = self.client.cancel(request_id)
        if outcome.cancelled:
            self._record(request_id, status=CANCELLED)
        return outcome

    def _record(self, request_id: str, **changes: Any) -> None:
        if self.history is not None:
            self.history.update(request_id, **changes)

    # -- many jobs -----------------------------------------------------------------------------

    def watch(self, jobs: list[tuple[str, GenerationInput | None]]) -> Iterator[JobOutcome]:
        """Yield one `JobOutcome` per job as each finishes; a job's error is carried, not raised."""

        def one(job: tuple[str, GenerationInput | None]) -> JobOutcome:
            return self.outcome_of(*job)

        pending = [request_id for request_id, _ in jobs]
        with self.resumable(pending):
            for outcome in run_concurrently(jobs, one, max_workers=MAX_WATCHED_AT_ONCE, stop=self.stop):
                pending.remove(outcome.request_id)
                yield outcome
