"""The batch manifest: an append-only JSON Lines record, in the output directory, of what happened
to each line (submitting, submitted with its request id, uncertain, finished with its files), read
back by a rerun, `merge` and the gallery. Records are written without following links and fsynced
where a crash must not lose them; a bad record is reported and skipped, never fatal.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from ..api.models import REQUEST_ID_PATTERN
from ..errors import UsageError
from ..states import JobState
from ..stores import safe_json
from ..stores.safe_files import is_regular_file, open_existing, open_for_append
from .batch_file import LineProblem
from .downloads import SavedFile

MANIFEST_NAME = "nanobanana-batch.jsonl"
# Every manifest a directory may hold: the batch's own, each shard's, a generate run's (the same file).
MANIFEST_GLOB = "nanobanana-batch*.jsonl"


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
    for name in ("status", "error", "model"):
        if record.get(name) is not None and not isinstance(record[name], str):
            return f"\"{name}\" is not a string"
    line = record.get("line")
    if line is not None and (not isinstance(line, int) or isinstance(line, bool) or line < 1):
        return "\"line\" is not a line number"
    if record.get("input") is not None and not isinstance(record["input"], dict):
        return "\"input\" is not an object"
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
        self._lock = threading.Lock()  # guards _state
        self._append_lock = threading.Lock()  # one append to the file at a time
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
        """Append a record; `durable` ones are fsynced before returning (a lost request id means paying twice).

        Every worker of a batch records here: only the append itself is one at a time (so records
        never interleave), and the fsync is not, so no worker waits on another's disk flush.
        """
        record = {"key": key, **fields, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        data = json.dumps(record).encode("utf-8") + b"\n"
        with self._lock:
            self._state.setdefault(key, {}).update(record)
        with open_for_append(self.path) as handle:  # never through a link planted at its name
            with self._append_lock:
                handle.write(data)
                handle.flush()
            if durable:
                os.fsync(handle.fileno())  # the record, and any written before it, are on disk
        if durable and self._created:
            with self._append_lock:
                if self._created:
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


