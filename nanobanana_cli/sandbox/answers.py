"""The JSON bodies of the Model API's answers, in the shapes runcomfy-api.md documents."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .jobs import CANCELLED, FAILED, FINISHED, IN_PROGRESS, IN_QUEUE, SUCCEEDED, Job

if TYPE_CHECKING:
    from .server import Sandbox

JOB_ERROR = {"type": "generation_failed", "message": "the model could not render this prompt"}


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def error(code: int, message: str) -> dict[str, Any]:
    return {"error_code": code, "error_message": message}


def submission(sandbox: Sandbox, job: Job) -> dict[str, Any]:
    return {"request_id": job.request_id, **sandbox.api_urls(job.request_id)}


def status(sandbox: Sandbox, job: Job, now: float) -> dict[str, Any]:
    """`/status`: a finished job, failed or not, reads `completed` here; only `/result` tells which."""
    state = job.state(now)
    urls = sandbox.api_urls(job.request_id)
    body: dict[str, Any] = {
        "request_id": job.request_id,
        "status": state if state in (IN_QUEUE, IN_PROGRESS, CANCELLED) else "completed",
        "status_url": urls["status_url"],
        "result_url": urls["result_url"],
    }
    if state == IN_QUEUE:
        body["queue_position"] = sandbox.queue_position(job)
    return body


def result(sandbox: Sandbox, job: Job, now: float, *, include_cost: bool) -> dict[str, Any]:
    """`/result`: the live state while unfinished; outputs, or the error, once finished."""
    state = job.state(now)
    body: dict[str, Any] = {
        "request_id": job.request_id,
        "model_id": job.model.model_id,
        "status": state,
        "created_at": iso(job.created_wall),
    }
    if state in FINISHED:
        body["finished_at"] = iso(job.finished_at)
    if state == SUCCEEDED:
        body["output"] = sandbox.job_output(job)
    elif state == FAILED:
        body["error"] = {"type": "invalid_input", "message": job.error} if job.error else dict(JOB_ERROR)
    if include_cost and state in FINISHED:
        cost = job.model.cost(job.input) if state == SUCCEEDED else 0.0
        if cost is not None:  # a model whose price is unknown reports no cost
            body["cost"] = cost
    return body


def cancellation(job: Job, accepted: bool) -> dict[str, Any]:
    # `status` here is informational (the docs' example says "completed"); `outcome` decides
    return {"request_id": job.request_id, "status": "completed", "outcome": "cancelled" if accepted else "not_cancellable"}
