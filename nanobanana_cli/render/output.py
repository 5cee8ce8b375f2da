"""The one object that decides what goes to stdout and stderr in human, JSON and quiet modes.

stdout carries only the result (paths, ids, JSON); everything else goes to stderr. Progress
is drawn only in human mode on a terminal; elsewhere it becomes one plain line per event.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

    from ..api.models import GenerationInput, Submission
    from ..api.retry import RetryNotice
    from ..engine.lifecycle import JobOutcome
    from .progress import BatchProgress, JobProgress


class Mode(str, Enum):
    HUMAN = "human"
    JSON = "json"
    QUIET = "quiet"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Output:
    def __init__(self, mode: Mode = Mode.HUMAN, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.mode = mode
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._console: Console | None = None
        self._lock = threading.Lock()

    @property
    def human(self) -> bool:
        return self.mode is Mode.HUMAN

    @property
    def live(self) -> bool:
        """Animated progress: human mode with a terminal on stderr (and not a dumb one)."""
        return self.human and _is_tty(self.stderr) and os.environ.get("TERM") != "dumb"

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stderr, highlight=False, soft_wrap=True)
        return self._console

    # -- stdout: results only -------------------------------------------------------------------

    def result_line(self, text: str) -> None:
        with self._lock:
            self.stdout.write(text + "\n")
            self.stdout.flush()

    def result_json(self, data: Any, *, compact: bool = False) -> None:
        text = json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=2)
        self.result_line(text)

    # -- stderr: everything else ----------------------------------------------------------------

    def _stderr_line(self, text: str, style: str | None = None) -> None:
        with self._lock:
            if self._console is not None or self.live:
                self.console.print(text, style=style, markup=False)
            else:
                self.stderr.write(text + "\n")
                self.stderr.flush()

    def info(self, text: str) -> None:
        """Narration for people: shown in human mode only."""
        if self.human:
            self._stderr_line(text)

    def note(self, text: str) -> None:
        """Facts a script may need later (such as a job id), kept out of stdout: silent only in quiet mode."""
        if self.mode is not Mode.QUIET:
            self._stderr_line(text)

    def warn(self, text: str) -> None:
        self._stderr_line(f"warning: {text}", "yellow")

    def error(self, text: str, hint: str | None = None) -> None:
        self._stderr_line(f"error: {text}" + (f"; {hint}" if hint else ""), "red")

    def retry_notice(self, notice: RetryNotice) -> None:
        if self.human:
            self._stderr_line(
                f"{notice.what}: {notice.reason}; retrying in {notice.delay:.1f}s "
                f"(attempt {notice.attempt} of {notice.attempts})",
                "yellow",
            )

    def progress(self) -> JobProgress:
        from .progress import JobProgress

        return JobProgress(self)

    def batch_progress(self, total: int) -> BatchProgress:
        from .progress import BatchProgress

        return BatchProgress(self, total)

    # -- documents: the one place that decides how a result looks in each mode -----------------

    def emit(
        self,
        document: Any,
        human: Iterable[str],
        *,
        quiet: Iterable[str] | None = None,
        compact: bool = False,
    ) -> None:
        """Print a result: `document` as JSON, else its human lines (or, in quiet mode, `quiet`'s)."""
        if self.mode is Mode.JSON:
            self.result_json(document, compact=compact)
            return
        for line in (quiet if self.mode is Mode.QUIET and quiet is not None else human):
            self.result_line(line)

    def job(self, outcome: JobOutcome, *, compact: bool = False) -> None:
        """One job: its saved paths (or URLs) one per line, or its JSON document."""
        if self.mode is Mode.JSON:
            self.result_json(outcome.to_dict(), compact=compact)
            return
        if outcome.error is not None:
            return  # the error itself is reported on stderr
        if outcome.saved is None:
            for url in outcome.output_urls:
                self.result_line(url)
            return
        for item in outcome.saved:
            self.result_line(item.path)
        total = sum(item.bytes for item in outcome.saved)
        self.info(
            f"{outcome.request_id[:8]}: saved {len(outcome.saved)} image(s), {total / 1e6:.1f} MB, "
            f"in {outcome.elapsed_seconds:.1f}s"
        )

    def submitted(self, submission: Submission, generation: GenerationInput) -> None:
        """A job submitted without waiting: its id (or document), and how to follow it."""
        document = {**submission.to_dict(), "status": "in_queue", "input": generation.to_payload()}
        self.emit(document, [submission.request_id])
        self.info(f"follow it with: nanobanana watch {submission.request_id}")

    def sandbox_notice(self, base_url: str) -> None:
        self.info(f"sandbox: serving a local RunComfy API at {base_url} (no account, no credits)")

    def dry_run(self, requests: list[tuple[int | None, dict[str, Any]]], *, curl: bool, token_reference: str) -> None:
        """Each submit exactly as it would be sent (token redacted); nothing was contacted."""
        from ..api.client import curl_command

        for position, (line, request) in enumerate(requests):
            if self.mode is Mode.JSON:
                self.result_json({**request, "line": line} if line is not None else request, compact=len(requests) > 1)
                continue
            lines = [""] if position else []
            lines += [f"# line {line}"] if line is not None else []
            if curl:
                lines.append(curl_command(request, token_reference))
            else:
                lines.append(f"{request['method']} {request['url']}")
                lines += [f"{name}: {value}" for name, value in request["headers"].items()]
                lines += ["", json.dumps(request["body"], indent=2)]
            for text in lines:
                self.result_line(text)
        self.info(f"dry run: {len(requests)} request(s) shown, nothing sent")
