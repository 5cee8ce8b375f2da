"""Times, in one place: the UTC timestamps we write, reading any we are handed, and a job's timeline.

Timestamps are ISO 8601 in UTC with a `Z` (`2026-01-31T23:59:59.123Z`), as the API writes them.
A job's timeline combines two clocks: ours (`submitted_at`, `started_at`: when a client of ours
submitted it and first saw it running) and the server's (`created_at`, `finished_at`). A span is
given only when both of its ends were observed and agree; anything else stays unknown rather than
turning into a wrong queue wait or run time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, NamedTuple


def utc_now() -> str:
    """Now, as every record we write says it."""
    return utc_text(datetime.now(timezone.utc))


def utc_text(moment: datetime, timespec: str = "milliseconds") -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_utc(text: Any) -> datetime | None:
    """A timestamp from a record or a server, or None when it is missing or unreadable. One without a
    zone is taken as UTC, as the API's are."""
    if not isinstance(text, str) or not text or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def seconds_between(start: Any, end: Any) -> float | None:
    """Seconds from `start` to `end`; None when either is unknown or `end` comes first."""
    first, last = parse_utc(start), parse_utc(end)
    if first is None or last is None or last < first:
        return None
    return (last - first).total_seconds()


class Timeline(NamedTuple):
    """A job's spans in seconds, each None when it was not observed."""

    queue_wait: float | None  # our submit -> a client of ours first saw it running
    run: float | None  # that sighting -> the server's finish
    total: float | None  # the server's created -> finished (else its duration, else our submit -> its finish)


def timeline(
    submitted_at: Any, started_at: Any, created_at: Any, finished_at: Any, duration_seconds: Any = None
) -> Timeline:
    """The one reading of a recorded job's times, for `explain`, the gallery and `history stats`."""
    total = seconds_between(created_at, finished_at)
    if total is None and isinstance(duration_seconds, (int, float)) and not isinstance(duration_seconds, bool):
        total = float(duration_seconds) if duration_seconds >= 0 else None
    if total is None:
        total = seconds_between(submitted_at, finished_at)
    queue_wait = seconds_between(submitted_at, started_at)
    run = seconds_between(started_at, finished_at)
    sighting_fits = queue_wait is not None and (parse_utc(finished_at) is None or run is not None)
    if sighting_fits and total is not None and queue_wait is not None and queue_wait > total:
        sighting_fits = False  # the two clocks disagree: a queue wait longer than the whole job is not one
    if not sighting_fits:
        return Timeline(None, None, total)
    return Timeline(queue_wait, run, total)
