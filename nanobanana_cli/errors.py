"""Exit codes and the typed errors the library raises.

Every failure a user can meet is one of these classes; `cli.main` turns it into one line on
stderr and its exit code, so no other module decides how the process ends.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    AUTH = 3
    NOT_FOUND = 4
    JOB_FAILED = 5
    TIMEOUT = 6
    UNAVAILABLE = 7
    NOT_FINISHED = 8
    SAVE_FAILED = 9
    INTERRUPTED = 130
    TERMINATED = 143


EXIT_CODE_HELP = {
    ExitCode.OK: "success",
    ExitCode.ERROR: "other error (including out of credit)",
    ExitCode.USAGE: "usage error or invalid input",
    ExitCode.AUTH: "missing or rejected API token",
    ExitCode.NOT_FOUND: "unknown or expired request id",
    ExitCode.JOB_FAILED: "job failed or was cancelled",
    ExitCode.TIMEOUT: "wait timed out (the job is still running)",
    ExitCode.UNAVAILABLE: "network or server unavailable",
    ExitCode.NOT_FINISHED: "job not finished yet",
    ExitCode.SAVE_FAILED: "images not saved (disk full or file too large)",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
    ExitCode.TERMINATED: "terminated (SIGTERM)",
}


class StdoutClosed(Exception):
    """The reader of stdout went away (`nanobanana history | head -1`): nothing more can be delivered.

    Not a `NanobananaError`, so no per-job handler mistakes it for a job's failure; `main()` ends quietly.
    """


class NanobananaError(Exception):
    """Base class: `str(err)` is the one-line message, `hint` the command or step that fixes it."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class UsageError(NanobananaError):
    exit_code = ExitCode.USAGE


class InvalidInputError(UsageError):
    """Input the published schema rejects; raised before anything is sent."""


class AuthError(NanobananaError):
    exit_code = ExitCode.AUTH


class NotFoundError(NanobananaError):
    exit_code = ExitCode.NOT_FOUND


class JobFailedError(NanobananaError):
    exit_code = ExitCode.JOB_FAILED

    def __init__(
        self, message: str, *, request_id: str, status: str, reason: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.request_id = request_id
        self.status = status
        self.reason = reason or message  # the job's own error text, as the API gave it


class WaitTimeoutError(NanobananaError):
    exit_code = ExitCode.TIMEOUT

    def __init__(self, message: str, *, request_id: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.request_id = request_id


class UnavailableError(NanobananaError):
    """The network or the server failed in a way a later retry might not."""

    exit_code = ExitCode.UNAVAILABLE


class SubmitUncertainError(UnavailableError):
    """The submit may have reached the server; re-sending it could bill the user twice."""


class NotFinishedError(NanobananaError):
    exit_code = ExitCode.NOT_FINISHED


class InterruptedWaitError(NanobananaError):
    exit_code = ExitCode.INTERRUPTED


class SaveFailedError(NanobananaError):
    """The images exist on the server but could not be written here (disk full, file-size limit)."""

    exit_code = ExitCode.SAVE_FAILED


class AlreadyReported(NanobananaError):
    """The failure was already shown (per job, per line or per check); only its exit code remains."""

    def __init__(self, exit_code: ExitCode) -> None:
        super().__init__("")
        self.exit_code = exit_code


class APIError(NanobananaError):
    """An error answer from the API that no more specific class describes."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.error_code = error_code


class InsufficientCreditError(APIError):
    pass


class BadResponseError(APIError):
    """The server answered something we cannot read (not JSON, wrong shape, not an image).

    Retries come first; if the answers stay unreadable the server is as good as unavailable.
    """

    exit_code = ExitCode.UNAVAILABLE
