"""Batch generation: many prompts, a bounded number in flight, resumable without double billing.

A manifest in the output directory (JSON Lines, appended and fsynced) records that a line is
being submitted before its POST goes out, and its request id the moment the answer arrives. A
later run with the same input and directory skips lines whose images are on disk, re-attaches
to jobs that were submitted but not finished, reports as `uncertain` (and never re-sends) lines
whose submit may have been billed without an id coming back, and submits only the rest.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from ..api.described import UNCERTAIN_SUBMIT_HINT
from ..api.models import REQUEST_ID_PATTERN, GenerationInput
from ..errors import InterruptedWaitError, JobFailedError, NanobananaError, SubmitUncertainError, UsageError
from ..states import JobState
from ..stores import safe_json
from ..stores.safe_files import is_regular_file, open_existing, open_for_append
from .downloads import SavedFile
from .lifecycle import JobOutcome, Jobs, Reporter
from .naming import FileNamer
from .workers import run_concurrently

if TYPE_CHECKING:
    from datetime import datetime

    from .matrix import PlannedJob
    from .naming import NameTemplate

MANIFEST_NAME = "nanobanana-batch.jsonl"
# Every manifest a directory may hold: the batch's own, each shard's, a generate run's (the same file).
MANIFEST_GLOB = "nanobanana-batch*.jsonl"
RERUN_HINT = "run the same batch command again to resume without paying twice"
JSON_FIELDS = ("prompt", "aspect_ratio", "output_format", "num_images", "name")


@dataclass(frozen=True)
class BatchLine:
    number: int
    generation: GenerationInput
    name: str | None
    key: str
    namer: FileNamer | None = None  # a generate run's names for this job; else the batch's --name and `name`
    values: dict[str, str] = field(default_factory=dict)  # a matrix's values, kept in the manifest

    @property
    def label(self) -> str:
        return self.name or self.generation.prompt


@dataclass(frozen=True)
class LineProblem:
    number: int
    message: str


def parse_batch(text: str, defaults: dict[str, Any]) -> tuple[list[BatchLine], list[LineProblem]]:
    """Prompts one per line (blank lines and `#` comments skipped), or JSON objects one per line.

    `defaults` fill in what a line leaves out. Every problem is collected, so all can be shown at once.
    """
    lines: list[BatchLine] = []
    problems: list[LineProblem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields: dict[str, Any] = dict(defaults)
        name = None
        if stripped.startswith("{"):
            try:
                data = safe_json.loads(stripped)
            except ValueError as exc:
                problems.append(LineProblem(number, f"invalid JSON ({exc})"))
                continue
            unknown = sorted(set(data) - set(JSON_FIELDS)) if isinstance(data, dict) else []
            if not isinstance(data, dict) or "prompt" not in data or unknown:
                detail = f"unknown field(s) {', '.join(unknown)}" if unknown else "a JSON line needs a \"prompt\""
                problems.append(LineProblem(number, f"{detail}; fields: {', '.join(JSON_FIELDS)}"))
                continue
            name = data.pop("name", None)
            if name is not None and not isinstance(name, str):
                problems.append(LineProblem(number, "\"name\" must be a string"))
                continue
            fields.update(data)
        else:
            fields["prompt"] = stripped
        if not isinstance(fields.get("prompt"), str):
            problems.append(LineProblem(number, "\"prompt\" must be a string"))
            continue
        try:
            generation = GenerationInput(**fields)
        except NanobananaError as exc:
            problems.append(LineProblem(number, str(exc)))
            continue
        lines.append(BatchLine(number, generation, name, _key({**generation.to_payload(), "name": name}, seen)))
    return lines, problems


def _key(identity: dict[str, Any], seen: dict[str, int]) -> str:
    """A line's name in the manifest: a hash of what it asks for, and which repeat of it this is."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    seen[digest] = seen.get(digest, 0) + 1
    return f"{digest}-{seen[digest]}"


def planned_lines(jobs: list[PlannedJob], template: NameTemplate | None, started: datetime) -> list[BatchLine]:
    """A generate run's jobs as batch lines, numbered from 1; rerun alike, they get the same keys.
    Each job's files are numbered over its prompt's images (`-n 10`: 1 to 10), with one {date} and
    {time} for the whole run."""
    seen: dict[str, int] = {}
    lines = []
    for number, job in enumerate(jobs, start=1):
        key = _key({**job.generation.to_payload(), "vars": job.values, "first": job.first}, seen)
        namer = FileNamer.for_job(template, job.generation, values=job.values, first=job.first, total=job.total,
                                  when=started)
        lines.append(BatchLine(number, job.generation, None, key, namer=namer, values=job.values))
    return lines


SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SAVED_FILE_REQUIRED = frozenset({"url", "path", "bytes", "sha256", "delivered_sha256", "provenance"})


def _record_problem(record: Any) -> str | None:
    """Why a manifest record cannot be used as it stands, or None: it is ours, but a disk, an
    editor or another version may have mangled it, and its fields decide what gets billed."""
    if not isinstance(record, dict) or not isinstance(record.get("key"), str):
        return "not a record with a \"key\""
    request_id = record.get("request_id")
    if request_id is not None and not (isinstance(request_id, str) and REQUEST_ID_PATTERN.match(request_id)):
        return "invalid \"request_id\""
    for name in ("status", "error"):
        if record.get(name) is not None and not isinstance(record[name], str):
            return f"\"{name}\" is not a string"
    line = record.get("line")
    if line is not None and (not isinstance(line, int) or isinstance(line, bool) or line < 1):
        return "\"line\" is not a line number"
    if record.get("vars") is not None and safe_json.text_mapping(record["vars"]) is None:
        return "\"vars\" is not an object of strings"
    outputs = record.get("outputs")
    if outputs is not None and not (isinstance(outputs, list) and all(_is_saved_file(item) for item in outputs)):
        return "invalid \"outputs\" (expected url, path, bytes and sha256 for each file)"
    return None


def _is_saved_file(item: Any) -> bool:
    return (
        # fields added since (provenance_reason) are optional: a manifest written by an earlier version stays good
        isinstance(item, dict) and SAVED_FILE_REQUIRED <= set(item) <= {field.name for field in fields(SavedFile)}
        and isinstance(item["url"], str) and isinstance(item["path"], str)
        and isinstance(item["bytes"], int) and not isinstance(item["bytes"], bool) and item["bytes"] >= 0
        and isinstance(item["sha256"], str) and SHA256_PATTERN.match(item["sha256"]) is not None
    )


class Manifest:
    """Append-only record of what happened to each line; the last record for a key wins.

    Loading never fails on a bad record: each is reported in `problems` (with its file and line
    number) and skipped. A record that was ours but is unreadable leaves its line `uncertain`
    unless a later record settles it, since it may have held the id of a billed job.

    A directory may hold several manifests (one per shard of a batch, say): all of them are read,
    so no run submits a line another run already has, and records go to this run's own file. The
    others are only read, up to their last complete line: another process may be writing them.
    """

    def __init__(self, directory: Path, name: str = MANIFEST_NAME) -> None:
        self.path = directory / name
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, Any]] = {}
        self.problems: list[tuple[Path, LineProblem]] = []
        if self.path.is_symlink() or (self.path.exists() and not is_regular_file(self.path)):
            raise UsageError(
                f"the manifest {self.path} is not a regular file (a symbolic link?); nothing was submitted",
                hint="remove it, or choose another output directory",
            )
        self._created = not self.path.exists()
        for other in manifests_in(directory):
            if other != self.path:
                _load_records(_complete_lines(other), other, self._state, self.problems)
        if not self._created:
            _load_records(self._repair_cut_tail(), self.path, self._state, self.problems)
        _settle_submitting(self._state)

    def _repair_cut_tail(self) -> bytes:
        """The contents, with a last line cut short by a crash or a full disk dropped (or, if it is
        a whole record missing only its newline, completed), so the next record starts on a line of its own.

        A cut record was never fsynced, so nothing was sent on its strength: dropping it is safe.
        """
        with _opened_manifest(self.path, os.O_RDWR) as handle:
            data = handle.read()
            if not data or data.endswith(b"\n"):
                return data
            cut = data.rfind(b"\n") + 1
            try:
                whole = _record_problem(safe_json.loads(data[cut:])) is None
            except ValueError:
                whole = False
            if whole:
                handle.seek(0, os.SEEK_END)
                handle.write(b"\n")
            else:
                handle.truncate(cut)
                number = data.count(b"\n") + 1
                cut_short = LineProblem(number, "record cut short (a crash or a full disk?); removed it")
                self.problems.append((self.path, cut_short))
            handle.flush()
            os.fsync(handle.fileno())
        return data + b"\n" if whole else data[:cut]

    def get(self, key: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._state.get(key, {}))

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(state) for state in self._state.values()]

    def record(self, key: str, *, durable: bool = False, **fields: Any) -> None:
        """Append a record; `durable` ones are fsynced before returning (a lost request id means paying twice)."""
        record = {"key": key, **fields, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with self._lock:
            self._state.setdefault(key, {}).update(record)
            with open_for_append(self.path) as handle:  # never through a link planted at its name
                handle.write(json.dumps(record).encode("utf-8") + b"\n")
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            if durable and self._created:
                _fsync_directory(self.path.parent)  # a new file's name must survive a crash too
                self._created = False


def manifests_in(directory: Path) -> list[Path]:
    return sorted(path for path in directory.glob(MANIFEST_GLOB) if path.is_file() or path.is_symlink())


def _complete_lines(path: Path) -> bytes:
    """Another run's manifest, up to its last newline: a record being written is not read half-way."""
    try:
        with _opened_manifest(path, os.O_RDONLY) as handle:
            data = handle.read()
    except OSError as exc:
        # Skipping it could submit (and bill) its lines a second time.
        why = "not a regular file (a symbolic link?)" if exc.errno == errno.ELOOP else exc.strerror or exc
        raise UsageError(f"cannot read the manifest {path}: {why}", hint="fix or remove it") from None
    return data[: data.rfind(b"\n") + 1]


@contextmanager
def _opened_manifest(path: Path, flags: int) -> Iterator[BinaryIO]:
    """A manifest opened at its own name: a link there (to a file a run would then append to or
    truncate, or whose records it would trust) is an error, not followed."""
    with open_existing(path, flags) as fd, os.fdopen(os.dup(fd), "r+b" if flags & os.O_RDWR else "rb") as handle:
        yield handle


def _load_records(
    data: bytes, path: Path, state: dict[str, dict[str, Any]], problems: list[tuple[Path, LineProblem]]
) -> None:
    for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not raw.strip():
            continue
        problem: str | None
        try:
            record = safe_json.loads(raw)
        except ValueError as exc:
            record, problem = None, f"not JSON ({exc})"
        else:
            problem = _record_problem(record)
        if problem is None:
            state.setdefault(record["key"], {}).update(record)
            continue
        problems.append((path, LineProblem(number, f"{problem}; skipped")))
        if isinstance(record, dict) and isinstance(record.get("key"), str):
            entry = state.setdefault(record["key"], {})
            entry.update(status=JobState.UNCERTAIN, error=f"manifest {path.name} line {number} is unreadable")


def _settle_submitting(state: dict[str, dict[str, Any]]) -> None:
    for entry in state.values():
        if entry.get("status") == JobState.SUBMITTING:  # its process died with the POST in flight (or is sending it now)
            entry["status"] = JobState.UNCERTAIN


def read_manifests(directory: Path, warn: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Every line's state in the directory's manifests, read without writing (merge, the gallery);
    `warn` hears of every record that was skipped."""
    state: dict[str, dict[str, Any]] = {}
    problems: list[tuple[Path, LineProblem]] = []
    for path in manifests_in(directory):
        _load_records(_complete_lines(path), path, state, problems)
    _settle_submitting(state)
    for path, problem in problems:
        if warn is not None:
            warn(f"{path}:{problem.number}: {problem.message}")
    return state


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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


def saved_files_present(state: dict[str, Any], directory: Path) -> list[SavedFile] | None:
    """A finished line's files, each where the manifest says or else beside it in `directory` (the
    directory was moved, or copied from another machine), all of their recorded size; else None.

    A link counts as no file: what it points to is not what the job saved (and `merge` would copy it)."""
    files = state.get("outputs")
    if state.get("status") != JobState.SUCCEEDED or not files:
        return None
    saved = []
    for record in files:
        item = SavedFile(**record)
        path = Path(item.path)
        if not is_regular_file(path):
            path = directory / path.name
        if not is_regular_file(path) or path.stat().st_size != item.bytes:
            return None
        saved.append(replace(item, path=str(path.resolve())))
    return saved


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
) -> Iterator[LineOutcome]:
    """Yield each line's outcome as it finishes, with at most `concurrency` jobs in flight.

    A line whose earlier submit has an unknown outcome is reported `uncertain` and not sent
    again unless `resubmit_uncertain`; `warn` hears of every manifest record that was skipped.
    Records go to `manifest_name` in the output directory (a shard's own file, say).
    """
    if jobs.downloads is None:
        raise ValueError("a batch always downloads: give Jobs a DownloadPlan")
    manifest = Manifest(jobs.downloads.directory, manifest_name)
    for path, problem in manifest.problems:
        if warn:
            warn(f"{path}:{problem.number}: {problem.message}")
    runner = _LineRunner(jobs, manifest, reporter, resubmit_uncertain)
    try:
        yield from run_concurrently(lines, runner.run, max_workers=concurrency, stop=jobs.stop)
    except KeyboardInterrupt:
        raise InterruptedWaitError(
            "interrupted; every submitted job is in the manifest and keeps running",
            hint=rerun_hint,
        ) from None


class _LineRunner:
    """One batch line from its manifest state to an outcome: skip, re-attach, refuse, or submit."""

    def __init__(
        self, jobs: Jobs, manifest: Manifest, reporter: BatchReporter, resubmit_uncertain: bool
    ) -> None:
        self.jobs = jobs
        self.manifest = manifest
        self.reporter = reporter
        self.resubmit_uncertain = resubmit_uncertain
        assert jobs.downloads is not None  # run_lines refuses a Jobs without one
        self._plan = jobs.downloads

    def run(self, line: BatchLine) -> LineOutcome:
        try:
            return self._process(line)
        except InterruptedWaitError:
            raise
        except NanobananaError as exc:  # a submit that failed: nothing to wait for
            status = JobState.UNCERTAIN if isinstance(exc, SubmitUncertainError) else JobState.ERROR
            return self._finished(line, JobOutcome("", status, line.generation, error=exc))

    def _finished(self, line: BatchLine, outcome: JobOutcome, skipped: bool = False) -> LineOutcome:
        self.reporter.line_finished(line, outcome, skipped)
        return LineOutcome(line, outcome, skipped=skipped)

    def _process(self, line: BatchLine) -> LineOutcome:
        state = self.manifest.get(line.key)
        saved = saved_files_present(state, self.manifest.path.parent)
        if saved is not None:
            outcome = JobOutcome(state.get("request_id") or "", JobState.SUCCEEDED, line.generation, [s.url for s in saved], saved)
            return self._finished(line, outcome, skipped=True)
        request_id = state.get("request_id")
        just_submitted = False
        if request_id and state.get("status") not in (JobState.FAILED, JobState.CANCELLED):
            self.reporter.line_started(line, "re-attached", request_id)
        elif state.get("status") == JobState.UNCERTAIN and not self.resubmit_uncertain:
            return self._finished(line, JobOutcome("", JobState.UNCERTAIN, line.generation, error=_uncertain_error()))
        else:
            request_id = self._submit(line)
            just_submitted = True
        return self._finished(line, _finish_line(self.jobs, self.manifest, line, request_id, just_submitted))

    def _submit(self, line: BatchLine) -> str:
        """Submit at most once: the fsynced `submitting` record comes first, so a crash at any
        moment after it leaves the line uncertain instead of sent again."""
        if self.jobs.stop.is_set():
            raise InterruptedWaitError("interrupted before this line was submitted")
        matrix = {"vars": line.values} if line.values else {}  # what the gallery groups a matrix's images by
        self.manifest.record(line.key, durable=True, line=line.number, request_id=None, status=JobState.SUBMITTING, **matrix)
        try:
            request_id = self.jobs.submit(line.generation, self._plan.intent(line_namer(self.jobs, line))).request_id
        except SubmitUncertainError as exc:
            self.manifest.record(line.key, durable=True, status=JobState.UNCERTAIN, error=str(exc))
            raise
        except NanobananaError as exc:
            self.manifest.record(line.key, status=JobState.NOT_SENT, error=str(exc))
            raise
        self.manifest.record(line.key, durable=True, line=line.number, request_id=request_id, status=JobState.SUBMITTED)
        self.reporter.line_started(line, "submitted", request_id)
        return request_id


def line_namer(jobs: Jobs, line: BatchLine) -> FileNamer:
    """The line's names: a generate run's own, or the batch's --name with the line's `name` as its slug."""
    assert jobs.downloads is not None
    return line.namer or jobs.downloads.namer(line.generation, label=line.name)


def _uncertain_error() -> SubmitUncertainError:
    return SubmitUncertainError(
        "an earlier submit of this line has an unknown outcome (a job may exist and be billed); not sent again",
        hint=UNCERTAIN_SUBMIT_HINT,
    )


def _finish_line(jobs: Jobs, manifest: Manifest, line: BatchLine, request_id: str, just_submitted: bool) -> JobOutcome:
    started = time.monotonic()
    try:
        outcome = jobs.finish(request_id, line.generation, namer=line_namer(jobs, line), just_submitted=just_submitted)
    except InterruptedWaitError:
        raise  # the manifest already holds the request id; the next run re-attaches
    except NanobananaError as exc:
        status = exc.status if isinstance(exc, JobFailedError) else JobState.ERROR
        manifest.record(line.key, status=status, error=str(exc))
        return JobOutcome(request_id, status, line.generation, elapsed_seconds=time.monotonic() - started, error=exc)
    manifest.record(line.key, status=JobState.SUCCEEDED, outputs=[item.to_dict() for item in outcome.saved or []])
    return outcome
