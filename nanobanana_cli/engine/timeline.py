"""`explain`: a job's life as recorded — when it was submitted, queued, run, downloaded, and what it cost."""

from __future__ import annotations

from typing import Any

from ..stores.history import HistoryEntry
from ..stores.stats import seconds_between

EXPLAIN_SCHEMA_VERSION = 1


def explain(entry: HistoryEntry) -> dict[str, Any]:
    """The timeline document. Queue wait runs from our submit to the first time we saw it running;
    run time from then to the server's finish; total is the server's own created → finished."""
    queue_wait = seconds_between(entry.submitted_at, entry.started_at)
    run = seconds_between(entry.started_at, entry.finished_at)
    total = seconds_between(entry.created_at, entry.finished_at) or entry.duration_seconds
    return {
        "schema_version": EXPLAIN_SCHEMA_VERSION,
        "request_id": entry.request_id,
        "status": entry.status,
        "model": entry.model,
        "base_url": entry.base_url,
        "input": entry.input,
        "submitted_at": entry.submitted_at,
        "started_at": entry.started_at,
        "created_at": entry.created_at,
        "finished_at": entry.finished_at,
        "queue_wait_seconds": queue_wait,
        "run_seconds": run,
        "total_seconds": total,
        "cost": entry.cost,
        "error": entry.error,
        "files": entry.files or [{"path": path, "bytes": None, "sha256": None} for path in entry.paths],
        "timeline": entry.events,
    }
