"""The local job history: every submitted job, recorded before we wait on it.

SQLite in WAL mode with a busy timeout, so parallel `nanobanana` processes can record at once.
History is a convenience, never a reason to fail: a corrupt, locked or unwritable database turns
into one warning and the generation carries on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .paths import data_dir
from ..api.models import MODEL_ID, GenerationInput

DB_NAME = "history.sqlite3"
# Each version's statements, applied in order under a write lock (several processes may open at once).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS jobs (
            request_id   TEXT PRIMARY KEY,
            submitted_at TEXT NOT NULL,
            updated_at   TEXT NOT NULL,
            model        TEXT NOT NULL,
            base_url     TEXT NOT NULL,
            prompt       TEXT NOT NULL,
            input        TEXT NOT NULL,
            status       TEXT NOT NULL,
            output_urls  TEXT NOT NULL DEFAULT '[]',
            paths        TEXT NOT NULL DEFAULT '[]'
        )""",
        "CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (submitted_at)",
    ),
    # how long each job took, so the next wait can expect it
    2: ("ALTER TABLE jobs ADD COLUMN duration_seconds REAL",),
}
SCHEMA_VERSION = max(MIGRATIONS)
TYPICAL_OF_LAST = 10
WAL_SWITCH_SECONDS = 5.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class HistoryEntry:
    request_id: str
    submitted_at: str
    status: str
    model: str
    base_url: str
    input: dict[str, Any]
    output_urls: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    updated_at: str = ""
    duration_seconds: float | None = None

    @property
    def generation(self) -> GenerationInput | None:
        try:
            return GenerationInput(**self.input)
        except Exception:  # an entry written by another version; its files just get default names
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id, "submitted_at": self.submitted_at, "updated_at": self.updated_at,
            "status": self.status, "model": self.model, "base_url": self.base_url, "input": self.input,
            "output_urls": self.output_urls, "paths": self.paths, "duration_seconds": self.duration_seconds,
        }


class History:
    def __init__(self, path: Path | None = None, *, warn: Callable[[str], None] | None = None) -> None:
        self.path = path or data_dir() / DB_NAME
        self._warn = warn
        self._lock = threading.Lock()
        self._connection: Any = None
        self._broken = False

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _db(self) -> Iterator[Any]:
        """A connection, or nothing once the database has failed (after a single warning)."""
        import sqlite3

        with self._lock:
            if self._broken:
                yield None
                return
            try:
                if self._connection is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    connection = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
                    connection.execute("PRAGMA busy_timeout = 5000")
                    self._enable_wal(connection)
                    # WAL stays consistent without a sync per commit; a crash may lose the last
                    # status update, which the next `status`/`watch` rewrites. Request ids that
                    # must survive a crash are fsynced by the batch manifest.
                    connection.execute("PRAGMA synchronous = NORMAL")
                    if connection.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                        self._migrate(connection)
                    self._connection = connection
                yield self._connection
            except (sqlite3.Error, OSError) as exc:
                self._broken = True
                if self._warn:
                    self._warn(f"job history unavailable ({exc}); carrying on without it ({self.path})")
                yield None

    @staticmethod
    def _enable_wal(connection: Any) -> None:
        """Switch to WAL, waiting for other processes that are doing the same.

        The switch needs the database to itself for a moment, and SQLite reports "locked" at once
        instead of waiting (seen with several processes creating the history together).
        """
        import sqlite3
        import time

        deadline = time.monotonic() + WAL_SWITCH_SECONDS
        while True:
            try:
                if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    @staticmethod
    def _migrate(connection: Any) -> None:
        connection.execute("BEGIN IMMEDIATE")  # another process may be migrating right now
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {target}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    def record_submission(self, request_id: str, generation: GenerationInput, base_url: str) -> None:
        with self._db() as db:
            if db is not None:
                now = _now()
                db.execute(
                    "INSERT OR REPLACE INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'in_queue')",
                    (request_id, now, now, MODEL_ID, base_url, generation.prompt, json.dumps(generation.to_payload())),
                )

    def update(
        self,
        request_id: str,
        *,
        status: str | None = None,
        output_urls: list[str] | None = None,
        paths: list[str] | None = None,
        duration_seconds: float | None = None,
    ) -> None:
        assignments = {"status": status, "output_urls": output_urls, "paths": paths, "duration_seconds": duration_seconds}
        changes = {k: (json.dumps(v) if isinstance(v, list) else v) for k, v in assignments.items() if v is not None}
        if not changes:
            return
        with self._db() as db:
            if db is not None:
                columns = ", ".join(f"{name} = ?" for name in changes)
                db.execute(
                    f"UPDATE jobs SET {columns}, updated_at = ? WHERE request_id = ?",  # column names are ours, not input
                    (*changes.values(), _now(), request_id),
                )

    def entries(
        self, *, limit: int | None = 20, status: str | None = None, search: str | None = None, base_url: str | None = None
    ) -> list[HistoryEntry]:
        clauses, params = [], []
        if status:
            clauses.append("status = ?")
            params.append(status)
        if search:
            clauses.append("prompt LIKE ? ESCAPE '\\'")
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        if base_url:
            clauses.append("base_url = ?")
            params.append(base_url)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT * FROM jobs {where} ORDER BY submitted_at DESC, rowid DESC"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        with self._db() as db:
            if db is None:
                return []
            cursor = db.execute(query, params)
            names = [column[0] for column in cursor.description]
            return [self._entry(dict(zip(names, row))) for row in cursor.fetchall()]

    @staticmethod
    def _entry(row: dict[str, Any]) -> HistoryEntry:
        return HistoryEntry(
            request_id=row["request_id"], submitted_at=row["submitted_at"], updated_at=row["updated_at"],
            status=row["status"], model=row["model"], base_url=row["base_url"], input=json.loads(row["input"]),
            output_urls=json.loads(row["output_urls"]), paths=json.loads(row["paths"]),
            duration_seconds=row.get("duration_seconds"),
        )

    def get(self, request_id: str) -> HistoryEntry | None:
        with self._db() as db:
            if db is None:
                return None
            cursor = db.execute("SELECT * FROM jobs WHERE request_id = ?", (request_id,))
            row = cursor.fetchone()
            if row is None:
                return None
            return self._entry(dict(zip([c[0] for c in cursor.description], row)))

    def typical_duration(self, base_url: str) -> float | None:
        """The median duration of the latest succeeded jobs on this API, if there are any."""
        with self._db() as db:
            if db is None:
                return None
            rows = db.execute(
                "SELECT duration_seconds FROM jobs WHERE base_url = ? AND status = 'succeeded'"
                " AND duration_seconds IS NOT NULL ORDER BY submitted_at DESC LIMIT ?",
                (base_url, TYPICAL_OF_LAST),
            ).fetchall()
        if not rows:
            return None
        import statistics

        return statistics.median(row[0] for row in rows)

    def last(self, base_url: str) -> HistoryEntry | None:
        """The newest job sent to this API: a job from another base URL (or a past sandbox) is not it."""
        found = self.entries(limit=1, base_url=base_url)
        return found[0] if found else None
