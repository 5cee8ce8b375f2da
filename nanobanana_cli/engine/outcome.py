"""The job document: a job as every command prints it (`--json`, `--template`, the MCP tools),
versioned and described by docs/schema/job.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api.schema import MODEL_ID
from ..errors import JobFailedError, NanobananaError, SubmitUncertainError
from ..states import JobState

if TYPE_CHECKING:
    from ..api.models import GenerationInput
    from .downloads import SavedFile

# Bumped only when a field changes meaning or disappears; new optional fields keep the version.
JOB_SCHEMA_VERSION = 1
# Top-level fields of the job document (docs/schema/job.json); `--template` may name these.
JOB_FIELDS = (
    "schema_version", "request_id", "model", "status", "queue_position", "input", "outputs", "error",
    "submitted_at", "finished_at", "cost", "elapsed_seconds", "exit_code",
)
# Fields some commands add: `generate --no-wait` the URLs to follow, `cancel` the API's answer, `batch` the line.
EXTRA_JOB_FIELDS = ("status_url", "result_url", "cancel_url", "outcome", "line", "name", "skipped")


@dataclass
class JobOutcome:
    """A job as every command prints it: the one versioned job document (docs/schema/job.json)."""

    request_id: str
    status: str
    input: GenerationInput | None = None
    output_urls: list[str] = field(default_factory=list)
    saved: list[SavedFile] | None = None
    elapsed_seconds: float | None = None  # how long this command waited on the job; None if it did not wait
    error: NanobananaError | None = None  # why the command failed for this job (it decides the exit code)
    queue_position: int | None = None
    submitted_at: str | None = None
    finished_at: str | None = None
    job_error: str | None = None  # the API's reason for a failed job that is only being reported (`status`)
    cost: float | None = None

    @classmethod
    def from_error(cls, error: NanobananaError, generation: GenerationInput | None = None) -> JobOutcome:
        """A job whose submit failed, so none exists: uncertain when the request may have reached the server."""
        status = JobState.UNCERTAIN if isinstance(error, SubmitUncertainError) else JobState.ERROR
        return cls("", status, generation, error=error)

    def to_dict(self) -> dict[str, Any]:
        if self.saved is not None:
            outputs = [item.to_dict() for item in self.saved]
        else:
            outputs = [
                {"url": url, "path": None, "bytes": None, "sha256": None, "delivered_sha256": None, "provenance": None,
                 "provenance_reason": None}
                for url in self.output_urls
            ]
        error = self.job_error
        if self.error is not None:
            error = self.error.reason if isinstance(self.error, JobFailedError) else str(self.error)
        return {
            "schema_version": JOB_SCHEMA_VERSION,
            "request_id": self.request_id or None,  # None: the submit itself failed, so no job exists
            "model": self.input.model if self.input else MODEL_ID,
            "status": self.status,
            "queue_position": self.queue_position,
            "input": self.input.to_payload() if self.input else None,
            "outputs": outputs,
            "error": error,
            "submitted_at": self.submitted_at,
            "finished_at": self.finished_at,
            "cost": self.cost,
            "elapsed_seconds": None if self.elapsed_seconds is None else round(self.elapsed_seconds, 3),
            "exit_code": int(self.error.exit_code) if self.error is not None else 0,
        }
