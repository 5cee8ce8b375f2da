"""`history stats`: what the recorded jobs add up to — counts, rates, waits, images and spend.

Computed by SQLite over the selected window, never by loading the jobs: memory stays flat and time
grows with a pass over the rows, whatever the history holds. The queue-wait and run-time spans
follow `times.timeline`: SQL reads the timestamps this program and the API write (UTC, `Z`, at most
millisecond digits) to the same exact values; a row with any other spelling is read by `timeline`
itself, so every row counts as it would there.
"""

from __future__ import annotations

from typing import Any

from ..states import FINISHED_STATES
from ..times import timeline

# A timestamp SQL reads exactly: `YYYY-MM-DDTHH:MM:SSZ` or with `.mmm`, a real date and time (one that
# a round trip through julianday gives back unchanged: no 30 February). Its value is whole milliseconds
# since the epoch, as an integer, so the spans are the same floats `timeline` computes.
_DIGITS = "[0-9][0-9]"
_SECONDS_Z = f"{_DIGITS}{_DIGITS}-{_DIGITS}-{_DIGITS}T{_DIGITS}:{_DIGITS}:{_DIGITS}"


_TIMES = ("submitted_at", "started_at", "created_at", "finished_at")
IMAGES = ("CASE WHEN json_valid(paths) AND json_array_length(paths) > 0 THEN json_array_length(paths)"
          " WHEN status = 'succeeded' AND json_valid(output_urls) THEN json_array_length(output_urls) ELSE 0 END")


def _plain(column: str) -> str:
    return (f"(typeof({column}) = 'text' AND ({column} GLOB '{_SECONDS_Z}Z' OR {column} GLOB '{_SECONDS_Z}.[0-9][0-9][0-9]Z')"
            f" AND strftime('%Y-%m-%dT%H:%M:%S', julianday({column})) = substr({column}, 1, 19))")


def _millis(column: str) -> str:
    # a julianday holds whole milliseconds to within a few microseconds: rounding gives them back exactly
    return f"CAST(round((julianday({column}) - 2440587.5) * 86400000) AS INTEGER)"


def _between(start: str, end: str) -> str:
    """`times.seconds_between` on plain times: None when either end is unknown or the end comes first."""
    return (f"(CASE WHEN {start} IS NOT NULL AND {end} IS NOT NULL AND {_millis(end)} >= {_millis(start)}"
            f" THEN ({_millis(end)} - {_millis(start)}) / 1000.0 END)")


# A job's own figures, kept in its row by triggers (stores/history.py) so that `history stats` reads them
# from an index instead of parsing every job's times: `times.timeline` in SQL, valid when PLAIN is 1.
PLAIN = "(" + " AND ".join(f"({column} IS NULL OR {_plain(column)})" for column in _TIMES) + ")"
_QUEUE, _RUN = _between("submitted_at", "started_at"), _between("started_at", "finished_at")
_TOTAL = (f"COALESCE({_between('created_at', 'finished_at')}, CASE WHEN typeof(duration_seconds) IN ('integer', 'real')"
          f" AND duration_seconds >= 0 THEN duration_seconds * 1.0 END, {_between('submitted_at', 'finished_at')})")
_FITS = f"({_QUEUE} IS NOT NULL AND (finished_at IS NULL OR {_RUN} IS NOT NULL) AND ({_TOTAL} IS NULL OR {_QUEUE} <= {_TOTAL}))"
QUEUE_WAIT = f"CASE WHEN {PLAIN} AND {_FITS} THEN {_QUEUE} END"
RUN = f"CASE WHEN {PLAIN} AND {_FITS} THEN {_RUN} END"
# the columns of migration 6's index for `history stats` (migration 7 replaced it with BY_DAY's)
INDEXED = "submitted_at, status, stat_images, cost, stat_plain, stat_queue_wait, stat_run"
# the day a job counts under, and an index in its order (with what the daily sums read), so they need no sort
DAY = "substr(submitted_at, 1, 10)"
BY_DAY = f"{DAY}, status, submitted_at, base_url, stat_images, cost, stat_plain, stat_queue_wait, stat_run"


def window(since: str | None, base_urls: list[str] | None) -> tuple[str, tuple[Any, ...]]:
    """The SQL condition (and its parameters) for jobs submitted at or after `since` to one of
    `base_urls` (None: any time, any API)."""
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append("submitted_at >= ?")
        params.append(since)
    if base_urls is not None:
        clauses.append(f"base_url IN ({', '.join('?' * len(base_urls))})" if base_urls else "0")
        params += base_urls
    return " AND ".join(clauses) or "1", tuple(params)


def summarise(db: Any, since: str | None, base_urls: list[str] | None = None) -> dict[str, Any]:
    """The stats document for the jobs submitted at or after `since` (all when None) to these APIs
    (any when None), from an open history connection (or None: a history that could not be read,
    which has no jobs to count)."""
    if db is None:
        nothing: dict[str, float | None] = {"p50": None, "p95": None, "count": 0}
        return _document({}, {}, {}, nothing, dict(nothing))
    window_sql, params = window(since, base_urls)
    states: dict[str, int] = {}
    images: dict[str, int] = {}
    spend: dict[str, float] = {}
    known = {"queue_wait": 0, "run": 0}  # spans the plain rows hold (a span in the others' rows is not one)
    others = 0  # rows whose times are spelled otherwise (another program's, a server's microseconds)
    # One walk along the index by day and status, no sort: every count and sum, a row per day and status.
    # (The order costs are added in differs from a walk by time; money rounded to 4 places cannot tell.)
    for day, status, count, pictures, cost, queue_waits, runs, odd in db.execute(
        f"SELECT {DAY}, status, COUNT(*), SUM(stat_images), SUM(cost),"
        f" COUNT(CASE WHEN stat_plain = 1 THEN stat_queue_wait END), COUNT(CASE WHEN stat_plain = 1 THEN stat_run END),"
        f" SUM(stat_plain IS NOT 1)"
        f" FROM jobs INDEXED BY jobs_by_day WHERE {window_sql} GROUP BY {DAY}, status",
        params,
    ):
        states[status] = states.get(status, 0) + int(count)
        images[day] = images.get(day, 0) + int(pictures)
        if cost is not None:
            spend[day] = spend.get(day, 0.0) + float(cost)
        known["queue_wait"] += int(queue_waits)
        known["run"] += int(runs)
        others += int(odd)
    db.execute("CREATE TEMP TABLE IF NOT EXISTS stats_spans (queue_wait REAL, run REAL)")
    try:
        if others:  # read by `timeline` itself, into a table the ranks are taken over with the rest
            rows = db.execute(f"SELECT {', '.join(_TIMES)}, duration_seconds FROM jobs WHERE rowid IN (SELECT rowid"
                              f" FROM jobs INDEXED BY jobs_by_day WHERE {window_sql} AND stat_plain IS NOT 1)", params)
            for row in rows:
                spans = timeline(*row)
                db.execute("INSERT INTO temp.stats_spans VALUES (?, ?)", (spans.queue_wait, spans.run))
            theirs = db.execute("SELECT COUNT(queue_wait), COUNT(run) FROM temp.stats_spans").fetchone()
            known["queue_wait"] += int(theirs[0])
            known["run"] += int(theirs[1])
        queue_wait = _percentiles(db, "queue_wait", window_sql, params, known["queue_wait"], others)
        run = _percentiles(db, "run", window_sql, params, known["run"], others)
    finally:
        db.execute("DELETE FROM temp.stats_spans")
    return _document(states, images, spend, queue_wait, run)


def _percentiles(
    db: Any, span: str, window: str, params: tuple[Any, ...], count: int, others: int
) -> dict[str, float | None]:
    """p50 (the median: the middle value, or the mean of the middle two) and p95 (the value at the
    nearest rank) of the window's `count` spans: the plain rows', and with `others`, those in the
    temporary table (a span in the others' rows is not one)."""
    values = (f"SELECT stat_{span} AS value FROM jobs INDEXED BY jobs_by_{span} WHERE stat_plain = 1 AND stat_{span} IS NOT NULL"
              f" AND {window}"
              f" UNION ALL SELECT {span} FROM temp.stats_spans WHERE {span} IS NOT NULL")
    if not count:
        return {"p50": None, "p95": None, "count": 0}
    middle, top = count // 2, min(count - 1, round(0.95 * (count - 1)))
    ranks = {middle, top} | ({middle - 1} if count % 2 == 0 else set())
    if not others:
        # every span is in the jobs' rows, whose index (covering the window) is in order: the median is a
        # walk from the bottom, the p95 a shorter one from the top
        walk = (f"SELECT stat_{span} FROM jobs INDEXED BY jobs_by_{span} WHERE stat_plain = 1 AND stat_{span} IS NOT NULL"
                f" AND {window} ORDER BY stat_{span} %s LIMIT ? OFFSET ?")
        first = min(ranks - {top}, default=top)
        at = {first + n: float(value) for n, (value,) in enumerate(db.execute(walk % "ASC", (*params, middle + 1 - first, first)))}
        at[top] = float(db.execute(walk % "DESC", (*params, 1, count - 1 - top)).fetchone()[0])
    else:
        ranked = (f"SELECT rank, value FROM (SELECT value, row_number() OVER (ORDER BY value) - 1 AS rank FROM ({values}))"
                  f" WHERE rank IN ({', '.join('?' * len(ranks))})")
        at = {int(rank): float(value) for rank, value in db.execute(ranked, (*params, *ranks))}
    median = at[middle] if count % 2 else (at[middle - 1] + at[middle]) / 2
    return {"p50": round(median, 3), "p95": round(at[top], 3), "count": count}


def _document(
    states: dict[str, int], images: dict[str, int], spend: dict[str, float],
    queue_wait: dict[str, float | None], run: dict[str, float | None],
) -> dict[str, Any]:
    finished = sum(count for state, count in states.items() if state in FINISHED_STATES)
    return {
        "jobs": sum(states.values()),
        "by_status": dict(sorted(states.items())),
        "images": sum(images.values()),
        "failure_rate": round(states.get("failed", 0) / finished, 4) if finished else None,
        "cancel_rate": round(states.get("cancelled", 0) / finished, 4) if finished else None,
        "queue_wait_seconds": queue_wait,
        "run_seconds": run,
        "images_per_day": dict(sorted(images.items())),
        "spend_usd_per_day": {day: round(total, 4) for day, total in sorted(spend.items())},
        "spend_usd": round(sum(spend.values()), 4) if spend else None,
    }
