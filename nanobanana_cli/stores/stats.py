"""`history stats`: what the recorded jobs add up to — counts, rates, waits, images and spend.

Computed by SQLite, never by loading the jobs: memory stays flat, and the time does not grow with the
history: triggers keep its totals by day and its spans by bucket, so only the rows of the day a --since
falls in are walked (and, for a --since window, the spans: a walk along their index). The queue-wait and run-time spans
follow `times.timeline`: SQL reads the timestamps this program and the API write (UTC, `Z`, at most
millisecond digits) to the same exact values; a row with any other spelling is read by `timeline`
itself, so every row counts as it would there.
"""

from __future__ import annotations

from bisect import bisect_left
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
# -- each job's own figures, as schema 10's triggers compute them: every time read once ----------------
#
# The same figures as PLAIN, QUEUE_WAIT and RUN above (which migrations 6 and 9 still apply), in a
# fraction of the SQL every process parses with the schema and compiles into each write: a subquery
# without a FROM clause (one SQLite never flattens into the query that reads it) turns each time into
# its milliseconds once, and the spans are taken from those. An older SQLite reads it too (row values
# in SET: 3.15); generated columns would need 3.31 of every SQLite that opens the file, and compile
# their expression again at each use.


def _millis_if_plain(column: str) -> str:
    """`column`'s whole milliseconds since the epoch when SQL reads it exactly (`_plain`), else NULL.
    Plain is spelled as a round trip here: the text is what julianday's value prints back as, with
    milliseconds or whole seconds (a blob or a number is never equal to text; a 24:00 or a 30
    February prints as another day)."""
    back = f"strftime('%Y-%m-%dT%H:%M:%{{}}Z', julianday({column}))"
    return f"CASE WHEN {column} IN ({back.format('f')}, {back.format('S')}) THEN {_millis(column)} END"


def _seconds(start: str, end: str) -> str:
    """`_between` on milliseconds (NULL when either is: a NULL comparison is no match)."""
    return f"CASE WHEN {end} >= {start} THEN ({end} - {start}) / 1000.0 END"


# each time's milliseconds, named by the time without its `_at` (no column of jobs has that name)
_MILLIS = ", ".join(f"{_millis_if_plain(f'NEW.{column}')} AS {column[:-3]}" for column in _TIMES)
# a row is plain when each of its times is absent or read exactly (0 or 1: older rows may hold NULL for 0)
_ALL_PLAIN = " AND ".join(f"(NEW.{column} IS NULL OR {column[:-3]} IS NOT NULL)" for column in _TIMES)
_SPANS_OF_MILLIS = (
    f"SELECT {_ALL_PLAIN} AS plain, {_seconds('submitted', 'started')} AS queue, {_seconds('started', 'finished')} AS run,"
    f" COALESCE({_seconds('created', 'finished')}, CASE WHEN typeof(NEW.duration_seconds) IN ('integer', 'real')"
    f" AND NEW.duration_seconds >= 0 THEN NEW.duration_seconds * 1.0 END, {_seconds('submitted', 'finished')}) AS total"
    f" FROM (SELECT {_MILLIS})"
)
_FITTING = "plain AND queue IS NOT NULL AND (NEW.finished_at IS NULL OR run IS NOT NULL) AND (total IS NULL OR queue <= total)"
# the job `NEW` names: its images and spans, set in its row (schema 10)
STATS_OF_NEW = (
    f"UPDATE jobs SET stat_images = {IMAGES}, (stat_plain, stat_queue_wait, stat_run) = (SELECT plain,"
    f" CASE WHEN fits THEN queue END, CASE WHEN fits THEN run END FROM (SELECT *, {_FITTING} AS fits"
    f" FROM ({_SPANS_OF_MILLIS}))) WHERE rowid = NEW.rowid"
)

# the columns of migration 6's index for `history stats` (migration 7 replaced it with BY_DAY's)
INDEXED = "submitted_at, status, stat_images, cost, stat_plain, stat_queue_wait, stat_run"
# the day a job counts under, and an index in its order (with what the daily sums read), so they need no sort
DAY = "substr(submitted_at, 1, 10)"
BY_DAY = f"{DAY}, status, submitted_at, base_url, stat_images, cost, stat_plain, stat_queue_wait, stat_run"


# -- what the triggers keep (since schema 9): a history's figures by day, and its spans by size --------
#
# `stats_days` adds up the jobs of each (day, status, API): `history stats` reads the whole days of its
# window from there, and walks only the rows of the day its --since falls in. `stats_buckets` counts the
# plain rows' spans in buckets of three significant digits (of whole milliseconds): a rank is found in
# its bucket by the counts, then by a short walk of that bucket along the span's index.
DAY_TABLES = (
    "CREATE TABLE IF NOT EXISTS stats_days (day NOT NULL, status NOT NULL, base_url NOT NULL, jobs INTEGER NOT NULL,"
    " images NOT NULL, costs INTEGER NOT NULL, cost, queue_waits INTEGER NOT NULL, runs INTEGER NOT NULL,"
    " odd INTEGER NOT NULL, PRIMARY KEY (day, status, base_url)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS stats_buckets (span TEXT NOT NULL, base_url NOT NULL, bucket INTEGER NOT NULL,"
    " count INTEGER NOT NULL, PRIMARY KEY (span, base_url, bucket)) WITHOUT ROWID",
)
_SPANS = ("queue_wait", "run")
_ABOVE = 1_000_000  # the bucket of values that are no numbers (another program's), which sort after them


def bucket(value: str) -> str:
    """The bucket of a span: its whole milliseconds' digit count and first three digits, in the order of
    the values (a negative value, which no plain row holds, in one bucket below the rest)."""
    millis = f"CAST(round({value} * 1000) AS INTEGER)"
    return (f"(CASE WHEN typeof({value}) NOT IN ('integer', 'real') THEN {_ABOVE} WHEN {value} < 0 THEN -1"
            f" ELSE length({millis}) * 1000 + CAST(substr({millis}, 1, 3) AS INTEGER) END)")


def _bounds(number: int) -> tuple[float, float] | None:
    """Seconds that hold every value of a bucket (with room to spare: the walk tests the bucket too),
    for a walk of the span's index; None for the buckets of values that are no plain spans."""
    if not 1000 <= number < _ABOVE:
        return None
    digits, lead = divmod(number, 1000)
    scale = 10 ** max(0, digits - 3)
    return (lead * scale - 1) / 1000, ((lead + 1) * scale + 1) / 1000


def _figures(row: str) -> str:
    """What one job adds to its (day, status, API) in `stats_days`; `row` is a prefix (`OLD.`) or ''."""
    counted = "CASE WHEN {0}stat_plain = 1 AND {0}stat_{1} IS NOT NULL THEN 1 ELSE 0 END"
    return (f"substr({row}submitted_at, 1, 10), {row}status, {row}base_url, 1, COALESCE({row}stat_images, 0),"
            f" {row}cost IS NOT NULL, {row}cost + 0, {counted.format(row, 'queue_wait')}, {counted.format(row, 'run')},"
            f" {row}stat_plain IS NOT 1")


_DAY_KEY = "day = substr(OLD.submitted_at, 1, 10) AND status = OLD.status AND base_url = OLD.base_url"
# the job `NEW` names, as its row holds it now (its own figures just computed), counted in
COUNT_IN = "; ".join([
    "INSERT INTO stats_days (day, status, base_url, jobs, images, costs, cost, queue_waits, runs, odd)"
    f" SELECT {_figures('')} FROM jobs WHERE rowid = NEW.rowid ON CONFLICT (day, status, base_url) DO UPDATE SET"
    " jobs = jobs + 1, images = images + excluded.images, costs = costs + excluded.costs,"
    " cost = CASE WHEN excluded.costs = 0 THEN cost WHEN costs = 0 THEN excluded.cost ELSE cost + excluded.cost END,"
    " queue_waits = queue_waits + excluded.queue_waits, runs = runs + excluded.runs, odd = odd + excluded.odd",
    *(f"INSERT INTO stats_buckets SELECT '{span}', base_url, {bucket(f'stat_{span}')}, 1 FROM jobs WHERE rowid = NEW.rowid"
      f" AND stat_plain = 1 AND stat_{span} IS NOT NULL ON CONFLICT (span, base_url, bucket) DO UPDATE SET count = count + 1"
      for span in _SPANS),
]) + ";"
# the job `OLD` names, as it was, counted out (a day, status and API, or bucket, left with none is dropped)
COUNT_OUT = "; ".join([
    "UPDATE stats_days SET jobs = jobs - 1, images = images - COALESCE(OLD.stat_images, 0),"
    " costs = costs - (OLD.cost IS NOT NULL),"
    " cost = CASE WHEN OLD.cost IS NULL THEN cost WHEN costs = 1 THEN NULL ELSE cost - (OLD.cost + 0) END,"
    " queue_waits = queue_waits - (OLD.stat_plain = 1 AND OLD.stat_queue_wait IS NOT NULL),"
    f" runs = runs - (OLD.stat_plain = 1 AND OLD.stat_run IS NOT NULL), odd = odd - (OLD.stat_plain IS NOT 1) WHERE {_DAY_KEY}",
    f"DELETE FROM stats_days WHERE {_DAY_KEY} AND jobs <= 0",
    *(statement for span in _SPANS for statement in (
        f"UPDATE stats_buckets SET count = count - 1 WHERE OLD.stat_plain = 1 AND OLD.stat_{span} IS NOT NULL"
        f" AND span = '{span}' AND base_url = OLD.base_url AND bucket = {bucket(f'OLD.stat_{span}')}",
        f"DELETE FROM stats_buckets WHERE span = '{span}' AND base_url = OLD.base_url AND bucket = {bucket(f'OLD.stat_{span}')}"
        " AND count <= 0",
    )),
]) + ";"
# the back-fill of migration 9: every job counted in at once
COUNT_EVERY_JOB = (
    "INSERT INTO stats_days (day, status, base_url, jobs, images, costs, cost, queue_waits, runs, odd)"
    f" SELECT {DAY}, status, base_url, COUNT(*), SUM(COALESCE(stat_images, 0)), COUNT(cost), SUM(cost + 0),"
    " COUNT(CASE WHEN stat_plain = 1 THEN stat_queue_wait END), COUNT(CASE WHEN stat_plain = 1 THEN stat_run END),"
    f" SUM(stat_plain IS NOT 1) FROM jobs GROUP BY {DAY}, status, base_url",
    *(f"INSERT INTO stats_buckets SELECT '{span}', base_url, {bucket(f'stat_{span}')}, COUNT(*) FROM jobs"
      f" WHERE stat_plain = 1 AND stat_{span} IS NOT NULL GROUP BY base_url, 3" for span in _SPANS),
)


def _apis(base_urls: list[str] | None) -> tuple[str, tuple[Any, ...]]:
    if base_urls is None:
        return "1", ()
    return (f"base_url IN ({', '.join('?' * len(base_urls))})" if base_urls else "0"), tuple(base_urls)


def window(since: str | None, base_urls: list[str] | None) -> tuple[str, tuple[Any, ...]]:
    """The SQL condition (and its parameters) for jobs submitted at or after `since` to one of
    `base_urls` (None: any time, any API)."""
    apis, params = _apis(base_urls)
    if since is None:
        return apis, params
    return f"submitted_at >= ? AND {apis}", (since, *params)


def summarise(db: Any, since: str | None, base_urls: list[str] | None = None) -> dict[str, Any]:
    """The stats document for the jobs submitted at or after `since` (all when None) to these APIs
    (any when None), from an open history connection (or None: a history that could not be read,
    which has no jobs to count)."""
    if db is None:
        nothing: dict[str, float | None] = {"p50": None, "p95": None, "count": 0}
        return _document({}, {}, {}, nothing, dict(nothing))
    window_sql, params = window(since, base_urls)
    apis, api_params = _apis(base_urls)
    states: dict[str, int] = {}
    images: dict[str, int] = {}
    spend: dict[str, float] = {}
    known = {"queue_wait": 0, "run": 0}  # spans the plain rows hold (a span in the others' rows is not one)
    others = 0  # rows whose times are spelled otherwise (another program's, a server's microseconds)
    # The whole days of the window from their totals. A timestamp compares as text, so a job of a later day
    # than since's is in the window, one of an earlier day is not (and one spelled as a blob, after every
    # text, is): only the rows of since's own day are walked, along the index by day.
    totals = f"SELECT day, status, jobs, images, cost, queue_waits, runs, odd FROM stats_days WHERE {apis}"
    groups = [db.execute(totals + (" AND day > ?" if since is not None else "") + " ORDER BY day, status, base_url",
                         (*api_params, *((since[:10],) if since is not None else ())))]
    if since is not None:
        groups.append(db.execute(
            f"SELECT {DAY}, status, COUNT(*), SUM(stat_images), SUM(cost),"
            f" COUNT(CASE WHEN stat_plain = 1 THEN stat_queue_wait END), COUNT(CASE WHEN stat_plain = 1 THEN stat_run END),"
            f" SUM(stat_plain IS NOT 1)"
            f" FROM jobs INDEXED BY jobs_by_day WHERE {DAY} = ? AND {window_sql} GROUP BY status", (since[:10], *params)))
    # (The order costs are added in differs from a walk by time; money rounded to 4 places cannot tell.)
    for rows in groups:
        for day, status, count, pictures, cost, queue_waits, runs, odd in rows:
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
            # (found by the index that starts with stat_plain: `IS NOT 1` spelled as ranges, so its walk
            # grows with these rows, not with the window)
            rows = db.execute(f"SELECT {', '.join(_TIMES)}, duration_seconds FROM jobs WHERE rowid IN (SELECT rowid"
                              " FROM jobs INDEXED BY jobs_by_queue_wait WHERE (stat_plain IS NULL OR stat_plain < 1"
                              f" OR stat_plain > 1) AND {window_sql})", params)
            for row in rows:
                spans = timeline(*row)
                db.execute("INSERT INTO temp.stats_spans VALUES (?, ?)", (spans.queue_wait, spans.run))
            theirs = db.execute("SELECT COUNT(queue_wait), COUNT(run) FROM temp.stats_spans").fetchone()
            known["queue_wait"] += int(theirs[0])
            known["run"] += int(theirs[1])
        # the spans by bucket, for the whole history: a window from --since walks its spans instead
        queue_wait, run = (
            _percentiles(db, span, window_sql, params, known[span], others,
                         None if since is not None else _counts(db, span, apis, api_params))
            for span in _SPANS
        )
    finally:
        db.execute("DELETE FROM temp.stats_spans")
    return _document(states, images, spend, queue_wait, run)


def _counts(db: Any, span: str, apis: str, params: tuple[Any, ...]) -> dict[int, int]:
    """How many spans of these APIs each bucket holds: the plain rows' (`stats_buckets`), and those in
    the temporary table."""
    counts: dict[int, int] = {}
    for number, count in db.execute(f"SELECT bucket, SUM(count) FROM stats_buckets WHERE span = ? AND {apis}"
                                    " GROUP BY bucket", (span, *params)):
        counts[int(number)] = int(count)
    for number, count in db.execute(f"SELECT {bucket(span)}, COUNT(*) FROM temp.stats_spans WHERE {span} IS NOT NULL GROUP BY 1"):
        counts[int(number)] = counts.get(int(number), 0) + int(count)
    return counts


def _percentiles(
    db: Any, span: str, window: str, params: tuple[Any, ...], count: int, others: int, counts: dict[int, int] | None
) -> dict[str, float | None]:
    """p50 (the median: the middle value, or the mean of the middle two) and p95 (the value at the
    nearest rank) of the window's `count` spans: the plain rows', and with `others`, those in the
    temporary table (a span in the others' rows is not one). With `counts` (the spans by bucket), each
    rank is found in its bucket."""
    if not count:
        return {"p50": None, "p95": None, "count": 0}
    middle, top = count // 2, min(count - 1, round(0.95 * (count - 1)))
    ranks = {middle, top} | ({middle - 1} if count % 2 == 0 else set())
    at: dict[int, float] = {}
    # (counts out of step with the window's spans, from another program's writes, are not used)
    if counts is not None and sum(counts.values()) == count and min(counts.values()) > 0:
        below = 0
        for number in sorted(counts):
            for rank in ranks:
                if below <= rank < below + counts[number]:
                    at[rank] = _in_bucket(db, span, window, params, number, rank - below, counts[number])
            below += counts[number]
    elif not others:
        # every span is in the jobs' rows, whose index (covering the window) is in order: the median is a
        # walk from the bottom, the p95 a shorter one from the top
        walk = (f"SELECT stat_{span} FROM jobs INDEXED BY jobs_by_{span} WHERE stat_plain = 1 AND stat_{span} IS NOT NULL"
                f" AND {window} ORDER BY stat_{span} %s LIMIT ? OFFSET ?")
        first = min(ranks - {top}, default=top)
        at = {first + n: float(value) for n, (value,) in enumerate(db.execute(walk % "ASC", (*params, middle + 1 - first, first)))}
        at[top] = float(db.execute(walk % "DESC", (*params, 1, count - 1 - top)).fetchone()[0])
    else:
        at = _ranked(db, span, window, params, ranks)
    median = at[middle] if count % 2 else (at[middle - 1] + at[middle]) / 2
    return {"p50": round(median, 3), "p95": round(at[top], 3), "count": count}


def _in_bucket(db: Any, span: str, window: str, params: tuple[Any, ...], number: int, offset: int, size: int) -> float:
    """The value at `offset` (from 0) among the `size` spans of the window in bucket `number`."""
    bounds = _bounds(number)
    plain = (f"SELECT stat_{span} AS value FROM jobs INDEXED BY jobs_by_{span} WHERE stat_plain = 1"
             + (f" AND stat_{span} > ? AND stat_{span} < ?" if bounds else "")
             + f" AND {bucket(f'stat_{span}')} = ? AND {window}")
    plain_params = (*(bounds or ()), number, *params)
    theirs = [float(value) for (value,) in db.execute(
        f"SELECT {span} FROM temp.stats_spans WHERE {span} IS NOT NULL AND {bucket(span)} = ? ORDER BY {span}", (number,))]
    mine = size - len(theirs)  # the plain rows' spans in the bucket
    if not mine:
        return theirs[offset]
    # along the index in order: from the nearer end, after a look at both ends (a bucket of one value
    # is common: spans the server rounds to whole seconds)
    walk = f"{plain} ORDER BY stat_{span} %s LIMIT 1 OFFSET ?"
    lowest = float(db.execute(walk % "ASC", (*plain_params, 0)).fetchone()[0])
    highest = float(db.execute(walk % "DESC", (*plain_params, 0)).fetchone()[0])
    if lowest == highest:  # one value, however many times, among the few of the temporary table
        first = bisect_left(theirs, lowest)
        return theirs[offset] if offset < first else lowest if offset < first + mine else theirs[offset - mine]
    if theirs:
        union = (f"SELECT value FROM ({plain} UNION ALL SELECT {span} FROM temp.stats_spans WHERE {span} IS NOT NULL"
                 f" AND {bucket(span)} = ?) ORDER BY value LIMIT 1 OFFSET ?")
        return float(db.execute(union, (*plain_params, number, offset)).fetchone()[0])
    if offset in (0, mine - 1):
        return lowest if offset == 0 else highest
    if offset < mine // 2:
        return float(db.execute(walk % "ASC", (*plain_params, offset)).fetchone()[0])
    return float(db.execute(walk % "DESC", (*plain_params, mine - 1 - offset)).fetchone()[0])


def _ranked(db: Any, span: str, window: str, params: tuple[Any, ...], ranks: set[int]) -> dict[int, float]:
    """The values at these ranks (from 0) among every span of the window, by a walk over them all."""
    values = (f"SELECT stat_{span} AS value FROM jobs INDEXED BY jobs_by_{span} WHERE stat_plain = 1 AND stat_{span} IS NOT NULL"
              f" AND {window} UNION ALL SELECT {span} FROM temp.stats_spans WHERE {span} IS NOT NULL")
    ranked = (f"SELECT rank, value FROM (SELECT value, row_number() OVER (ORDER BY value) - 1 AS rank FROM ({values}))"
              f" WHERE rank IN ({', '.join('?' * len(ranks))})")
    return {int(rank): float(value) for rank, value in db.execute(ranked, (*params, *ranks))}


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
