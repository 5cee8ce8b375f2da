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
_IMAGES = ("CASE WHEN json_valid(paths) AND json_array_length(paths) > 0 THEN json_array_length(paths)"
           " WHEN status = 'succeeded' AND json_valid(output_urls) THEN json_array_length(output_urls) ELSE 0 END")


def _millis(column: str) -> str:
    """The timestamp in `column` (its julianday in `column_jd`) as whole milliseconds, when it is plain."""
    plain = (f"typeof({column}) = 'text' AND ({column} GLOB '{_SECONDS_Z}Z' OR {column} GLOB '{_SECONDS_Z}.[0-9][0-9][0-9]Z')"
             f" AND strftime('%Y-%m-%dT%H:%M:%S', {column}_jd) = substr({column}, 1, 19)")
    # a julianday holds whole milliseconds to within a few microseconds: rounding gives them back exactly
    return f"CASE WHEN {plain} THEN CAST(round(({column}_jd - 2440587.5) * 86400000) AS INTEGER) END"


# Two passes over the window, through temporary tables (each time parsed once, whatever SQLite's
# version does with subqueries): the times and their juliandays, then milliseconds (NULL when unknown or
# not plain), with `plain` saying whether every present time was plain (else `timeline` reads the row).
_PARSED = f"""
    INSERT INTO temp.stats_parsed SELECT rowid, {', '.join(_TIMES)}, {', '.join(f'julianday({c})' for c in _TIMES)},
        duration_seconds FROM jobs WHERE {{window}}
"""
_ROWS = f"""
    INSERT INTO temp.stats_rows
    SELECT job, {', '.join(f'{_millis(c)}' for c in _TIMES)}, duration_seconds,
        {' AND '.join(f'({c} IS NULL OR {_millis(c)} IS NOT NULL)' for c in _TIMES)}
    FROM temp.stats_parsed
"""


def _between(start: str, end: str) -> str:
    """`times.seconds_between` on milliseconds: None when either end is unknown or the end comes first."""
    return f"CASE WHEN {end} >= {start} THEN ({end} - {start}) / 1000.0 END"


_NUMBER = "typeof(duration) IN ('integer', 'real')"
# `times.timeline`, for the rows whose times are all plain
_SPANS = f"""
    SELECT CASE WHEN fits THEN queue_wait END, CASE WHEN fits THEN run END FROM (
    SELECT queue_wait, run, queue_wait IS NOT NULL AND (finished IS NULL OR run IS NOT NULL)
        AND (total IS NULL OR queue_wait <= total) AS fits
    FROM (SELECT finished, {_between('submitted', 'started')} AS queue_wait, {_between('started', 'finished')} AS run,
        COALESCE({_between('created', 'finished')}, CASE WHEN {_NUMBER} AND duration >= 0 THEN duration * 1.0 END,
                 {_between('submitted', 'finished')}) AS total
        FROM temp.stats_rows WHERE plain))
"""


def summarise(db: Any, since: str | None) -> dict[str, Any]:
    """The stats document for the jobs submitted at or after `since` (all when None), from an open
    history connection (or None: a history that could not be read, which has no jobs to count)."""
    if db is None:
        nothing: dict[str, float | None] = {"p50": None, "p95": None, "count": 0}
        return _document({}, {}, {}, nothing, dict(nothing))
    window, params = ("submitted_at >= ?", (since,)) if since is not None else ("1", ())
    states = dict(db.execute(f"SELECT status, COUNT(*) FROM jobs WHERE {window} GROUP BY status", params).fetchall())
    images: dict[str, int] = {}
    spend: dict[str, float] = {}
    # in the order the jobs are listed (newest first), which is the order their costs were added in before
    for day, count, cost in db.execute(
        f"SELECT day, SUM(images), SUM(cost) FROM (SELECT substr(submitted_at, 1, 10) AS day, {_IMAGES} AS images,"
        f" cost FROM jobs WHERE {window} ORDER BY submitted_at DESC, rowid DESC) GROUP BY day",
        params,
    ):
        images[day] = int(count)
        if cost is not None:
            spend[day] = float(cost)
    db.execute("CREATE TEMP TABLE IF NOT EXISTS stats_rows (job INTEGER, submitted INTEGER, started INTEGER, created INTEGER,"
               " finished INTEGER, duration, plain INTEGER)")
    db.execute("CREATE TEMP TABLE IF NOT EXISTS stats_spans (queue_wait REAL, run REAL)")
    db.execute(f"CREATE TEMP TABLE IF NOT EXISTS stats_parsed (job INTEGER, {', '.join(_TIMES)},"
               f" {', '.join(f'{c}_jd' for c in _TIMES)}, duration_seconds)")
    try:
        db.execute(_PARSED.format(window=window), params)
        db.execute(_ROWS)
        db.execute(f"INSERT INTO temp.stats_spans {_SPANS}")
        # the few rows whose times are spelled otherwise (another program's, a server's microseconds)
        others = db.execute(f"SELECT {', '.join(_TIMES)}, duration_seconds FROM jobs WHERE {window}"
                            f" AND rowid IN (SELECT job FROM temp.stats_rows WHERE NOT plain)", params)
        for row in others:
            spans = timeline(*row)
            db.execute("INSERT INTO temp.stats_spans VALUES (?, ?)", (spans.queue_wait, spans.run))
        queue_wait = _percentiles(db, "queue_wait", _count(db, "queue_wait"))
        run = _percentiles(db, "run", _count(db, "run"))
    finally:
        for table in ("stats_parsed", "stats_rows", "stats_spans"):
            db.execute(f"DELETE FROM temp.{table}")
    return _document(states, images, spend, queue_wait, run)


def _count(db: Any, column: str) -> int:
    return int(db.execute(f"SELECT COUNT({column}) FROM temp.stats_spans").fetchone()[0])


def _percentiles(db: Any, column: str, count: int) -> dict[str, float | None]:
    """p50 (the median: the middle value, or the mean of the middle two) and p95 (the value at the
    nearest rank), read at their ranks after one sort."""
    if not count:
        return {"p50": None, "p95": None, "count": 0}
    middle, top = count // 2, min(count - 1, round(0.95 * (count - 1)))
    ranks = {middle, top} | ({middle - 1} if count % 2 == 0 else set())
    query = (f"SELECT rank, value FROM (SELECT {column} AS value, row_number() OVER (ORDER BY {column}) - 1 AS rank"
             f" FROM temp.stats_spans WHERE {column} IS NOT NULL) WHERE rank IN ({', '.join('?' * len(ranks))})")
    at = {int(rank): float(value) for rank, value in db.execute(query, tuple(ranks))}
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
