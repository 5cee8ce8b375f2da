"""`explain`: a job's life as recorded — when it was submitted, queued, run, downloaded, and what it cost."""

from __future__ import annotations

from typing import Any

from ..stores.history import HistoryEntry
from ..times import timeline

EXPLAIN_SCHEMA_VERSION = 1


def explain(entry: HistoryEntry) -> dict[str, Any]:
    """The timeline document: spans as `times.timeline` reads them, None where nobody observed them."""
    queue_wait, run, total = timeline(
        entry.submitted_at, entry.started_at, entry.created_at, entry.finished_at, entry.duration_seconds
    )
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
