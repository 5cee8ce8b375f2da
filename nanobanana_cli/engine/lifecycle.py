"""A job's whole life in one place: submit and record, wait, check, download, record again.

`Jobs` is the only code that writes job state to the history. `generate`, `batch`, `watch`,
`result`, `status` and `cancel` all go through it, so every path records the same facts and
names the job (with the command that resumes it) before anything can interrupt it.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..api.models import (
    CancelOutcome,
    GenerationInput,
    JobResult,
    JobStatus,
    Submission,
    printable,
)
from ..api.schema import MODEL_ID, TEXT_TO_IMAGE
from ..errors import (
    InterruptedWaitError,
    JobFailedError,
    NanobananaError,
    NotFinishedError,
    SaveFailedError,
    SubmitUncertainError,
    UsageError,
    WaitTimeoutError,
)
from ..sanitise import escape
from ..states import JobState
from ..times import parse_utc, utc_now
from .intent import JobIntent
from .naming import FileNamer, NameTemplate

# Waiting, downloading and the worker pool are imported by the steps that use them, not here:
# everything imported before the submit delays it, and the job's own run hides what comes after.
if TYPE_CHECKING:
    from ..api.client import Client
    from ..stores.history import History, HistoryEntry
    from .downloads import SavedFile
    from .outcome import JobOutcome
    from .polling import Expectation, PollSchedule

MAX_WATCHED_AT_ONCE = 16
DEFAULT_MAX_BYTES = 2 * 1024**3  # per downloaded image


class Reporter(Protocol):
    """What the CLI's progress display (or any library user) hears while a job runs."""

    def job_update(self, status: JobStatus, elapsed: float) -> None: ...

    def download_progress(self, url: str, received: int, total: int | None) -> None: ...

    def warn(self, text: str) -> None: ...


class SilentReporter:
    def job_update(self, status: JobStatus, elapsed: float) -> None:
        pass

    def download_progress(self, url: str, received: int, total: int | None) -> None:
        pass

    def warn(self, text: str) -> None:
        pass


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class DownloadPlan(NamedTuple):
    """Where and how this command saves images. A job that recorded its intent at submit keeps its
    own directory and names, unless this command was given `-o` (`explicit_directory`) or was told
    to name fetched jobs anew (`rename`: `watch` and `result --download` with `--name`)."""

    directory: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    name: NameTemplate | None = None  # this command's --name
    metadata: str = "embed"  # where provenance goes: into the file, a NAME.json beside it, or nowhere
    explicit_directory: bool = True
    rename: bool = False

    def intent(self, namer: FileNamer) -> JobIntent:
        """What a job submitted by this command intends: this directory, these names, this metadata."""
        return JobIntent(self.directory.resolve(), namer, self.metadata)

    def namer(self, generation: GenerationInput | None, **job: Any) -> FileNamer:
        return FileNamer.for_job(self.name, generation, **job)


def prepare_output_dir(directory: str | PathLike[str]) -> Path:
    """Create the directory and prove it is writable, before anything billable happens."""
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise UsageError(f"output directory {str(path)!r} is a file", hint="pass a directory with -o/--output-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(
            f"cannot write to output directory {str(path)!r}: {exc.strerror or exc}",
            hint="pass a writable directory with -o/--output-dir",
        ) from None
    return path


def _directory_flag(directory: Path | None) -> str:
    """` -o DIR` when the images belong somewhere other than the current directory."""
    if directory is None or Path(directory).resolve() == Path.cwd().resolve():
        return ""
    import shlex

    return f" -o {shlex.quote(str(directory))}"


def resume_command(request_ids: list[str], directory: Path | None, *, finished: bool = False, base_url: str | None = None) -> str:
    """The command that picks a job up again: keep waiting, or fetch what is already done.

    `base_url` is given when the job's API will not be the one in effect next time (it came from
    `--base-url`): the command names it, since the job is unknown to any other API.
    """
    import shlex

    api = f" --base-url {shlex.quote(base_url)}" if base_url else ""
    if finished and len(request_ids) == 1:
        return f"nanobanana result {request_ids[0]} --download{_directory_flag(directory)}{api}"
    return f"nanobanana watch {' '.join(request_ids)}{_directory_flag(directory)}{api}"


def _images_asked(generation: GenerationInput | None) -> int:
    """How many images a job may save: those asked for, or for a job this machine does not know, the API's most."""
    return generation.num_images if generation else max(TEXT_TO_IMAGE["num_images"].choices)


def failure_for(result: JobResult) -> JobFailedError | None:
    if result.succeeded:
        return None
    if result.status == JobState.CANCELLED:
        return JobFailedError(f"job {result.request_id} was cancelled", request_id=result.request_id, status=result.status)
    reason = result.error or "no reason given"
    return JobFailedError(
        f"job {result.request_id} {result.status}: {reason}", request_id=result.request_id, status=result.status, reason=reason
    )


SHOWN_PROMPT = 60  # characters of a prompt that name its job in a message


def job_label(generation: GenerationInput) -> str:
    """The job in a message where it has no id to go by: its prompt (escaped, cut short) and its model."""
    return f'"{printable(generation.prompt, limit=SHOWN_PROMPT)}" on {escape(generation.model)}'


@contextmanager
def submitting(generation: GenerationInput) -> Iterator[None]:
    """A submit whose outcome is unknown (its answer lost, or Ctrl-C while it was in flight): the
    job may exist and be billed with no id to find it by, so the error names its prompt and model,
    what the user can recognise it by in the RunComfy dashboard."""
    try:
        yield
    except SubmitUncertainError as exc:
        raise SubmitUncertainError(f"submit of {job_label(generation)}: {exc}", hint=exc.hint) from None
    except KeyboardInterrupt:
        raise InterruptedWaitError(
            f"interrupted while submitting {job_label(generation)}; a job may have been created and billed",
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
        resume_base_url: str | None = None,
    ) -> None:
        self.client = client
        self.history = history
        self.reporter = reporter or SilentReporter()
        self.downloads = downloads
        self.timeout = timeout
        self.schedule = schedule
        self.stop = threading.Event()
        # The API to name in resume hints: set when it came from --base-url, so a plain command would miss the job.
        self.resume_base_url = resume_base_url
        self._finished: set[str] = set()
        self._submitted_at: dict[str, str] = {}
        self._answered_at: dict[str, float] = {}  # the submit's answer, on the client's clock: where a wait's plan starts
        # What earlier jobs took, by number of images: read once per command (a batch of 500 asks once)
        self._learned: dict[int | None, Expectation] = {}

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
            from .downloads import PARTIAL_FILES

            PARTIAL_FILES.remove_all()  # workers blocked on a slow server are not waited for
            raise self._interrupted(request_ids, directory) from None
        except (InterruptedWaitError, WaitTimeoutError) as exc:
            if exc.hint is None:
                exc.hint = f"resume with: {self._resume(request_ids, directory)}"
            raise

    def _resume(self, request_ids: list[str], directory: Path | None, *, finished: bool = False) -> str:
        return resume_command(request_ids, directory, finished=finished, base_url=self.resume_base_url)

    def _interrupted(self, request_ids: list[str], directory: Path | None) -> InterruptedWaitError:
        if len(request_ids) == 1 and request_ids[0] in self._finished:
            return InterruptedWaitError(
                f"interrupted; job {request_ids[0]} has finished on the server",
                hint=f"fetch its images with: {self._resume(request_ids, directory, finished=True)}",
            )
        names = " ".join(request_ids)
        return InterruptedWaitError(
            f"interrupted; job{'s' if len(request_ids) > 1 else ''} {names} "
            f"{'were' if len(request_ids) > 1 else 'was'} not cancelled and keep{'' if len(request_ids) > 1 else 's'} running",
            hint=f"resume with: {self._resume(request_ids, directory)}",
        )

    # -- the steps -----------------------------------------------------------------------------

    def submit(self, generation: GenerationInput, intent: JobIntent | None = None) -> Submission:
        """Submit once, with the job's intent journaled before the POST, and record the job before
        anything else can happen to it. Without an intent, this command's plan gives one."""
        if intent is None and self.downloads is not None:
            intent = self.downloads.intent(self.downloads.namer(generation))
        record = intent.to_record() if intent is not None else None
        answers: list[float] = []
        with submitting(generation):
            submission = self.client.submit(generation, record, on_answer=answers.append)
        # Where the wait's plan counts from: the job was created before its answer came, and the
        # journal's write after it must not make every poll of the plan later still.
        self._answered_at[submission.request_id] = answers[-1] if answers else self.client.clock.monotonic()
        self._submitted_at[submission.request_id] = utc_now()
        with self.resumable([submission.request_id]):
            # a history that journaled the submit already holds the job under its id: no second write
            if self.history is not None and self.client.journal is not self.history:
                self.history.record_submission(submission.request_id, generation, self.client.base_url, record)
        return submission

    def expectation(self, generation: GenerationInput | None) -> Expectation:
        """How long earlier jobs like this one queued and ran on this API (nothing without a history)."""
        from .polling import Expectation

        num_images = generation.num_images if generation is not None else None
        if num_images not in self._learned:
            self._learned[num_images] = Expectation.from_history(self.history, self.client.base_url, num_images)
        return self._learned[num_images]

    def _known(self, request_id: str) -> tuple[GenerationInput | None, str | None]:
        """The job's input and submission time, as far as this process or the history knows them."""
        entry = self.history.get(request_id) if self.history is not None else None
        # the history's time first: every later command (result --download, watch) reads the same one
        submitted_at = (entry.submitted_at if entry else None) or self._submitted_at.get(request_id)
        return (entry.generation if entry else None), submitted_at

    def generation_of(self, request_id: str) -> GenerationInput | None:
        return self._known(request_id)[0]

    def describe(self, request_id: str, status: str, generation: GenerationInput | None = None, **details: Any) -> JobOutcome:
        """The job's document in `status`, completed with what is known about it (input, submission time)."""
        known, submitted_at = self._known(request_id)
        from .outcome import JobOutcome  # after the submit: the job's run hides it

        return JobOutcome(request_id, status, generation or known, submitted_at=submitted_at, **details)

    def finish(
        self,
        request_id: str,
        generation: GenerationInput | None,
        *,
        namer: FileNamer | None = None,
        just_submitted: bool = False,
        off_server: Callable[[], None] | None = None,
    ) -> JobOutcome:
        """Wait for the job, then save its images; a failed or cancelled job raises `JobFailedError`.

        Polls of a job `just_submitted` are planned from what earlier jobs took; those timings count
        from a submit (its answer, not the bookkeeping after it), so they say nothing about a job
        submitted by an earlier command. `off_server` hears the moment the job has finished on the
        server, before its images are fetched (a batch submits its next job then).
        """
        from .polling import wait_for_result

        if self.downloads is not None:
            # loaded while the job runs, not once it has finished: the download threads would import
            # provenance (~5 ms, under the import lock they all wait on) after the job's completion
            from . import downloads, provenance  # noqa: F401
        expectation = self.expectation(generation) if just_submitted else None
        answered_at = self._answered_at.pop(request_id, None) if just_submitted else None
        started = time.monotonic()
        deadline = self._deadline()
        with self.resumable([request_id]):
            result = wait_for_result(
                self.client, request_id, timeout=self.timeout, on_update=self._listening(request_id),
                schedule=self.schedule, stop=self.stop, expectation=expectation, since=answered_at,
            )
            if off_server is not None:
                off_server()
            outcome = self._complete(result, generation, namer, deadline)
        outcome.elapsed_seconds = time.monotonic() - started
        outcome.finished_at = outcome.finished_at or utc_now()  # seen finishing while we waited
        return outcome

    def _listening(self, request_id: str) -> Callable[[JobStatus, float], None]:
        """The reporter's updates, plus when the job began running: after the last answer that said it
        was queued and by the first that said it runs. The next jobs' polls are planned from both
        (`History.timings`). A job first seen finished was never seen running: its start stays unknown
        rather than being recorded after its finish (`times.timeline`)."""
        queued_until: str | None = None
        seen_running = False

        def update(status: JobStatus, elapsed: float) -> None:
            nonlocal queued_until, seen_running
            if status.status == JobState.IN_QUEUE:
                queued_until = utc_now()
            elif not seen_running:
                # Out of the queue by now: the poller learns from this bound even when the job is first
                # seen finished, but only a job seen running has a start.
                seen_running = True
                running = ("running", {"queued_until": queued_until}) if queued_until is not None else None
                started_at = utc_now() if status.status == JobState.IN_PROGRESS else None
                self._record(request_id, started_at=started_at, event=running)
            self.reporter.job_update(status, elapsed)

        return update

    def outcome_of(self, request_id: str, generation: GenerationInput | None, **finish: Any) -> JobOutcome:
        """`finish`, with a failure carried in the outcome instead of raised (an interrupt still raises)."""
        started = time.monotonic()
        try:
            return self.finish(request_id, generation, **finish)
        except (InterruptedWaitError, KeyboardInterrupt):
            raise
        except NanobananaError as exc:
            status = getattr(exc, "status", None) or ("timeout" if isinstance(exc, WaitTimeoutError) else "error")
            finished_at = utc_now() if isinstance(exc, JobFailedError) else None
            return self.describe(
                request_id, status, generation, elapsed_seconds=time.monotonic() - started, error=exc, finished_at=finished_at
            )

    def fetch(self, request_id: str) -> JobOutcome:
        """A job's outcome without waiting; unfinished or failed jobs carry `NotFinishedError` or `JobFailedError`."""
        deadline = self._deadline()
        result = self.client.result(request_id, include_cost=True)
        generation = self.generation_of(request_id)
        if not result.is_finished:
            self._record(request_id, status=result.status)
            directory = self.downloads.directory if self.downloads else None
            waiting = NotFinishedError(
                f"job {request_id} is not finished yet: {result.status}",
                hint=f"wait for it with: {self._resume([request_id], directory)}",
            )
            return self.describe(request_id, result.status, generation, queue_position=result.queue_position, error=waiting)
        with self.resumable([request_id]):
            try:
                return self._complete(result, generation, None, deadline)
            except JobFailedError as exc:
                return self.describe(request_id, exc.status, generation, error=exc, finished_at=result.finished_at)

    def _deadline(self) -> float | None:
        """When `--timeout` runs out for a job starting now: it bounds the wait and the downloads alike."""
        return None if self.timeout is None else self.client.clock.monotonic() + self.timeout

    def _complete(
        self, result: JobResult, generation: GenerationInput | None, namer: FileNamer | None, deadline: float | None
    ) -> JobOutcome:
        request_id = result.request_id
        self._finished.add(request_id)
        self._record(request_id, status=result.status, output_urls=list(result.output_urls) or None,
                     duration_seconds=result.server_duration, cost=result.cost, created_at=result.created_at,
                     finished_at=result.finished_at)
        failure = failure_for(result)
        if failure:
            raise failure
        saved = self._save(result, generation, namer, deadline) if self.downloads is not None else None
        return self.describe(
            request_id, result.status, generation, output_urls=list(result.output_urls), saved=saved,
            finished_at=result.finished_at, cost=result.cost,
        )

    def _save(
        self, result: JobResult, generation: GenerationInput | None, namer: FileNamer | None, deadline: float | None
    ) -> list[SavedFile]:
        """Download every image with its provenance, and record both hashes of each file.

        Where and under which names: as the job's recorded intent says, unless this command was
        told otherwise (`-o`, `--name`); `namer` serves a job with no recorded intent. The job's
        history row is read once, for all of these and every image's provenance."""
        assert self.downloads is not None
        request_id = result.request_id
        entry = self.history.get(request_id) if self.history is not None else None
        intended = JobIntent.from_record(entry.intent) if entry is not None else None
        directory = self._destination(entry, intended)
        submitted_at = (entry.submitted_at if entry else None) or self._submitted_at.get(request_id)
        if intended is not None and not self.downloads.rename:
            namer = intended.namer
        elif namer is None or self.downloads.rename:
            namer = self.downloads.namer(generation, when=parse_utc(submitted_at))  # {date} and {time}: the submit's
        directory.mkdir(parents=True, exist_ok=True)  # library users may name a new directory
        started = time.monotonic()
        try:
            saved = self._download(result, generation, directory, namer, deadline, submitted_at)
        except SaveFailedError as exc:  # the disk is full: once there is room, the same job is fetched again
            exc.hint = (f"free some space (or raise the file-size limit), then fetch the images again: "
                        f"{self._resume([request_id], directory, finished=True)}")
            raise
        except WaitTimeoutError as exc:  # the job is done: its images can be fetched later
            raise WaitTimeoutError(
                f"gave up after {self.timeout:g}s; {exc}", request_id=request_id,
                hint=f"fetch the images with: {self._resume([request_id], directory, finished=True)}",
            ) from None
        seconds = round(time.monotonic() - started, 3)
        # a later `result --download` adds its copies: every file the job ever saved stays findable by hash
        files = list({item["path"]: item for item in [*(entry.files if entry else []), *(s.to_dict() for s in saved)]}.values())
        downloaded = ("downloaded", {"seconds": seconds, "bytes": sum(item.bytes for item in saved)})
        self._record(request_id, paths=[item.path for item in saved], files=files, event=downloaded)
        return saved

    def _download(
        self, result: JobResult, generation: GenerationInput | None, directory: Path, namer: FileNamer,
        deadline: float | None, submitted_at: str | None,
    ) -> list[SavedFile]:
        from .downloads import download_all

        assert self.downloads is not None
        request_id = result.request_id
        expected = _images_asked(generation)
        count = min(len(result.output_urls), expected)
        return download_all(
            self.client, result.output_urls, directory,
            names=namer.names(request_id, count),
            request_id=request_id,
            output_format=(generation.output_format or "png") if generation else "png",
            max_bytes=self.downloads.max_bytes, on_progress=self.reporter.download_progress, stop=self.stop,
            provenance=lambda index: self._provenance(result, generation, index, count, submitted_at),
            metadata=self.downloads.metadata, expected=expected, deadline=deadline, warn=self.reporter.warn,
        )

    def destination(self, request_id: str) -> Path:
        """Where this command saves the job's images: -o if it was given, else where the job was
        submitted to save them (its recorded intent; for jobs recorded before intents were, where
        its images went), else the plan's directory."""
        entry = self.history.get(request_id) if self.history is not None else None
        return self._destination(entry, JobIntent.from_record(entry.intent) if entry is not None else None)

    def _destination(self, entry: HistoryEntry | None, intended: JobIntent | None) -> Path:
        assert self.downloads is not None
        if self.downloads.explicit_directory:
            return self.downloads.directory
        if intended is not None:
            return intended.output_dir
        if entry is not None and entry.paths:
            return Path(entry.paths[0]).parent
        return self.downloads.directory

    def _provenance(
        self, result: JobResult, generation: GenerationInput | None, index: int, count: int, submitted_at: str | None
    ) -> dict[str, Any]:
        """What a saved image carries about itself: enough to make it again, never the token."""
        from .. import __version__
        from ..api.urls import parse_origin

        origin = parse_origin(self.client.base_url)
        return {
            **(generation.to_payload() if generation else {}),
            "index": index, "count": count, "model": generation.model if generation else MODEL_ID, "request_id": result.request_id,
            "api_host": origin.host if origin else None,
            "submitted_at": submitted_at, "finished_at": result.finished_at,
            "tool": f"nanobanana-cli {__version__}",
        }

    def status(self, request_id: str) -> JobOutcome:
        """The live state; for a completed job, its outcome and URLs instead ("completed" alone is not success)."""
        status = self.client.status(request_id)
        if status.status != JobState.COMPLETED:
            self._record(request_id, status=status.status)
            return self.describe(request_id, status.status, queue_position=status.queue_position)
        result = self.client.result(request_id, include_cost=True)
        self._record(request_id, status=result.status)
        return self.describe(
            request_id, result.status, output_urls=list(result.output_urls), finished_at=result.finished_at,
            job_error=result.error if result.status == JobState.FAILED else None,
        )

    def cancel(self, request_id: str) -> CancelOutcome:
        outcome = self.client.cancel(request_id)
        if outcome.cancelled:
            self._record(request_id, status=JobState.CANCELLED)
        return outcome

    def _record(self, request_id: str, **changes: Any) -> None:
        if self.history is not None:
            self.history.update(request_id, **changes)

    # -- many jobs -----------------------------------------------------------------------------

    def watch(self, jobs: list[tuple[str, GenerationInput | None]]) -> Iterator[JobOutcome]:
        """Yield one `JobOutcome` per job as each finishes; a job's error is carried, not raised."""

        def one(job: tuple[str, GenerationInput | None]) -> JobOutcome:
            return self.outcome_of(*job)

        from .workers import run_concurrently

        pending = [request_id for request_id, _ in jobs]
        with self.resumable(pending):
            for outcome in run_concurrently(jobs, one, max_workers=MAX_WATCHED_AT_ONCE, stop=self.stop):
                pending.remove(outcome.request_id)
                yield outcome
