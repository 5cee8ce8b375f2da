"""`history stats` reads every figure from an index that covers its window (API and time), without a sort or
a row read, and gives the figures the in-memory version gave; a database of the version before is migrated."""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timezone

import pytest

from nanobanana_cli.stores.history import MIGRATIONS, History

from .test_history_stats import _job, old_summarise

APIS = ("https://api", "https://other-api", "http://127.0.0.1:9")


def _database(path, jobs: int, seed: int, *, version: int = max(MIGRATIONS)) -> None:
    """A history of `jobs` varied jobs over three APIs, with the schema of `version`."""
    rng = random.Random(seed)
    rows = [{**_job(number, rng), "base_url": APIS[number % 3]} for number in range(jobs)]
    db = sqlite3.connect(path, isolation_level=None)
    for step in range(1, version + 1):
        for statement in MIGRATIONS[step]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {step}")
    db.executemany(
        f"INSERT INTO jobs (model, prompt, input, updated_at, {', '.join(rows[0])})"
        f" VALUES ('m', 'p', '{{}}', '2026', {', '.join('?' * len(rows[0]))})",
        [tuple(row.values()) for row in rows],
    )
    db.close()


WINDOWS = [
    (None, None),
    (None, [APIS[0]]),
    (None, [APIS[0], APIS[1]]),
    (datetime(2026, 1, 6, 12, tzinfo=timezone.utc), [APIS[1]]),
    (datetime(2026, 1, 6, 12, tzinfo=timezone.utc), None),
    (None, []),
]


def _reference(history: History, since, base_urls) -> dict:
    entries = history.entries(limit=None, since=since)
    return old_summarise(entry for entry in entries if base_urls is None or entry.base_url in base_urls)


@pytest.mark.parametrize("seed", [11, 12])
def test_stats_by_api_and_time_give_the_figures_the_in_memory_version_gave(tmp_path, seed):
    _database(tmp_path / "history.sqlite3", 450, seed)
    with History(tmp_path / "history.sqlite3", warn=pytest.fail) as history:
        for since, base_urls in WINDOWS:
            assert history.stats(since, base_urls) == _reference(history, since, base_urls), (since, base_urls)
        assert sorted(history.base_urls()) == sorted(APIS)
        figures = history.stats(None, [APIS[0]])
        assert 0 < figures["run_seconds"]["count"] < figures["jobs"] < 450 and figures["spend_usd"]


def test_a_version_6_history_is_migrated_and_counts_as_before(tmp_path):
    """A database the previous version wrote (schema 6) gains the indexes in place, its figures unchanged."""
    database = tmp_path / "history.sqlite3"
    _database(database, 300, 6, version=6)
    old = sqlite3.connect(database)
    before = {name for (name,) in old.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    old.close()
    assert "jobs_by_day" not in before
    with History(database, warn=pytest.fail) as history:
        for since, base_urls in WINDOWS:
            assert history.stats(since, base_urls) == _reference(history, since, base_urls), (since, base_urls)
    db = sqlite3.connect(database)
    assert db.execute("PRAGMA user_version").fetchone()[0] == max(MIGRATIONS)
    columns = {name: [row[2] for row in db.execute(f"PRAGMA index_info({name})")]
               for name in ("jobs_by_day", "jobs_by_queue_wait", "jobs_by_run")}
    assert columns["jobs_by_queue_wait"] == ["stat_plain", "stat_queue_wait", "base_url", "submitted_at"]
    assert columns["jobs_by_run"] == ["stat_plain", "stat_run", "base_url", "submitted_at"]
    assert "base_url" in columns["jobs_by_day"] and "cost" in columns["jobs_by_day"]
    assert "jobs_stats" in before and not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs_stats'").fetchone()
    assert db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 300
    db.close()


@pytest.mark.parametrize("plain", [True, False])
def test_stats_read_only_covering_indexes_and_sort_nothing(tmp_path, plain):
    """Whatever the window, no statement of `history stats` reads the jobs' rows or sorts them (the few
    rows whose times only `timeline` reads are fetched by rowid), so its cost is one pass over an index."""
    database = tmp_path / "history.sqlite3"
    _database(database, 200, 3)
    if plain:  # every time spelled as this program writes them: no row is left for `timeline`
        db = sqlite3.connect(database, isolation_level=None)
        db.execute("DELETE FROM jobs WHERE stat_plain IS NOT 1")
        db.close()
    with History(database, warn=pytest.fail) as history:
        history.count()  # opens (and migrates) it
        db = history._connection
        statements: list[str] = []
        db.set_trace_callback(statements.append)
        for since, base_urls in WINDOWS:
            history.stats(since, base_urls)
        history.base_urls()
        db.set_trace_callback(None)
        plans = {}
        for sql in dict.fromkeys(statements):
            orphan_check = "owner_pid" in sql  # reads the rows of the few submits in flight, found by an index
            if "FROM jobs" in sql and sql.lstrip().upper().startswith(("SELECT", "WITH")) and not orphan_check:
                plans[sql] = [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert plans
    for sql, plan in plans.items():
        for step in plan:
            assert "TEMP B-TREE" not in step or "temp.stats_spans" in sql, f"{sql}\n  sorts: {step}"
            if " jobs " in f" {step} " and "PRIMARY KEY" not in step and "temp" not in step:
                assert "COVERING INDEX" in step, f"{sql}\n  reads rows: {step}"
