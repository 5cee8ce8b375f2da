"""`history stats`' totals by day and spans by bucket (schema 9): a history of the version before is
migrated with every job counted in, the triggers keep the totals right through every write the program
and another one make, and the figures stay those of the in-memory version on the same data."""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.stores import stats
from nanobanana_cli.stores.history import MIGRATIONS, History

from .test_history_scale import APIS, WINDOWS, _database, _reference
from .test_history_stats import _job

# the windows of test_history_scale and more: --since cutting through a day, at midnight, before and after all
MORE_WINDOWS = [
    *WINDOWS,
    (datetime(2026, 1, 3, 23, 59, 59, 999000, tzinfo=timezone.utc), None),
    (datetime(2026, 1, 8, tzinfo=timezone.utc), [APIS[0], APIS[2]]),
    (datetime(2025, 1, 1, tzinfo=timezone.utc), None),
    (datetime(2099, 1, 1, tzinfo=timezone.utc), None),
]


def _recount(db: Any) -> tuple[dict[tuple[Any, ...], tuple[Any, ...]], dict[tuple[Any, ...], int]]:
    """What `stats_days` and `stats_buckets` hold, and what counting every job afresh gives (the same
    statements as migration 9's back-fill): the two must agree, costs to within float rounding."""
    kept = {tuple(row[:3]): tuple(row[3:]) for row in db.execute("SELECT * FROM stats_days")}
    kept_buckets = {tuple(row[:3]): row[3] for row in db.execute("SELECT * FROM stats_buckets")}
    days, buckets = (statement.split(" SELECT ", 1)[1] for statement in stats.COUNT_EVERY_JOB[:2])
    fresh = {tuple(row[:3]): tuple(row[3:]) for row in db.execute("SELECT " + days)}
    fresh_buckets = {tuple(row[:3]): row[3] for statement in stats.COUNT_EVERY_JOB[1:]
                     for row in db.execute("SELECT " + statement.split(" SELECT ", 1)[1])}
    del buckets
    assert kept_buckets == fresh_buckets
    assert kept.keys() == fresh.keys()
    for key, figures in kept.items():
        jobs, images, costs, cost, queue_waits, runs, odd = figures
        assert (jobs, images, costs, queue_waits, runs, odd) == fresh[key][:3] + fresh[key][4:], key
        assert (cost is None) == (fresh[key][3] is None) and cost == pytest.approx(fresh[key][3]), key
    return kept, kept_buckets


def _same_as_reference(history: History, windows=MORE_WINDOWS) -> None:
    for since, base_urls in windows:
        assert history.stats(since, base_urls) == _reference(history, since, base_urls), (since, base_urls)


def test_a_version_8_history_is_migrated_with_every_job_counted_in(tmp_path):
    """A database today's previous version wrote (schema 8) gains the totals, back-filled, and its
    figures stay the same, whatever the window."""
    database = tmp_path / "history.sqlite3"
    _database(database, 500, 21, version=8)
    old = sqlite3.connect(database)
    assert not old.execute("SELECT 1 FROM sqlite_master WHERE name = 'stats_days'").fetchone()
    old.close()
    with History(database, warn=pytest.fail) as history:
        _same_as_reference(history)
        db = history._connection
        assert db.execute("PRAGMA user_version").fetchone()[0] == max(MIGRATIONS)
        kept, buckets = _recount(db)
        assert sum(figures[0] for figures in kept.values()) == 500
        assert {api for _day, _status, api in kept} == set(APIS) and len(buckets) > 100
        # the data had what makes a difference: rows `timeline` reads itself, jobs without a cost
        assert sum(figures[6] for figures in kept.values()) > 0 and history.stats()["spend_usd"]


def test_the_totals_follow_every_write(tmp_path):
    """Inserts, updates of every column the figures read, a submit settled over an existing row
    (UPDATE OR REPLACE), deletes, `history rm` and prune: the totals stay those of the jobs."""
    database = tmp_path / "history.sqlite3"
    _database(database, 300, 22, version=8)
    with History(database, warn=pytest.fail) as history:
        history.count()  # opens (and migrates) it
        db = history._connection
        _recount(db)
        generation = GenerationInput(prompt="a fox")
        history.record_submission("fresh-1", generation, APIS[0])
        history.update("fresh-1", status="succeeded", paths=["/a.png", "/b.png"], cost=0.078,
                       created_at="2026-01-04T10:00:00.100Z", started_at="2026-01-04T10:00:02.000Z",
                       finished_at="2026-01-04T10:00:09.250Z", duration_seconds=9.0)
        _recount(db)
        # a submit settled under an id already recorded: the row it replaces is counted out
        ticket = history.submitting(generation, APIS[1])
        history.submitted(ticket, "fresh-1")
        assert db.execute("SELECT COUNT(*) FROM jobs WHERE request_id = 'fresh-1'").fetchone()[0] == 1
        _recount(db)
        ticket = history.submitting(generation, APIS[1])
        history.uncertain(ticket, "lost")
        history.not_sent(history.submitting(generation, APIS[2]))
        _recount(db)
        ids = [row[0] for row in db.execute("SELECT request_id FROM jobs ORDER BY rowid LIMIT 40")]
        for number, request_id in enumerate(ids[:20]):  # the program's own updates
            history.update(request_id, status=("failed", "cancelled", "succeeded")[number % 3], cost=None if number % 4 else 0.5,
                           paths=[f"/x/{number}.png"] * (number % 3), finished_at="2026-01-09T00:00:00.000Z")
        # another program's: a job moved to another day, time spelling and API; costs taken away
        db.execute("UPDATE jobs SET submitted_at = '2026-01-02T23:59:59.999Z', base_url = ? WHERE request_id = ?", (APIS[2], ids[20]))
        db.execute("UPDATE jobs SET submitted_at = '2026-01-05T01:02:03.456789Z', started_at = 'soon' WHERE request_id = ?", (ids[21],))
        db.execute("UPDATE jobs SET cost = NULL WHERE request_id IN (?, ?, ?)", tuple(ids[22:25]))
        db.execute("UPDATE jobs SET cost = '0.25', status = 'in_progress' WHERE request_id = ?", (ids[25],))
        _recount(db)
        _same_as_reference(history)
        assert history.remove(ids[26:35]) == ids[26:35]
        _recount(db)
        assert history.remove_before(datetime(2026, 1, 6, 12, tzinfo=timezone.utc)) > 50
        _recount(db)
        _same_as_reference(history)
        history.remove_before(datetime(2099, 1, 1, tzinfo=timezone.utc))
        _recount(db)
        db.execute("DELETE FROM jobs")  # the rest: times spelled so they sort after any date ('yesterday')
        assert db.execute("SELECT COUNT(*) FROM stats_days").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM stats_buckets").fetchone()[0] == 0
        _same_as_reference(history)


@pytest.mark.parametrize("odd", [0, 7])
def test_ranks_in_a_bucket_of_many_values_and_of_one(tmp_path, odd):
    """Spans that share a bucket: many distinct values (the rank walked to from either end) and one
    value repeated (found by a look at the bucket's ends), with other APIs' spans in the same bucket,
    and with `odd` rows whose times `timeline` reads (microseconds) in those buckets too."""
    database = tmp_path / "history.sqlite3"
    with History(database, warn=pytest.fail) as history:
        history.count()
        start = datetime(2026, 3, 1, tzinfo=timezone.utc)
        rows = []
        for number in range(301):
            submitted = start + timedelta(minutes=number * 7)
            queued = timedelta(milliseconds=12_000 + (number * 37) % 100)  # 12.000-12.099 s: one bucket
            ran = timedelta(seconds=30)  # one value
            spell = _microseconds if number < odd else _text
            rows.append((f"job-{number}", _text(submitted), APIS[number % 2], spell(submitted + queued),
                         spell(submitted + queued + ran)))
        history._connection.executemany(
            "INSERT INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status,"
            " started_at, finished_at) VALUES (?, ?, '2026', 'm', ?, 'p', '{}', 'succeeded', ?, ?)", rows)
        assert history._connection.execute("SELECT COUNT(*) FROM stats_buckets").fetchone()[0] == 4
        assert history.stats()["run_seconds"]["count"] == 301
        statements: list[str] = []
        history._connection.set_trace_callback(statements.append)
        for apis in (None, [APIS[0]], [APIS[1]]):
            assert history.stats(None, apis) == _reference(history, None, apis)
        history._connection.set_trace_callback(None)
    # every rank was found in its bucket: no walk over every span of the window
    walks = [sql for sql in statements if "ORDER BY stat_" in sql]
    assert walks and all("round(stat_" in sql for sql in walks)
    assert not [sql for sql in statements if "row_number()" in sql]


def _text(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _microseconds(moment: datetime) -> str:
    return (moment + timedelta(microseconds=250)).isoformat(timespec="microseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("value", [0.0, 0.001, 0.0995, 0.999, 1.0, 9.999, 10.0, 99.995, 100.0, 12345.678, 1e9, 3.0e12])
def test_a_bucket_holds_its_values_between_its_bounds(value):
    db = sqlite3.connect(":memory:")
    number = db.execute(f"SELECT {stats.bucket('?1')}", (value,)).fetchone()[0]
    low, high = stats._bounds(number)
    assert low < value < high


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**11), min_size=2, max_size=30))
def test_buckets_are_in_the_order_of_the_values(millis):
    """The order of the buckets is that of the spans (whole milliseconds, as plain rows hold them)."""
    db = sqlite3.connect(":memory:")
    values = sorted(m / 1000.0 for m in millis)
    numbers = [db.execute(f"SELECT {stats.bucket('?1')}", (value,)).fetchone()[0] for value in values]
    assert numbers == sorted(numbers)
    for value, number in zip(values, numbers):
        low, high = stats._bounds(number)
        assert low < value < high


# -- any sequence of writes ---------------------------------------------------------------------------

_WRITES = st.lists(st.tuples(st.sampled_from(["insert", "update", "move", "cost", "delete", "replace", "prune"]),
                             st.integers(min_value=0, max_value=10**6)), min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=10**6), writes=_WRITES)
def test_any_writes_keep_the_totals_and_the_figures(seed, writes):
    """Against counting every job afresh and against the in-memory version, after any writes."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "history.sqlite3"
        _database(database, 40, seed % 1000, version=8)
        with History(database, warn=pytest.fail) as history:
            history.count()
            db = history._connection
            for number, (write, pick) in enumerate(writes):
                ids = [row[0] for row in db.execute("SELECT request_id FROM jobs ORDER BY request_id")]
                some = ids[pick % len(ids)] if ids else None
                if write == "insert" or some is None:
                    job = {**_job(10_000 + number, rng), "base_url": APIS[pick % 3]}
                    db.execute(f"INSERT INTO jobs (model, prompt, input, updated_at, {', '.join(job)})"
                               f" VALUES ('m', 'p', '{{}}', '2026', {', '.join('?' * len(job))})", tuple(job.values()))
                elif write == "update":
                    job = _job(pick, rng)
                    history.update(some, status=job["status"], paths=json.loads(job["paths"]), cost=job["cost"],
                                   created_at=job["created_at"], started_at=job["started_at"], finished_at=job["finished_at"])
                elif write == "move":
                    db.execute("UPDATE jobs SET submitted_at = ?, base_url = ? WHERE request_id = ?",
                               (_job(pick, rng)["submitted_at"], APIS[pick % 3], some))
                elif write == "cost":
                    db.execute("UPDATE jobs SET cost = ? WHERE request_id = ?", (rng.choice([None, 0.039, 1, "0.5"]), some))
                elif write == "delete":
                    history.remove([some])
                elif write == "replace":  # a submit settled under an id already recorded
                    history.submitted(history.submitting(GenerationInput(prompt="p"), APIS[pick % 3]), some)
                else:
                    history.remove_before(datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(hours=pick % 200))
            _recount(db)
            _same_as_reference(history, [(None, None), (None, [APIS[1]]), (datetime(2026, 1, 5, 7, tzinfo=timezone.utc), None)])
