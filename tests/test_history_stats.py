"""`history stats` computed by SQLite gives the figures the in-memory version gave, on the same data."""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from nanobanana_cli.states import FINISHED_STATES
from nanobanana_cli.stores.history import History, HistoryEntry
from nanobanana_cli.times import timeline

# -- the reference: `stores/stats.py` as it was, loading every job ------------------------------------


def _old_percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "count": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 3), "p95": round(p95, 3), "count": len(ordered)}


def old_summarise(entries: Iterable[HistoryEntry]) -> dict[str, Any]:
    jobs = list(entries)
    states = Counter(entry.status for entry in jobs)
    finished = sum(states[state] for state in FINISHED_STATES)
    spans = [timeline(e.submitted_at, e.started_at, e.created_at, e.finished_at, e.duration_seconds) for e in jobs]
    queue_waits = [span.queue_wait for span in spans if span.queue_wait is not None]
    run_times = [span.run for span in spans if span.run is not None]
    images_per_day: dict[str, int] = defaultdict(int)
    spend_per_day: dict[str, float] = defaultdict(float)
    for entry in jobs:
        day = entry.submitted_at[:10]
        images_per_day[day] += len(entry.paths) or (len(entry.output_urls) if entry.status == "succeeded" else 0)
        if entry.cost is not None:
            spend_per_day[day] += entry.cost
    return {
        "jobs": len(jobs),
        "by_status": dict(sorted(states.items())),
        "images": sum(images_per_day.values()),
        "failure_rate": round(states["failed"] / finished, 4) if finished else None,
        "cancel_rate": round(states["cancelled"] / finished, 4) if finished else None,
        "queue_wait_seconds": _old_percentiles(queue_waits),
        "run_seconds": _old_percentiles(run_times),
        "images_per_day": dict(sorted(images_per_day.items())),
        "spend_usd_per_day": {day: round(total, 4) for day, total in sorted(spend_per_day.items())},
        "spend_usd": round(sum(spend_per_day.values()), 4) if spend_per_day else None,
    }


# -- a varied history ----------------------------------------------------------------------------------

STATES = ["succeeded"] * 6 + ["failed", "cancelled", "in_queue", "in_progress", "uncertain"]


def _spell(moment: datetime, rng: random.Random) -> str | None:
    """A timestamp as this program, the API or another program may have written it."""
    kind = rng.choices(["ms", "s", "us", "offset", "naive", "bad", "none", "date"], [60, 8, 8, 5, 5, 3, 8, 3])[0]
    utc = moment.astimezone(timezone.utc)
    return {
        "ms": utc.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "s": utc.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "us": utc.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "offset": moment.astimezone(timezone(timedelta(hours=2))).isoformat(timespec="milliseconds"),
        "naive": utc.replace(tzinfo=None).isoformat(timespec="milliseconds"),
        "bad": "2026-02-30T10:00:00.000Z" if rng.random() < 0.5 else "yesterday",
        "none": None,
        "date": utc.date().isoformat(),
    }[kind]


def _job(number: int, rng: random.Random) -> dict[str, Any]:
    submitted = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(days=rng.randrange(12), milliseconds=rng.randrange(86_400_000))
    queued = timedelta(milliseconds=rng.randrange(0, 20_000))
    ran = timedelta(milliseconds=rng.randrange(0, 60_000))
    created = submitted + timedelta(milliseconds=rng.randrange(-500, 800))  # the server's clock is not ours
    started = submitted + queued
    finished = started + ran
    if rng.random() < 0.1:
        started = finished + timedelta(seconds=3)  # a start seen after the finish
    if rng.random() < 0.1:
        created = finished - timedelta(milliseconds=rng.randrange(0, 2000))  # queue wait longer than the total
    status = rng.choice(STATES)
    paths = [f"/out/{number}-{i}.png" for i in range(rng.choice([0, 0, 1, 2, 4]))]
    return {
        "request_id": f"{number:08x}-0000-4000-8000-000000000000",
        "submitted_at": submitted.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if rng.random() < 0.9 else _spell(submitted, rng) or "2026-01-03",
        "started_at": _spell(started, rng),
        "created_at": _spell(created, rng),
        "finished_at": _spell(finished, rng),
        "duration_seconds": rng.choice([None, round(ran.total_seconds(), 3), -1.0, 7, ran.total_seconds() + 0.123456]),
        "cost": rng.choice([None, 0.039, 0.0387, 0.156, 0.1, 0.0]),
        "status": status,
        "paths": json.dumps(paths),
        "output_urls": json.dumps([f"https://x/{i}.png" for i in range(rng.choice([0, 1, 2]))]),
    }


def _history(tmp_path, jobs: int, seed: int) -> History:
    rng = random.Random(seed)
    history = History(tmp_path / f"history-{seed}.sqlite3", warn=pytest.fail)
    history.count()
    rows = [_job(number, rng) for number in range(jobs)]
    for row in rows[: jobs // 10]:  # some share a submit time with another job
        row["submitted_at"] = rows[-1]["submitted_at"]
    columns = ", ".join(rows[0])
    history._connection.executemany(
        f"INSERT INTO jobs (model, base_url, prompt, input, updated_at, {columns})"
        f" VALUES ('m', 'https://api', 'p', '{{}}', '2026', {', '.join('?' * len(rows[0]))})",
        [tuple(row.values()) for row in rows],
    )
    return history


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stats_give_the_figures_the_in_memory_version_gave(tmp_path, seed):
    with _history(tmp_path, 400, seed) as history:
        for since in (None, datetime(2026, 1, 6, 12, tzinfo=timezone.utc), datetime(2099, 1, 1, tzinfo=timezone.utc)):
            expected = old_summarise(history.entries(limit=None, since=since))
            assert history.stats(since) == expected
        # the data had what makes a difference: unknown spans, and rows read by `timeline` itself
        figures = history.stats()
        assert 0 < figures["queue_wait_seconds"]["count"] < figures["jobs"]
        assert figures["run_seconds"]["count"] > 100 and figures["spend_usd"]


def test_stats_of_an_empty_or_unreadable_history(tmp_path):
    with History(tmp_path / "history.sqlite3", warn=pytest.fail) as history:
        assert history.stats() == old_summarise([])
    (tmp_path / "broken.sqlite3").write_bytes(b"not a database" * 100)
    warnings: list[str] = []
    with History(tmp_path / "broken.sqlite3", warn=warnings.append) as history:
        assert history.stats() == old_summarise([])
    assert warnings


def test_stats_read_the_table_in_one_pass_each_without_loading_rows(tmp_path):
    """No statement reads whole rows into Python: the figures come from aggregates and ranked values."""
    with _history(tmp_path, 50, 4) as history:
        statements: list[str] = []
        history._connection.set_trace_callback(statements.append)
        history.stats()
        history._connection.set_trace_callback(None)
    assert not [sql for sql in statements if "SELECT *" in sql.upper() or "SELECT JOBS.*" in sql.upper()]


def test_a_version_5_history_is_migrated_with_every_jobs_figures(tmp_path):
    """The figures of jobs recorded before the migration are filled in by it, not only new ones'."""
    from nanobanana_cli.stores.history import MIGRATIONS

    rng = random.Random(5)
    rows = [_job(number, rng) for number in range(300)]
    database = tmp_path / "history.sqlite3"
    db = sqlite3.connect(database, isolation_level=None)
    for version in range(1, 6):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {version}")
    db.executemany(
        f"INSERT INTO jobs (model, base_url, prompt, input, updated_at, {', '.join(rows[0])})"
        f" VALUES ('m', 'https://api', 'p', '{{}}', '2026', {', '.join('?' * len(rows[0]))})",
        [tuple(row.values()) for row in rows],
    )
    db.close()
    with History(database, warn=pytest.fail) as history:
        assert history.stats() == old_summarise(history.entries(limit=None))
        assert history.stats()["run_seconds"]["count"] > 50


def test_stats_of_a_history_whose_times_are_all_plain(tmp_path, monkeypatch):
    """Every span read from the jobs' own index (no row left to `timeline`): the same figures."""
    def plain(moment: datetime, rng: random.Random) -> str | None:
        return None if rng.random() < 0.1 else moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    monkeypatch.setattr(sys.modules[__name__], "_spell", plain)
    with _history(tmp_path, 301, 7) as history:
        for since in (None, datetime(2026, 1, 4, tzinfo=timezone.utc)):
            assert history.stats(since) == old_summarise(history.entries(limit=None, since=since))
        assert history.stats()["queue_wait_seconds"]["count"] > 150
