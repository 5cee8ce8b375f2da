"""The one vocabulary of job states, for the API models, the history, batch manifests, the progress
display and the job document.

Members are strings (`JobState.SUCCEEDED == "succeeded"`), so records written by earlier versions,
JSON documents and SQL rows compare equal to them without conversion.
"""

from __future__ import annotations

from enum import Enum


class JobState(str, Enum):
    # Before and around the submit, known only to this machine.
    SUBMITTING = "submitting"  # the POST is (or was) in flight and no answer has been recorded
    SUBMITTED = "submitted"  # a batch line whose job exists; its state on the server is not recorded yet
    UNCERTAIN = "uncertain"  # the POST may have created a job whose id we never learned
    NOT_SENT = "not_sent"  # the submit was refused, or never left this machine: nothing was billed
    # What the API says of a job.
    IN_QUEUE = "in_queue"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"  # /status's word for "ended": success or failure is only on /result
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # How a command's wait ended without the job ending.
    TIMEOUT = "timeout"
    ERROR = "error"

    # A mixin enum formats as `JobState.SUCCEEDED` on some Python versions; the value is what every
    # table, message and file expects.
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def finished(self) -> bool:
        """The job has ended on the server and will not change again."""
        return self in _FINISHED

    @property
    def succeeded(self) -> bool:
        return self is JobState.SUCCEEDED

    @property
    def running(self) -> bool:
        """The server still has the job: queued or running."""
        return self in (JobState.IN_QUEUE, JobState.IN_PROGRESS)


_FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})
FINISHED_STATES: frozenset[str] = frozenset(state.value for state in _FINISHED)
# Words other deployments and older API versions use for a job the server still has.
RUNNING_WORDS: frozenset[str] = frozenset(
    {"in_queue", "in_progress", "pending", "starting", "processing", "queued", "running"}
)
# The states the history records, in the order a job passes through them (`history --status`).
RECORDED_STATES: tuple[str, ...] = tuple(
    state.value for state in (
        JobState.SUBMITTING, JobState.UNCERTAIN, JobState.IN_QUEUE, JobState.IN_PROGRESS,
        JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED,
    )
)


def is_finished(status: str | None) -> bool:
    """Whether a recorded or reported state, as a plain string, is one a job never leaves."""
    return status in FINISHED_STATES
