"""`history stats`: what the recorded jobs add up to — counts, rates, waits, images and spend."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from ..states import FINISHED_STATES
from ..times import timeline
from .history import HistoryEntry


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "count": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 3), "p95": round(p95, 3), "count": len(ordered)}


def summarise(entries: Iterable[HistoryEntry]) -> dict[str, Any]:
    """The stats document: every figure is computed from what the history recorded, nothing estimated."""
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
        "queue_wait_seconds": _percentiles(queue_waits),
        "run_seconds": _percentiles(run_times),
        "images_per_day": dict(sorted(images_per_day.items())),
        "spend_usd_per_day": {day: round(total, 4) for day, total in sorted(spend_per_day.items())},
        "spend_usd": round(sum(spend_per_day.values()), 4) if spend_per_day else None,
    }
