"""Schema 10's stats triggers (far less SQL than schema 9's) keep exactly what schema 9's kept: each job's
own figures and the totals, for any row any writer makes, odd timestamps included; a history of schema 9
(today's before them) is migrated with its figures unchanged."""

from __future__ import annotations

import random
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.stores import stats
from nanobanana_cli.stores.history import MIGRATIONS, History

from .test_history_scale import APIS, _database
from .test_history_stats_totals import MORE_WINDOWS, _recount, _same_as_reference

_FIGURES = "SELECT request_id, stat_images, stat_plain IS 1, stat_queue_wait, stat_run FROM jobs ORDER BY request_id"


def _schema(version: int) -> sqlite3.Connection:
    """An empty history of `version`, in memory, as the migrations up to it make it."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("PRAGMA recursive_triggers = ON")  # as History's connection
    for step in range(1, version + 1):
        for statement in MIGRATIONS[step]:
            db.execute(statement)
    return db


def _kept(db: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
    """Each job's figures (a plain row or not: schema 9 may say NULL where 10 says 0) and the totals."""
    return (db.execute(_FIGURES).fetchall(), db.execute("SELECT * FROM stats_days ORDER BY 1, 2, 3").fetchall(),
            db.execute("SELECT * FROM stats_buckets ORDER BY 1, 2, 3").fetchall())


def test_schema_10s_stats_triggers_are_far_smaller_than_schema_9s():
    sizes = {version: dict(_schema(version).execute(
        "SELECT name, length(sql) FROM sqlite_master WHERE name LIKE 'jobs_stats_%'")) for version in (9, 10)}
    assert sizes[10].keys() == sizes[9].keys() == {"jobs_stats_inserted", "jobs_stats_updated", "jobs_stats_deleted"}
    assert sum(sizes[10].values()) * 2 < sum(sizes[9].values())


# every spelling a time may have: this program's and the API's, and what any other program may write
_ODD_TIMES = [
    None, "2026-01-01T10:00:00Z", "2026-01-01T10:00:00.000Z", "2026-01-01T10:00:00.999Z", "2026-01-01T10:00:00.5Z",
    "2026-01-01T10:00:00.1234Z", "2026-01-01T10:00:00.123456Z", "2026-01-01T10:00:00", "2026-01-01 10:00:00Z",
    "2026-01-01t10:00:00Z", "2026-01-01T10:00:00z", " 2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z ",
    "2026-01-01T10:00:00+00:00", "2026-01-01T12:00:00.000+02:00", "2026-02-30T10:00:00.000Z", "2026-13-45T99:99:99Z",
    "2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z", "2026-01-01T10:00:00.12aZ", "2026-01-01T10:00:00.1٢3Z",
    "２０２６-01-01T10:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "-001-01-01T00:00:00Z",
    "2026-01-01", "yesterday", "", "2026-01-01T10:00:00.000ZZ", "2026-01-01T10:00:00.\x00\x00\x00Z", 1767261600, 2.5,
    b"2026-01-01T10:00:00Z", "2025-12-31T23:59:59.999Z", "2026-01-01T10:00:01.001Z", "2026-01-01T10:00:00.001Z",
]


def _time(rng: random.Random, moment: datetime) -> Any:
    if rng.random() < 0.2:
        return rng.choice(_ODD_TIMES)
    return moment.isoformat(timespec=rng.choice(["milliseconds", "milliseconds", "seconds"])).replace("+00:00", "Z")


def _row(rng: random.Random) -> dict[str, Any]:
    """A job whose times mostly follow each other (so most have spans), spelled in any way."""
    submitted = datetime(2026, 1, 1, 10, tzinfo=timezone.utc) + timedelta(milliseconds=rng.randrange(-5_000, 90_000))
    started = submitted + timedelta(milliseconds=rng.randrange(-1_000, 20_000))
    created = submitted + timedelta(milliseconds=rng.randrange(-500, 800))
    finished = started + timedelta(milliseconds=rng.randrange(-1_000, 60_000))
    return {
        "submitted_at": _time(rng, submitted) or "2026-01-01", "started_at": _time(rng, started),
        "created_at": _time(rng, created),
        "finished_at": _time(rng, finished), "duration_seconds": rng.choice([None, 0, 7, 12.5, -1.0, "9", b"1", 1e300]),
        "status": rng.choice(["succeeded", "failed", "cancelled", "in_queue", "uncertain"]),
        "paths": rng.choice(["[]", '["/a.png"]', '["/a.png", "/b.png"]', "not json", '{"a": 1}']),
        "output_urls": rng.choice(["[]", '["https://x/1.png"]', "[1, 2, 3]", "nope"]),
        "cost": rng.choice([None, 0.039, 0.0, "0.5", 2]), "base_url": rng.choice(APIS),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=10**9))
def test_any_row_any_writer_makes_gets_the_figures_schema_9_gave(seed):
    """Inserts and updates of every column the figures read, with the odd times other programs write,
    then deletes: schema 10 keeps, row by row and in the totals, what schema 9 kept."""
    rng = random.Random(seed)
    old, new = _schema(9), _schema(10)
    writes: list[tuple[str, tuple[Any, ...]]] = []
    for number in range(30):
        row = {"request_id": f"job-{number:03}", **_row(rng)}
        writes.append((f"INSERT INTO jobs (model, prompt, input, updated_at, {', '.join(row)})"
                       f" VALUES ('m', 'p', '{{}}', '2026', {', '.join('?' * len(row))})", tuple(row.values())))
    for _ in range(30):
        changes = dict(rng.sample(sorted(_row(rng).items()), rng.randrange(1, 4)))
        writes.append((f"UPDATE jobs SET {', '.join(f'{column} = ?' for column in changes)} WHERE request_id = ?",
                       (*changes.values(), f"job-{rng.randrange(30):03}")))
    writes.append(("UPDATE OR REPLACE jobs SET request_id = ? WHERE request_id = ?", ("job-001", "job-002")))
    writes.append(("DELETE FROM jobs WHERE request_id IN (?, ?, ?)", tuple(f"job-{n:03}" for n in rng.sample(range(30), 3))))
    for statement, params in writes:
        old.execute(statement, params)
        new.execute(statement, params)
        assert _kept(new) == _kept(old), (statement, params)
    assert new.execute("SELECT COUNT(*) FROM jobs WHERE stat_plain = 1").fetchone()[0] > 0  


def test_a_version_9_history_is_migrated_and_counts_as_before(tmp_path):
    """A database today's previous version wrote (schema 9) gets the new triggers in place: every job's
    figures and the totals stand, `history stats` gives what it gave, and the writes after the migration
    keep what schema 9's triggers would have kept (the same writes on a copy left at schema 9)."""
    database, copy = tmp_path / "history.sqlite3", tmp_path / "copy.sqlite3"
    _database(database, 400, 31, version=9)
    shutil.copyfile(database, copy)
    with History(database, warn=pytest.fail) as history:
        _same_as_reference(history)
        db = history._connection
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10
        old = sqlite3.connect(copy, isolation_level=None)
        old.execute("PRAGMA recursive_triggers = ON")
        assert _kept(db) == _kept(old)
        # the program's writes through History, and another program's, made on both
        generation = GenerationInput(prompt="a fox")
        history.record_submission("fresh-1", generation, APIS[0])
        history.update("fresh-1", status="succeeded", paths=["/a.png"], cost=0.039, created_at="2026-01-04T10:00:00.100Z",
                       started_at="2026-01-04T10:00:02.000Z", finished_at="2026-01-04T10:00:09.250Z", duration_seconds=9.0)
        ticket = history.submitting(generation, APIS[1])
        history.submitted(ticket, "fresh-1")  # replaces the row: counted out
        for row in db.execute("SELECT * FROM jobs WHERE request_id = 'fresh-1'"):
            old.execute(f"INSERT INTO jobs VALUES ({', '.join('?' * len(row))})", row)
        ids = [row[0] for row in db.execute("SELECT request_id FROM jobs ORDER BY rowid LIMIT 30")]
        for database_now in (db, old):
            database_now.execute("UPDATE jobs SET started_at = '2026-01-05T01:02:03.456789Z' WHERE request_id = ?", (ids[0],))
            database_now.execute("UPDATE jobs SET finished_at = '2026-02-30T00:00:00.000Z', status = 'failed'"
                                 " WHERE request_id = ?", (ids[1],))
            database_now.execute("UPDATE jobs SET submitted_at = '2026-01-02T23:59:59.999Z', base_url = ? WHERE request_id = ?",
                                 (APIS[2], ids[2]))
            database_now.execute("DELETE FROM jobs WHERE request_id IN (?, ?)", (ids[3], ids[4]))
        assert _kept(db) == _kept(old)
        _recount(db)
        _same_as_reference(history, MORE_WINDOWS)
        old.close()


@pytest.mark.parametrize("version", [4, 5, 6, 8])  # (_database writes schema 4's columns; test_history_batch opens a 1)
def test_every_earlier_schema_is_migrated_to_the_new_triggers(tmp_path, version):
    database = tmp_path / "history.sqlite3"
    _database(database, 120, version, version=version)
    with History(database, warn=pytest.fail) as history:
        _same_as_reference(history, MORE_WINDOWS[:5])
        db = history._connection
        _recount(db)
        triggers = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE name LIKE 'jobs_stats_%'"))
        assert triggers == dict(_schema(10).execute("SELECT name, sql FROM sqlite_master WHERE name LIKE 'jobs_stats_%'"))
        history.update(db.execute("SELECT request_id FROM jobs LIMIT 1").fetchone()[0], status="failed",
                       started_at="2026-01-01T00:00:00.000Z", finished_at="2026-01-01T00:00:01.500Z")
        _recount(db)


def test_histories_opened_together_and_a_failed_migration(tmp_path):
    """Two Histories on one schema 9 file: the first to open it migrates (under its write lock), the
    other finds it done; a migration that fails leaves schema 9 whole (one transaction)."""
    database = tmp_path / "history.sqlite3"
    _database(database, 50, 2, version=9)
    with History(database, warn=pytest.fail) as first, History(database, warn=pytest.fail) as second:
        assert first.count() == second.count() == 50
        assert first.stats() == second.stats()
    broken = tmp_path / "broken.sqlite3"
    _database(broken, 50, 2, version=9)
    statements = MIGRATIONS[10]
    try:
        MIGRATIONS[10] = (*statements, "SELECT no_such_function()")
        with History(broken) as history:
            assert history.count() == 0 and history.failure is not None
    finally:
        MIGRATIONS[10] = statements
    db = sqlite3.connect(broken)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 9
    triggers = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
    assert db.execute(triggers).fetchall() == _schema(9).execute(triggers).fetchall()
    db.close()


@pytest.mark.parametrize("day", ["0000-01-01", "1970-01-01", "2024-02-29", "2026-12-31T23:59", "9999-12-31T23:59"])
def test_each_time_is_read_as_schema_9_read_it(day):
    """Schema 10's reading of one time (its milliseconds, or NULL when not plain) against schema 9's
    test and conversion, for every millisecond of a second and both spellings, and for the odd times."""
    db = sqlite3.connect(":memory:")
    old = f"CASE WHEN {stats._plain('?1')} THEN {stats._millis('?1')} END"
    clock = "T12:34:56" if "T" not in day else ":59"
    times = [*_ODD_TIMES, *(f"{day}{clock}{fraction}Z" for fraction in ["", *(f".{ms:03}" for ms in range(1000))])]
    read = [db.execute(f"SELECT {stats._millis_if_plain('?1')}, {old}", (time,)).fetchone() for time in times]
    assert [new for new, _ in read] == [old for _, old in read]
    assert sum(new is not None for new, _ in read) >= 1001  # every millisecond, and the whole second
