"""The local job history: every submitted job, recorded before we wait on it.

SQLite in WAL mode with a busy timeout, so parallel `nanobanana` processes can record at once.
History is a convenience, never a reason to fail: a corrupt, locked or unwritable database turns
into one warning and the generation carries on.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from ..api.models import GenerationInput
from ..states import JobState
from ..times import parse_utc, utc_now, utc_text
from . import stats
from .paths import data_dir

DB_NAME = "history.sqlite3"


def _file_keys(row: str) -> tuple[str, str]:
    """The statements that add the hash and path keys of the jobs `row` names (`NEW`, or `jobs`: all).

    The JSON columns may hold anything another program wrote: only a valid array's objects with
    text values count, so a stray value never makes the write that carries it fail.
    """
    def each(column: str) -> str:
        value = f"{row}.{column}"  # json_each(NULL) gives no rows
        array = f"CASE WHEN json_valid({value}) THEN CASE json_type({value}) WHEN 'array' THEN {value} END END"
        return f"FROM {'' if row == 'NEW' else 'jobs, '}json_each({array}) AS item"

    def text_field(name: str) -> str:  # nested: the inner test must not see a value that is no object
        return (f"CASE WHEN item.type = 'object' THEN CASE WHEN json_type(item.value, '$.{name}') = 'text'"
                f" THEN json_extract(item.value, '$.{name}') END END")

    hashes = (
        "INSERT OR IGNORE INTO file_hashes (sha256, request_id) SELECT digest, request_id FROM ("
        f"SELECT {text_field('sha256')} AS digest, {row}.request_id AS request_id {each('files')}"
        f" UNION SELECT {text_field('delivered_sha256')}, {row}.request_id {each('files')}) WHERE digest IS NOT NULL"
    )
    paths = (f"INSERT OR IGNORE INTO file_paths (path, request_id) SELECT item.value, {row}.request_id {each('paths')}"
             " WHERE item.type = 'text'")
    return hashes, paths


_STATS_OF_EVERY_JOB = (f"UPDATE jobs SET stat_images = {stats.IMAGES}, stat_plain = {stats.PLAIN},"
                       f" stat_queue_wait = {stats.QUEUE_WAIT}, stat_run = {stats.RUN}")
_STATS_OF_NEW = _STATS_OF_EVERY_JOB + " WHERE rowid = NEW.rowid"
_INDEX_FILES_OF_NEW = "; ".join(_file_keys("NEW")) + ";"
_INDEX_FILES_OF_EVERY_JOB = _file_keys("jobs")  # the back-fill of migration 6
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
    # a submit in flight is recorded before its POST: which process sends it, and why one ended uncertain
    3: ("ALTER TABLE jobs ADD COLUMN owner_pid INTEGER", "ALTER TABLE jobs ADD COLUMN error TEXT"),
    # provenance and money: what each saved file was, what the job cost, and its timeline
    4: (
        "ALTER TABLE jobs ADD COLUMN cost REAL",
        "ALTER TABLE jobs ADD COLUMN files TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE jobs ADD COLUMN created_at TEXT",
        "ALTER TABLE jobs ADD COLUMN started_at TEXT",
        "ALTER TABLE jobs ADD COLUMN finished_at TEXT",
        "ALTER TABLE jobs ADD COLUMN events TEXT NOT NULL DEFAULT '[]'",
    ),
    # a job's intent, written before its submit: output directory, file names, metadata (engine/intent.py)
    5: ("ALTER TABLE jobs ADD COLUMN intent TEXT",),
    # lookups whose cost does not grow with the history: files by hash and by path (side tables that
    # triggers keep in step with the JSON columns, whoever writes them), and the history's own queries
    6: (
        "CREATE TABLE IF NOT EXISTS file_hashes (sha256 TEXT NOT NULL, request_id TEXT NOT NULL,"
        " PRIMARY KEY (sha256, request_id)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS file_hashes_by_job ON file_hashes (request_id)",
        "CREATE TABLE IF NOT EXISTS file_paths (path TEXT NOT NULL, request_id TEXT NOT NULL,"
        " PRIMARY KEY (path, request_id)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS file_paths_by_job ON file_paths (request_id)",
        f"CREATE TRIGGER IF NOT EXISTS jobs_files_inserted AFTER INSERT ON jobs BEGIN {_INDEX_FILES_OF_NEW} END",
        # a submit settled under its request id replaces any row already there (UPDATE OR REPLACE, whose
        # deletion fires no trigger): the keys of both ids are dropped before the new row's are added
        "CREATE TRIGGER IF NOT EXISTS jobs_files_updated AFTER UPDATE OF request_id, files, paths ON jobs BEGIN"
        " DELETE FROM file_hashes WHERE request_id IN (OLD.request_id, NEW.request_id);"
        f" DELETE FROM file_paths WHERE request_id IN (OLD.request_id, NEW.request_id); {_INDEX_FILES_OF_NEW} END",
        "CREATE TRIGGER IF NOT EXISTS jobs_files_deleted AFTER DELETE ON jobs BEGIN"
        " DELETE FROM file_hashes WHERE request_id = OLD.request_id;"
        " DELETE FROM file_paths WHERE request_id = OLD.request_id; END",
        _INDEX_FILES_OF_EVERY_JOB[0],
        _INDEX_FILES_OF_EVERY_JOB[1],
        # each job's own figures for `history stats` (stores/stats.py), kept by triggers, read from one index
        "ALTER TABLE jobs ADD COLUMN stat_images INTEGER",
        "ALTER TABLE jobs ADD COLUMN stat_plain INTEGER",
        "ALTER TABLE jobs ADD COLUMN stat_queue_wait REAL",
        "ALTER TABLE jobs ADD COLUMN stat_run REAL",
        f"CREATE TRIGGER IF NOT EXISTS jobs_stats_inserted AFTER INSERT ON jobs BEGIN {_STATS_OF_NEW}; END",
        "CREATE TRIGGER IF NOT EXISTS jobs_stats_updated AFTER UPDATE OF status, paths, output_urls, submitted_at,"
        f" started_at, created_at, finished_at, duration_seconds ON jobs BEGIN {_STATS_OF_NEW}; END",
        _STATS_OF_EVERY_JOB,
        f"CREATE INDEX IF NOT EXISTS jobs_stats ON jobs ({stats.INDEXED})",
        "CREATE INDEX IF NOT EXISTS jobs_by_queue_wait ON jobs (stat_plain, stat_queue_wait, submitted_at)",
        "CREATE INDEX IF NOT EXISTS jobs_by_run ON jobs (stat_plain, stat_run, submitted_at)",
        # `last`, `timings` (every generate), `entries --status`, and the orphan check of every listing
        "CREATE INDEX IF NOT EXISTS jobs_by_api_status_time ON jobs (base_url, status, submitted_at)",
        "CREATE INDEX IF NOT EXISTS jobs_by_api_time ON jobs (base_url, submitted_at)",
        "CREATE INDEX IF NOT EXISTS jobs_by_status_time ON jobs (status, submitted_at)",
    ),
    # `history stats` reads every figure from indexes that cover its window (API and time) without a sort:
    # its sums and counts by day in day order, its spans in their order
    7: (
        f"CREATE INDEX IF NOT EXISTS jobs_by_day ON jobs ({stats.BY_DAY})",
        "DROP INDEX IF EXISTS jobs_by_queue_wait",
        "CREATE INDEX jobs_by_queue_wait ON jobs (stat_plain, stat_queue_wait, base_url, submitted_at)",
        "DROP INDEX IF EXISTS jobs_by_run",
        "CREATE INDEX jobs_by_run ON jobs (stat_plain, stat_run, base_url, submitted_at)",
        "DROP INDEX IF EXISTS jobs_stats",  # what it served, jobs_by_day serves with the window covered
    ),
    # `history --model`: a model's jobs, newest first, from an index rather than a walk of every job
    8: ("CREATE INDEX IF NOT EXISTS jobs_by_model_time ON jobs (model, submitted_at)",),
    # `history stats` in a time that does not grow with the history: totals by day and spans by bucket,
    # kept by the triggers that keep each job's own figures (stores/stats.py), and counted in for every job
    9: (
        *stats.DAY_TABLES,
        "DROP TRIGGER IF EXISTS jobs_stats_inserted",
        "DROP TRIGGER IF EXISTS jobs_stats_updated",
        f"CREATE TRIGGER jobs_stats_inserted AFTER INSERT ON jobs BEGIN {_STATS_OF_NEW}; {stats.COUNT_IN} END",
        "CREATE TRIGGER jobs_stats_updated AFTER UPDATE OF status, paths, output_urls, submitted_at, started_at,"
        f" created_at, finished_at, duration_seconds, cost, base_url ON jobs BEGIN {stats.COUNT_OUT} {_STATS_OF_NEW};"
        f" {stats.COUNT_IN} END",
        # (a row that UPDATE OR REPLACE deletes is counted out too: the connection enables recursive triggers)
        f"CREATE TRIGGER jobs_stats_deleted AFTER DELETE ON jobs BEGIN {stats.COUNT_OUT} END",
        *stats.COUNT_EVERY_JOB,
    ),
    # the same figures from triggers of 40% the SQL: every process parses the schema, and compiles the
    # triggers into each distinct write it prepares (stores/stats.py); the rows' figures stand as they are
    10: (
        "DROP TRIGGER IF EXISTS jobs_stats_inserted",
        "DROP TRIGGER IF EXISTS jobs_stats_updated",
        "DROP TRIGGER IF EXISTS jobs_stats_deleted",
        f"CREATE TRIGGER jobs_stats_inserted AFTER INSERT ON jobs BEGIN {stats.STATS_OF_NEW}; {stats.COUNT_IN} END",
        "CREATE TRIGGER jobs_stats_updated AFTER UPDATE OF status, paths, output_urls, submitted_at, started_at,"
        f" created_at, finished_at, duration_seconds, cost, base_url ON jobs BEGIN {stats.COUNT_OUT} {stats.STATS_OF_NEW};"
        f" {stats.COUNT_IN} END",
        f"CREATE TRIGGER jobs_stats_deleted AFTER DELETE ON jobs BEGIN {stats.COUNT_OUT} END",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)
WAL_SWITCH_SECONDS = 5.0

# Rows of a submit in flight are named by a key no request id can match (ids never hold ':').
LOCAL_KEY_PREFIX = "local:"
ORPHAN_REASON = "the process submitting it ended before the answer arrived"
_warned_about: set[Path] = set()  # one warning per broken database per process, however many History objects


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    return True


# Appends the JSON object bound to it to the job's `events` array.
APPEND_EVENT = "events = json_insert(events, '$[#]', json_extract(?, '$[0]'))"


def _prefix_range(prefix: str) -> tuple[str, str]:
    """The keys that start with `prefix`, as a range an index can walk: [prefix, prefix + the highest character)."""
    return prefix, prefix + "\U0010ffff"


def _json_or_none(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)


def _json_object(text: Any) -> dict[str, Any] | None:
    """A JSON object column, or None when it is empty or not one (a row written by another program)."""
    if not isinstance(text, str) or len(text) > 64 * 1024:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _event_json(kind: str, details: dict[str, Any]) -> str:
    return json.dumps([{"at": utc_now(), "event": kind, **details}])


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class HistoryEntry(NamedTuple):
    """One recorded job, as read back (every field is given: `History._entry` builds them all)."""

    request_id: str
    submitted_at: str
    status: str
    model: str
    base_url: str
    input: dict[str, Any]
    output_urls: list[str]
    paths: list[str]
    updated_at: str
    duration_seconds: float | None
    error: str | None
    cost: float | None
    files: list[dict[str, Any]]
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    events: list[dict[str, Any]]
    intent: dict[str, Any] | None  # as recorded; engine.intent.JobIntent.from_record checks it

    @property
    def generation(self) -> GenerationInput | None:
        try:
            return GenerationInput.from_record(self.input, self.model)
        except Exception:  # an entry written by another version; its files just get default names
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id, "submitted_at": self.submitted_at, "updated_at": self.updated_at,
            "status": self.status, "model": self.model, "base_url": self.base_url, "input": self.input,
            "output_urls": self.output_urls, "paths": self.paths, "duration_seconds": self.duration_seconds,
            "error": self.error, "cost": self.cost, "files": self.files, "created_at": self.created_at,
            "started_at": self.started_at, "finished_at": self.finished_at, "events": self.events,
            "intent": self.intent,
        }


class History:
    def __init__(self, path: Path | None = None, *, warn: Callable[[str], None] | None = None) -> None:
        self.path = path or data_dir() / DB_NAME
        self._warn = warn
        self._lock = threading.Lock()
        self._connection: Any = None
        # The submit journal's own connection, for when the shared one is busy: a batch's next submit
        # must not queue behind the other workers' bookkeeping (each holds the lock across its
        # statement and its wait for the GIL after it).
        self._journal_lock = threading.Lock()
        self._journal_connection: Any = None
        self._broken = False
        self.failure: Exception | None = None  # why the database failed, for commands about the history itself

    def close(self) -> None:
        for connection in (self._connection, self._journal_connection):
            if connection is not None:
                connection.close()
        self._connection = self._journal_connection = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _db(self, journal: bool = False) -> Iterator[Any]:
        """A connection, or None once the database has failed (after a single warning). The submit
        `journal` takes the shared connection if it is free and else its own (opened only then: a
        lone `generate` opens one).

        A statement that fails marks the history broken too and is swallowed here, so every
        method returns from inside its `with` block and gives its empty answer after it.
        """
        import sqlite3

        own = journal and not self._lock.acquire(blocking=False)
        if own:
            self._journal_lock.acquire()
        elif not journal:
            self._lock.acquire()
        try:
            connection = self._open(own)
            try:
                yield connection
            except sqlite3.Error as exc:
                self._fail(exc)
        finally:
            (self._journal_lock if own else self._lock).release()

    def _open(self, journal: bool = False) -> Any:
        import sqlite3

        if self._broken:
            return None
        opened = self._journal_connection if journal else self._connection
        if opened is not None:
            return opened
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = 5000")
            # a row that UPDATE OR REPLACE (`submitted`) deletes fires the delete triggers, which count it
            # out of `history stats`' totals
            connection.execute("PRAGMA recursive_triggers = ON")
            self._enable_wal(connection)
            # WAL stays consistent without a sync per commit; a crash may lose the last
            # status update, which the next `status`/`watch` rewrites. Request ids that
            # must survive a crash are fsynced by the batch manifest.
            connection.execute("PRAGMA synchronous = NORMAL")
            if connection.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                self._migrate(connection)
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc)
            return None
        if journal:
            self._journal_connection = connection
        else:
            self._connection = connection
        return connection

    def _fail(self, exc: Exception) -> None:
        self._broken = True
        self.failure = exc
        if self._warn and self.path not in _warned_about:
            _warned_about.add(self.path)
            self._warn(f"job history unavailable ({exc}); carrying on without it ({self.path})")

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

    def record_submission(
        self, request_id: str, generation: GenerationInput, base_url: str, intent: dict[str, Any] | None = None
    ) -> None:
        """The job exists; its row may already be there, written by the submit journal below (with
        the same intent, unless that journal was another program's)."""
        with self._db() as db:
            if db is not None:
                now = utc_now()
                db.execute(
                    "INSERT INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status, intent)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'in_queue', ?)"
                    " ON CONFLICT (request_id) DO UPDATE SET updated_at = excluded.updated_at,"
                    " intent = COALESCE(jobs.intent, excluded.intent)",
                    (request_id, now, now, generation.model, base_url, generation.prompt, json.dumps(generation.to_payload()),
                     _json_or_none(intent)),
                )

    # -- the submit journal (api.client.SubmitJournal): a row before the POST, settled after ------

    def submitting(self, generation: GenerationInput, base_url: str, intent: dict[str, Any] | None = None) -> str:
        """A `submitting` row under a local key, committed before the POST leaves this machine.

        Committed in WAL, it survives the process being killed. (Power loss may take it: the batch
        manifest, which is what prevents a resubmit, is fsynced.)
        """
        ticket = LOCAL_KEY_PREFIX + secrets.token_hex(6)
        with self._db(journal=True) as db:
            if db is not None:
                now = utc_now()
                db.execute(
                    "INSERT INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status,"
                    " owner_pid, intent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (ticket, now, now, generation.model, base_url, generation.prompt, json.dumps(generation.to_payload()),
                     JobState.SUBMITTING, os.getpid(), _json_or_none(intent)),
                )
        return ticket

    def submitted(self, ticket: str, request_id: str) -> None:
        self._execute("UPDATE OR REPLACE jobs SET request_id = ?, status = 'in_queue', owner_pid = NULL,"
                      " updated_at = ? WHERE request_id = ?", (request_id, utc_now(), ticket), journal=True)

    def uncertain(self, ticket: str, reason: str) -> None:
        self._execute("UPDATE jobs SET status = ?, error = ?, owner_pid = NULL, updated_at = ? WHERE request_id = ?",
                      (JobState.UNCERTAIN, reason, utc_now(), ticket), journal=True)

    def not_sent(self, ticket: str) -> None:
        self._execute("DELETE FROM jobs WHERE request_id = ?", (ticket,), journal=True)

    def _execute(self, statement: str, params: tuple[Any, ...], journal: bool = False) -> None:
        with self._db(journal) as db:
            if db is not None:
                db.execute(statement, params)

    def _settle_orphans(self, db: Any) -> None:
        """`submitting` rows whose process is gone will never hear their answer: they are uncertain."""
        rows = db.execute("SELECT request_id, owner_pid FROM jobs WHERE status = ?", (JobState.SUBMITTING,)).fetchall()
        for key, pid in rows:
            if pid is None or not _process_alive(int(pid)):
                db.execute(
                    "UPDATE jobs SET status = ?, error = ?, owner_pid = NULL WHERE request_id = ? AND status = ?",
                    (JobState.UNCERTAIN, ORPHAN_REASON, key, JobState.SUBMITTING),
                )

    def update(
        self,
        request_id: str,
        *,
        status: str | None = None,
        output_urls: list[str] | None = None,
        paths: list[str] | None = None,
        duration_seconds: float | None = None,
        cost: float | None = None,
        files: list[dict[str, Any]] | None = None,
        created_at: str | None = None,
        started_at: str | None = None,
        finished_at: str | None = None,
        event: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Set what is given (`None` leaves a column as it is), and append `event` (kind, details) to
        the job's timeline, in one statement: a batch of 500 jobs writes each job a few times only."""
        assignments = {
            "status": status, "output_urls": output_urls, "paths": paths, "duration_seconds": duration_seconds,
            "cost": cost, "files": files, "created_at": created_at, "started_at": started_at, "finished_at": finished_at,
        }
        changes = {f"{k} = ?": (json.dumps(v) if isinstance(v, list) else v) for k, v in assignments.items() if v is not None}
        if started_at is not None:  # the first sighting of the job running is its start; a later one is not
            changes["started_at = COALESCE(started_at, ?)"] = changes.pop("started_at = ?")
        if event is not None:
            changes[APPEND_EVENT] = _event_json(*event)
        if not changes:
            return
        with self._db() as db:
            if db is not None:
                db.execute(
                    f"UPDATE jobs SET {', '.join(changes)}, updated_at = ? WHERE request_id = ?",  # ours, not input
                    (*changes.values(), utc_now(), request_id),
                )

    def entries(
        self,
        *,
        limit: int | None = 20,
        status: str | tuple[str, ...] | None = None,  # a tuple: any of these
        search: str | None = None,
        base_url: str | None = None,
        since: datetime | None = None,
        models: Sequence[str] = (),
    ) -> list[HistoryEntry]:
        """The jobs that match every filter given, newest first."""
        clauses: list[str] = []
        params: list[Any] = []
        statuses = (status,) if isinstance(status, str) else status or ()
        if models:
            clauses.append(f"model IN ({', '.join('?' * len(models))})")
            params.extend(models)
        if since is not None:
            clauses.append("submitted_at >= ?")
            params.append(utc_text(since))
        if any(statuses):
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
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
            if db is not None:
                self._settle_orphans(db)
                return self._fetch(db, query, params)
        return []

    @classmethod
    def _fetch(cls, db: Any, query: str, params: Any) -> list[HistoryEntry]:
        """The jobs a `SELECT * FROM jobs …` finds, in its order."""
        cursor = db.execute(query, params)
        names = [column[0] for column in cursor.description]
        return [cls._entry(dict(zip(names, row))) for row in cursor.fetchall()]

    @staticmethod
    def _entry(row: dict[str, Any]) -> HistoryEntry:
        return HistoryEntry(
            request_id=row["request_id"], submitted_at=row["submitted_at"], updated_at=row["updated_at"],
            status=row["status"], model=row["model"], base_url=row["base_url"], input=json.loads(row["input"]),
            output_urls=json.loads(row["output_urls"]), paths=json.loads(row["paths"]),
            duration_seconds=row.get("duration_seconds"), error=row.get("error"), cost=row.get("cost"),
            files=json.loads(row.get("files") or "[]"), created_at=row.get("created_at"),
            started_at=row.get("started_at"), finished_at=row.get("finished_at"),
            events=json.loads(row.get("events") or "[]"), intent=_json_object(row.get("intent")),
        )

    def stats(self, since: datetime | None = None, base_urls: list[str] | None = None) -> dict[str, Any]:
        """`history stats` over the jobs submitted since then (all when None) to these APIs (any when
        None): see stores/stats.py."""
        with self._db() as db:
            if db is not None:
                self._settle_orphans(db)
                db.execute("BEGIN")  # one snapshot: the counts and the ranks walked to are of the same jobs
                try:
                    return stats.summarise(db, utc_text(since) if since is not None else None, base_urls)
                finally:
                    if db.in_transaction:
                        db.execute("COMMIT")
        return stats.summarise(None, None)

    def base_urls(self) -> list[str]:
        """Every API a recorded job went to (a handful, however many jobs; read from an index)."""
        with self._db() as db:
            if db is not None:
                # a jump along the index from each API to the next, not a walk over every job
                skip = ("WITH RECURSIVE api(url) AS (SELECT MIN(base_url) FROM jobs UNION ALL SELECT"
                        " (SELECT MIN(base_url) FROM jobs WHERE base_url > url) FROM api WHERE url IS NOT NULL)"
                        " SELECT url FROM api WHERE url IS NOT NULL")
                return [row[0] for row in db.execute(skip).fetchall()]
        return []

    def count(self, *, since: datetime | None = None, base_urls: list[str] | None = None) -> int:
        """How many jobs were submitted since then to these APIs."""
        window, params = stats.window(utc_text(since) if since is not None else None, base_urls)
        with self._db() as db:
            if db is not None:
                return int(db.execute(f"SELECT COUNT(*) FROM jobs WHERE {window}", params).fetchone()[0])
        return 0

    def find_file(self, sha256: str) -> tuple[HistoryEntry, dict[str, Any]] | None:
        """The job that delivered or saved a file with this hash, and that file's record."""
        if not sha256.isalnum():
            return None
        with self._db() as db:
            if db is not None:
                query = ("SELECT jobs.* FROM file_hashes JOIN jobs USING (request_id) WHERE file_hashes.sha256 = ?"
                         " ORDER BY jobs.submitted_at DESC")
                for entry in self._fetch(db, query, (sha256,)):
                    for record in entry.files:
                        if isinstance(record, dict) and sha256 in (record.get("sha256"), record.get("delivered_sha256")):
                            return entry, record
        return None

    def get(self, request_id: str) -> HistoryEntry | None:
        return self._one("SELECT * FROM jobs WHERE request_id = ?", (request_id,))

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """The recorded ids (or local keys) that begin with `prefix`, newest first, at most `limit`."""
        with self._db() as db:
            if db is not None:
                rows = db.execute(
                    "SELECT request_id FROM jobs WHERE request_id >= ? AND request_id < ? ORDER BY submitted_at DESC LIMIT ?",
                    (*_prefix_range(prefix), limit),
                ).fetchall()
                return [row[0] for row in rows]
        return []

    def _one(self, query: str, params: tuple[Any, ...]) -> HistoryEntry | None:
        with self._db() as db:
            if db is not None:
                found = self._fetch(db, query, params)
                return found[0] if found else None
        return None

    def last(self, base_url: str) -> HistoryEntry | None:
        """The newest job sent to this API: a job from another base URL (or a past sandbox) is not it,
        nor a submit whose id we never learned."""
        return self._one(
            "SELECT * FROM jobs WHERE base_url = ? AND status NOT IN (?, ?) ORDER BY submitted_at DESC, rowid DESC LIMIT 1",
            (base_url, JobState.SUBMITTING, JobState.UNCERTAIN),
        )

    def remove(self, request_ids: list[str]) -> list[str]:
        """Forget these jobs (here only: the server keeps them); returns the ids that were recorded."""
        removed: list[str] = []
        with self._db() as db:
            if db is not None:
                for request_id in dict.fromkeys(request_ids):
                    if db.execute("DELETE FROM jobs WHERE request_id = ?", (request_id,)).rowcount:
                        removed.append(request_id)
        return removed

    def remove_before(self, moment: datetime) -> int:
        """Forget every job submitted before `moment`; returns how many."""
        cutoff = utc_text(moment)
        with self._db() as db:
            if db is not None:
                return int(db.execute("DELETE FROM jobs WHERE submitted_at < ?", (cutoff,)).rowcount)
        return 0

    def timings(self, base_url: str, limit: int = 20) -> list[dict[str, Any]]:
        """How the latest succeeded jobs on this API went, newest first, in seconds from each submit.

        For each: `total` (the server's duration), `num_images`, and, when the job was seen running,
        `running_by` (the first answer that said so: `started_at`) and `queued_after` (the last that
        said in_queue: the `running` event's `queued_until`; 0.0 when it is not recorded). The poller
        plans the next wait from these (engine/polling.py, `Expectation.from_history`).
        """
        rows: list[Any] = []
        with self._db() as db:
            if db is not None:
                rows = db.execute(
                    "SELECT submitted_at, started_at, duration_seconds, json_extract(input, '$.num_images'), events"
                    " FROM jobs WHERE base_url = ? AND status = 'succeeded' AND duration_seconds IS NOT NULL"
                    " ORDER BY submitted_at DESC LIMIT ?",
                    (base_url, limit),
                ).fetchall()
        return [self._timing(*row) for row in rows]

    @staticmethod
    def _timing(submitted_at: str, started_at: str | None, total: float, num_images: Any, events: str | None) -> dict[str, Any]:
        """One row of `timings`; start bounds that contradict the duration (clock trouble) are left out."""

        def since_submit(moment: str | None) -> float | None:
            begun, then = parse_utc(submitted_at), parse_utc(moment)
            return (then - begun).total_seconds() if begun is not None and then is not None else None

        timing: dict[str, Any] = {"total": float(total), "num_images": num_images, "running_by": None, "queued_after": None}
        try:
            running = [event for event in json.loads(events or "[]") if event.get("event") == "running"]
        except (ValueError, AttributeError, RecursionError):
            running = []
        # out of the queue by: when it was seen running, else the first answer that said it had left the queue
        left_queue = started_at or (running[-1].get("at") if running else None)
        running_by = since_submit(left_queue) if left_queue else None
        if running_by is None or not 0 <= running_by <= total:
            return timing
        queued_until = running[-1].get("queued_until") if running else None
        queued_after = since_submit(queued_until) if queued_until else None
        timing.update(running_by=running_by, queued_after=queued_after if queued_after and 0 <= queued_after <= running_by else 0.0)
        return timing

    def jobs_with_ids(
        self, request_ids: set[str] | list[str] | tuple[str, ...] = (), prefixes: set[str] | list[str] | tuple[str, ...] = ()
    ) -> list[HistoryEntry]:
        """The jobs with these request ids, and those whose id starts with one of `prefixes` (the 8
        characters our file names carry), newest first.

        Each is found through the primary key, so the cost grows with what is asked for, not with the
        history: a gallery of 1,000 images reads its 250 jobs, not all 100,000 (`entries(limit=None)`).
        """
        found: dict[str, HistoryEntry] = {}
        with self._db() as db:
            if db is not None:
                lookups: list[tuple[str, tuple[str, ...]]] = [("request_id = ?", (request_id,)) for request_id in set(request_ids)]
                # a prefix is a key range: [prefix, prefix + the highest character)
                lookups += [("request_id >= ? AND request_id < ?", _prefix_range(prefix)) for prefix in set(prefixes)]
                for where, params in lookups:
                    for entry in self._fetch(db, f"SELECT * FROM jobs WHERE {where}", params):
                        found[entry.request_id] = entry
        return sorted(found.values(), key=lambda entry: entry.submitted_at, reverse=True)

    def jobs_with_paths_in(self, directories: Iterable[str]) -> list[HistoryEntry]:
        """The jobs that saved a file into one of these directories (as their recorded paths spell
        them), newest first.

        Each directory is a key range of the recorded paths (`file_paths`), so the cost grows with the
        files found there, not with the history; it is for the few files that neither their names nor
        their metadata tie to a job (`jobs_with_ids` finds the others by key).
        """
        ranges = [_prefix_range(prefix) for prefix in {os.path.join(directory, "") for directory in directories}]
        if not ranges:
            return []
        with self._db() as db:
            if db is not None:
                where = " OR ".join("file_paths.path >= ? AND file_paths.path < ?" for _ in ranges)
                query = (f"SELECT * FROM jobs WHERE request_id IN (SELECT request_id FROM file_paths WHERE {where})"
                         " ORDER BY submitted_at DESC, rowid DESC")
                return self._fetch(db, query, [bound for pair in ranges for bound in pair])
        return []
