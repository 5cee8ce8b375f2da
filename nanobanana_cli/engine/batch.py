"""Batch generation: many prompts, a bounded number in flight, resumable without double billing.

A job is in flight from its submit (or re-attach) until it has finished on the server: the moment
it has, the next line is submitted, while its images are still being fetched and recorded.

A manifest in the output directory (JSON Lines, appended and fsynced) records that a line is
being submitted before its POST goes out, and its request id the moment the answer arrives. A
later run with the same input and directory skips lines whose images are on disk, re-attaches
to jobs that were submitted but not finished, reports as `uncertain` (and never re-sends) lines
whose submit may have been billed without an id coming back, and submits only the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from ..api.described import UNCERTAIN_SUBMIT_HINT
from ..errors import InterruptedWaitError, JobFailedError, NanobananaError, SubmitUncertainError
from ..states import JobState
from .batch_file import BatchLine
from .lifecycle import Jobs, Reporter, job_label
from .manifest import MANIFEST_NAME, Manifest, saved_files_present
from .naming import FileNamer
from .outcome import JobOutcome
from .workers import run_concurrently

RERUN_HINT = "run the same batch command again to resume without paying twice"


class BatchReporter(Reporter, Protocol):
    def line_started(self, line: BatchLine, action: str, request_id: str | None) -> None: ...

    def line_finished(self, line: BatchLine, outcome: JobOutcome, skipped: bool) -> None: ...


@dataclass
class LineOutcome:
    line: BatchLine
    outcome: JobOutcome
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**self.outcome.to_dict(), "line": self.line.number, "name": self.line.name, "skipped": self.skipped}


def run_batch(
    jobs: Jobs,
    lines: list[BatchLine],
    *,
    concurrency: int,
    reporter: BatchReporter,
    resubmit_uncertain: bool = False,
    warn: Callable[[str], None] | None = None,
    manifest_name: str = MANIFEST_NAME,
    rerun_hint: str = RERUN_HINT,
    manifest: Manifest | None = None,
) -> Iterator[LineOutcome]:
    """Yield each line's outcome as it finishes, with at most `concurrency` jobs in flight.

    A line whose earlier submit has an unknown outcome is reported `uncertain` and not sent
    again unless `resubmit_uncertain`; `warn` hears of every manifest record that was skipped.
    Records go to `manifest_name` in the output directory (a shard's own file, say), or to
    `manifest` when the caller already opened it (to say what the run will submit).
    """
    if jobs.downloads is None:
        raise ValueError("a batch always downloads: give Jobs a DownloadPlan")
    if manifest is None:
        manifest = Manifest(jobs.downloads.directory, manifest_name)
    for path, problem in manifest.problems:
        if warn:
            warn(f"{path}:{problem.number}: {problem.message}")
    places = _Places(concurrency)
    runner = _LineRunner(jobs, manifest, reporter, resubmit_uncertain, places)
    try:
        # a worker per job in flight, and one more for each to save a finished job's images meanwhile
        yield from run_concurrently(lines, runner.run, max_workers=2 * concurrency, stop=jobs.stop)
    except KeyboardInterrupt:
        raise InterruptedWaitError(
            "interrupted; every submitted job is in the manifest and keeps running",
            hint=rerun_hint,
        ) from None
    finally:
        places.close()  # workers still waiting for a place (after a stop) end instead of submitting


class _LineRunner:
    """One batch line from its manifest state to an outcome: skip, re-attach, refuse, or submit."""

    def __init__(
        self, jobs: Jobs, manifest: Manifest, reporter: BatchReporter, resubmit_uncertain: bool, places: _Places
    ) -> None:
        self.jobs = jobs
        self.manifest = manifest
        self.reporter = reporter
        self.resubmit_uncertain = resubmit_uncertain
        self._places = places
        assert jobs.downloads is not None  # run_lines refuses a Jobs without one
        self._plan = jobs.downloads

    def run(self, line: BatchLine) -> LineOutcome:
        try:
            return self._process(line)
        except InterruptedWaitError:
            raise
        except NanobananaError as exc:  # a submit that failed: nothing to wait for
            return self._finished(line, JobOutcome.from_error(exc, line.generation))

    def _finished(self, line: BatchLine, outcome: JobOutcome, skipped: bool = False) -> LineOutcome:
        self.reporter.line_finished(line, outcome, skipped)
        return LineOutcome(line, outcome, skipped=skipped)

    def _process(self, line: BatchLine) -> LineOutcome:
        state = self.manifest.get(line.key)
        saved = saved_files_present(state, self.manifest.path.parent)
        if saved is not None:  # line_action's "skip"
            outcome = JobOutcome(state.get("request_id") or "", JobState.SUCCEEDED, line.generation, [s.url for s in saved], saved)
            return self._finished(line, outcome, skipped=True)
        action = _unsaved_action(state, self.resubmit_uncertain)
        if action == "uncertain":
            return self._finished(line, JobOutcome("", JobState.UNCERTAIN, line.generation, error=_uncertain_error(line)))
        with self._places.taken() as place:
            namer = line_namer(self.jobs, line)  # once: the intent's {date} and {time} are the submit's
            request_id: str = state.get("request_id") or ""
            just_submitted = False
            if action == "attach":
                self.reporter.line_started(line, "re-attached", request_id)
            else:
                request_id = self._submit(line, namer)
                just_submitted = True
            outcome = _finish_line(self.jobs, self.manifest, line, namer, request_id, just_submitted, place.give_back)
        return self._finished(line, outcome)

    def _submit(self, line: BatchLine, namer: FileNamer) -> str:
        """Submit at most once: the fsynced `submitting` record comes first, so a crash at any
        moment after it leaves the line uncertain instead of sent again."""
        if self.jobs.stop.is_set():
            raise InterruptedWaitError("interrupted before this line was submitted")
        matrix = {"vars": line.values} if line.values else {}  # what the gallery groups a matrix's images by
        # the line's model and input as recorded everywhere: input images as their URL or file record, never their data
        self.manifest.record(line.key, durable=True, line=line.number, request_id=None, status=JobState.SUBMITTING,
                             model=line.generation.model, input=line.generation.to_payload(), **matrix)
        try:
            request_id = self.jobs.submit(line.generation, self._plan.intent(namer)).request_id
        except SubmitUncertainError as exc:
            self.manifest.record(line.key, durable=True, status=JobState.UNCERTAIN, error=str(exc))
            raise
        except NanobananaError as exc:
            self.manifest.record(line.key, status=JobState.NOT_SENT, error=str(exc))
            raise
        self.manifest.record(line.key, durable=True, line=line.number, request_id=request_id, status=JobState.SUBMITTED)
        self.reporter.line_started(line, "submitted", request_id)
        return request_id


class _Places:
    """The batch's `concurrency` places for jobs in flight. A line takes one before its submit (or
    re-attach) and gives it back the moment its job has finished on the server (`Jobs.finish`'s
    `off_server`), or when the line is done, whichever is first. Waiting costs nothing: no timed
    wake-ups, and `close` (the batch is over, or stopped) ends every wait."""

    def __init__(self, count: int) -> None:
        self._free = count
        self._closed = False
        self._changed = threading.Condition()

    @contextmanager
    def taken(self) -> Iterator[_Place]:
        with self._changed:
            while not self._free and not self._closed:
                self._changed.wait()
            if self._closed:
                raise InterruptedWaitError("interrupted before this line was submitted")
            self._free -= 1
        place = _Place(self)
        try:
            yield place
        finally:
            place.give_back()

    def _give_back(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()


class _Place:
    """One place taken: given back once, by whichever comes first."""

    def __init__(self, places: _Places) -> None:
        self._places: _Places | None = places

    def give_back(self) -> None:
        if self._places is not None:
            places, self._places = self._places, None
            places._give_back()


LineAction = Literal["skip", "attach", "uncertain", "submit"]


def line_action(state: dict[str, Any], directory: Path, resubmit_uncertain: bool = False) -> LineAction:
    """What a run does with a line, from its manifest record: `skip` (its images are on disk),
    `attach` (a submitted job, waited on without paying again), `uncertain` (an earlier submit may
    have been billed: not sent again) or `submit` (new, not sent, failed or cancelled)."""
    if saved_files_present(state, directory) is not None:
        return "skip"
    return _unsaved_action(state, resubmit_uncertain)


def _unsaved_action(state: dict[str, Any], resubmit_uncertain: bool) -> LineAction:
    """`line_action` of a line whose images are not on disk."""
    if state.get("request_id") and state.get("status") not in (JobState.FAILED, JobState.CANCELLED):
        return "attach"
    if state.get("status") == JobState.UNCERTAIN and not resubmit_uncertain:
        return "uncertain"
    return "submit"


def still_to_submit(manifest: Manifest, lines: list[BatchLine], resubmit_uncertain: bool) -> list[BatchLine]:
    """The lines a run with `manifest` will submit (and pay for), by `line_action`, the rule `run_batch`
    follows: given the same manifest, the estimate and the run cannot disagree."""
    directory = manifest.path.parent
    return [line for line in lines if line_action(manifest.get(line.key), directory, resubmit_uncertain) == "submit"]


def line_namer(jobs: Jobs, line: BatchLine) -> FileNamer:
    """The line's names: a generate run's own, or the batch's --name with the line's `name` as its slug."""
    assert jobs.downloads is not None
    return line.namer or jobs.downloads.namer(line.generation, label=line.name)


def _uncertain_error(line: BatchLine) -> SubmitUncertainError:
    return SubmitUncertainError(
        f"an earlier submit of {job_label(line.generation)} has an unknown outcome (a job may exist and be billed); not sent again",
        hint=UNCERTAIN_SUBMIT_HINT,
    )


def _finish_line(
    jobs: Jobs, manifest: Manifest, line: BatchLine, namer: FileNamer, request_id: str, just_submitted: bool,
    off_server: Callable[[], None],
) -> JobOutcome:
    started = time.monotonic()
    try:
        outcome = jobs.finish(request_id, line.generation, namer=namer, just_submitted=just_submitted, off_server=off_server)
    except InterruptedWaitError:
        raise  # the manifest already holds the request id; the next run re-attaches
    except NanobananaError as exc:
        status = exc.status if isinstance(exc, JobFailedError) else JobState.ERROR
        manifest.record(line.key, status=status, error=str(exc))
        return JobOutcome(request_id, status, line.generation, elapsed_seconds=time.monotonic() - started, error=exc)
    manifest.record(line.key, status=JobState.SUCCEEDED, outputs=[item.to_dict() for item in outcome.saved or []])
    return outcome
