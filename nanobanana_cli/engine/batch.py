"""Batch generation: many prompts, a bounded number in flight, resumable without double billing.

A manifest in the output directory (JSON Lines, appended and fsynced) records each line's
request id the moment it is submitted. A later run with the same input and directory skips
lines whose images are on disk, re-attaches to jobs that were submitted but not finished, and
submits only the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from .downloads import SavedFile
from ..errors import InterruptedWaitError, JobFailedError, NanobananaError
from .lifecycle import JobOutcome, Jobs, Reporter
from .workers import run_concurrently
from ..api.models import CANCELLED, FAILED, SUCCEEDED, GenerationInput

MANIFEST_NAME = "nanobanana-batch.jsonl"
JSON_FIELDS = ("prompt", "aspect_ratio", "output_format", "num_images", "name")


@dataclass(frozen=True)
class BatchLine:
    number: int
    generation: GenerationInput
    name: str | None
    key: str

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
                data = json.loads(stripped)
            except ValueError as exc:
                problems.append(LineProblem(number, f"invalid JSON ({exc.msg} at column {exc.colno})"))
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
        identity = json.dumps({**generation.to_payload(), "name": name}, sort_keys=True)
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
        seen[digest] = seen.get(digest, 0) + 1
        lines.append(BatchLine(number, generation, name, f"{digest}-{seen[digest]}"))
    return lines, problems


class Manifest:
    """Append-only record of what happened to each line; the last record for a key wins."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / MANIFEST_NAME
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for raw in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # a line cut short by a crash; the records before it still stand
                if isinstance(record, dict) and isinstance(record.get("key"), str):
                    self._state.setdefault(record["key"], {}).update(record)

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
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())


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


def _saved_files_present(state: dict[str, Any]) -> list[SavedFile] | None:
    files = state.get("outputs")
    if state.get("status") != SUCCEEDED or not files:
        return None
    saved = [SavedFile(**item) for item in files]
    return saved if all(Path(item.path).is_file() and Path(item.path).stat().st_size == item.bytes for item in saved) else None


def run_batch(
    jobs: Jobs,
    lines: list[BatchLine],
    *,
    concurrency: int,
    reporter: BatchReporter,
) -> Iterator[LineOutcome]:
    """Yield each line's outcome as it finishes, with at most `concurrency` jobs in flight."""
    if jobs.downloads is None:
        raise ValueError("a batch always downloads: give Jobs a DownloadPlan")
    manifest = Manifest(jobs.downloads.directory)
    expected = jobs.expected_seconds()

    def process(line: BatchLine) -> LineOutcome:
        state = manifest.get(line.key)
        saved = _saved_files_present(state)
        if saved is not None:
            outcome = JobOutcome(state["request_id"], SUCCEEDED, line.generation, [s.url for s in saved], saved)
            reporter.line_finished(line, outcome, True)
            return LineOutcome(line, outcome, skipped=True)
        request_id = state.get("request_id")
        if request_id and state.get("status") not in (FAILED, CANCELLED):
            reporter.line_started(line, "re-attached", request_id)
        else:
            if jobs.stop.is_set():
                raise InterruptedWaitError("interrupted before this line was submitted")
            request_id = jobs.submit(line.generation).request_id
            manifest.record(line.key, durable=True, line=line.number, request_id=request_id, status="submitted")
            reporter.line_started(line, "submitted", request_id)
        outcome = _finish_line(jobs, manifest, line, request_id, None if state.get("request_id") else expected)
        reporter.line_finished(line, outcome, False)
        return LineOutcome(line, outcome)

    def guarded(line: BatchLine) -> LineOutcome:
        try:
            return process(line)
        except InterruptedWaitError:
            raise
        except NanobananaError as exc:  # a submit that failed: nothing to wait for
            outcome = JobOutcome("", "error", line.generation, error=exc)
            reporter.line_finished(line, outcome, False)
            return LineOutcome(line, outcome)

    try:
        yield from run_concurrently(lines, guarded, max_workers=concurrency, stop=jobs.stop)
    except KeyboardInterrupt:
        raise InterruptedWaitError(
            "interrupted; every submitted job is in the manifest and keeps running",
            hint="run the same batch command again to resume without paying twice",
        ) from None


def _finish_line(jobs: Jobs, manifest: Manifest, line: BatchLine, request_id: str, expected: float | None) -> JobOutcome:
    started = time.monotonic()
    try:
        outcome = jobs.finish(request_id, line.generation, file_stem=line.name, expected_seconds=expected)
    except InterruptedWaitError:
        raise  # the manifest already holds the request id; the next run re-attaches
    except NanobananaError as exc:
        status = exc.status if isinstance(exc, JobFailedError) else "error"
        manifest.record(line.key, status=status, error=str(exc))
        return JobOutcome(request_id, status, line.generation, elapsed_seconds=time.monotonic() - started, error=exc)
    manifest.record(line.key, status=SUCCEEDED, outputs=[item.to_dict() for item in outcome.saved or []])
    return outcome
