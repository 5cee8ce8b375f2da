"""The one object that decides what goes to stdout and stderr in human, JSON, template and quiet modes.

stdout carries only the result (paths, ids, JSON, template lines); everything else goes to stderr.
Progress is drawn only in human mode on a terminal; elsewhere it becomes one plain line per event.
While a live display is on the terminal stdout is on, results are printed above it, so they stay on screen.
"""

from __future__ import annotations

import json
import math
import os
import string
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import InterruptedWaitError, NanobananaError, StdoutClosed, UsageError
from ..sanitise import escape

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live

    from ..api.models import Submission
    from ..api.retry import RetryNotice
    from ..engine.outcome import JobOutcome
    from .progress import BatchProgress, JobProgress

# What the output boundary leaves as it is (everything else a terminal acts on is shown escaped):
# a result may be several lines, an event on stderr is one.
RESULT_KEEPS = "\n\t"
EVENT_KEEPS = "\t"
PREVIEW_COLUMNS = 32  # a thumbnail: big enough to recognise, small enough to keep the scrollback readable


# The running command's output while it prints job documents, and whether one per line (see
# `Output.documents_errors`); `main()` prints an error through it (`error_document`).
_documenting: tuple[Output, bool] | None = None


class Mode(str, Enum):
    HUMAN = "human"
    JSON = "json"
    QUIET = "quiet"
    TEMPLATE = "template"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _same_terminal(first: TextIO, second: TextIO) -> bool:
    """Both streams are the same terminal device (stdout and stderr of an interactive shell)."""
    if not (_is_tty(first) and _is_tty(second)):
        return False
    try:
        return os.fstat(first.fileno()).st_rdev == os.fstat(second.fileno()).st_rdev
    except (AttributeError, ValueError, OSError):
        return False


class _Lookup(string.Formatter):
    """str.format over a document: a missing nested item is empty, None is empty, lists and objects are JSON."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        try:
            return super().get_field(field_name, args, kwargs)
        except (KeyError, IndexError, TypeError):
            return None, field_name  # `{outputs[0][path]}` of a job without outputs

    def format_field(self, value: Any, format_spec: str) -> str:
        # A field's newline would split the document's one line in two: every field is escaped whole.
        return escape(self._formatted(value, format_spec))

    def _formatted(self, value: Any, format_spec: str) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return super().format_field(value, format_spec)


class DocumentTemplate:
    """`--template '{request_id} {status}'`: one line per document, over its (top-level, then nested) fields."""

    def __init__(self, text: str, fields: Sequence[str]) -> None:
        self.text = text
        try:
            parts = [(name, conversion) for _, name, _, conversion in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            raise UsageError(f"invalid --template {text!r}: {exc}", hint="braces that are text are written {{ and }}") from None
        nested = "nested ones like {input[prompt]} or {outputs[0][path]}"
        for name, conversion in parts:
            top = name.split("[", 1)[0]
            if "." in name:  # attribute access reaches Python objects, not the document
                raise UsageError(f"--template {text!r}: write {{{name.replace('.', '[', 1)}]}}-style fields", hint=nested)
            if top not in fields:
                raise UsageError(f"unknown field {top or '{}'!r} in --template {text!r}", hint=f"fields: {', '.join(fields)}; {nested}")
            if conversion not in (None, "s", "r", "a"):
                raise UsageError(f"--template {text!r}: unknown conversion !{conversion}", hint="use !s, !r or !a, or none")

    def render(self, document: Mapping[str, Any]) -> str:
        try:
            return _Lookup().vformat(self.text, (), document)
        except (ValueError, TypeError) as exc:  # a format spec that does not fit the value, such as {status:d}
            raise UsageError(f"--template {self.text!r} cannot format this document: {exc}") from None


class Output:
    def __init__(
        self,
        mode: Mode = Mode.HUMAN,
        *,
        template: DocumentTemplate | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.mode = Mode.TEMPLATE if template is not None else mode
        self.template = template
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._console: Console | None = None
        self._live: Live | None = None
        # Held for every write to the terminal and every redraw of a live display (`render.progress`).
        self._lock = threading.RLock()
        self._preview_refused = False  # said once per command, not once per image
        self.documents = 0  # JSON documents printed so far

    def documents_errors(self, *, per_line: bool = False) -> Output:
        """A job command's promise: with --json, an error that ends it before it printed a document
        (a rejected token, an unreachable API, an unknown id, a usage error found after parsing)
        is printed as a job document too (`error_document`), compact when `per_line`."""
        global _documenting
        _documenting = (self, per_line)
        return self

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

    @property
    def terminal_lock(self) -> threading.RLock:
        """The lock every line this object writes is written under: a live display redraws under it too."""
        return self._lock

    def attach_live(self, live: Live | None) -> None:
        """The live display now on the terminal (None when it ends): results are printed above it."""
        with self._lock:
            self._live = live

    # -- stdout: results only -------------------------------------------------------------------

    def result_line(self, text: str) -> None:
        # A result may span lines (a curl command, indented JSON); nothing else a terminal acts on passes.
        text = escape(text, keep=RESULT_KEEPS)
        with self._lock:
            if self._live is not None and _same_terminal(self.stdout, self.stderr):
                # Written to stdout between two redraws, the line would be overwritten by the next one.
                # Printed through the live console it lands above the display, which is drawn again
                # below it: on a shared terminal that is the same screen, in the same order.
                self.console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)
                return
            try:
                self.stdout.write(text + "\n")
                self.stdout.flush()
            except BrokenPipeError:
                raise StdoutClosed() from None

    def result_json(self, data: Any, *, compact: bool = False) -> None:
        """The one JSON emitter: ASCII-only (controls and bidi characters escaped), and strict JSON."""
        data = self._finite(data, "")
        separators = (",", ":") if compact else None
        self.documents += 1
        self.result_line(json.dumps(data, separators=separators, indent=None if compact else 2, allow_nan=False))

    def _finite(self, value: Any, where: str) -> Any:
        """`value` with every NaN or infinity (a server's cost, a file's provenance) as null, each named in a warning:
        Python would write them as NaN and Infinity, which no JSON parser accepts."""
        if isinstance(value, float) and not math.isfinite(value):
            raw = json.dumps(value)  # NaN, Infinity or -Infinity, as the server or the file spelled it
            self.warn(f"{where or 'the document'} is {raw}, which JSON cannot carry; written as null")
            return None
        if isinstance(value, dict):
            return {key: self._finite(item, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._finite(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return value

    # -- stderr: everything else ----------------------------------------------------------------

    def _stderr_line(self, text: str, style: str | None = None) -> None:
        # One event, one line: a newline in a server's or a file's text cannot forge another.
        text = escape(text, keep=EVENT_KEEPS)
        with self._lock:
            if self._console is not None or self.live:
                self.console.print(text, style=style, markup=False, emoji=False, highlight=False)
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
        """Print a result: `document` as JSON or through the template, else its human (or quiet) lines.

        A list document is a list of rows: the template prints one line for each.
        """
        if self.mode is Mode.JSON:
            self.result_json(document, compact=compact)
            return
        if self.template is not None:
            for row in document if isinstance(document, list) else [document]:
                self.result_line(self.template.render(row))
            return
        for line in (quiet if self.mode is Mode.QUIET and quiet is not None else human):
            self.result_line(line)

    def job(self, outcome: JobOutcome, *, compact: bool = False, extra: Mapping[str, Any] | None = None) -> None:
        """One job: its saved paths (or URLs) one per line, or its document (failed jobs too), with `extra` fields."""
        if self.mode in (Mode.JSON, Mode.TEMPLATE):
            self.emit({**outcome.to_dict(), **(extra or {})}, [], compact=compact)
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
        waited = f", in {outcome.elapsed_seconds:.1f}s" if outcome.elapsed_seconds is not None else ""
        self.info(f"{outcome.request_id[:8]}: saved {len(outcome.saved)} image(s), {total / 1e6:.1f} MB{waited}")

    def submitted(self, outcome: JobOutcome, submission: Submission, follow: str, *, compact: bool = False,
                  extra: Mapping[str, Any] | None = None) -> None:
        """A job submitted without waiting: its id (or document, with the URLs to follow it, and `extra`
        fields), and the command that follows it (`follow`)."""
        urls = {key: value for key, value in submission.to_dict().items() if key.endswith("_url")}
        self.emit({**outcome.to_dict(), **(extra or {}), **urls}, [submission.request_id], compact=compact)
        self.info(f"follow it with: {follow}")

    def sandbox_notice(self, base_url: str) -> None:
        self.info(f"sandbox: serving a local RunComfy API at {base_url} (no account, no credits)")

    def dry_run(self, requests: list[tuple[int | None, dict[str, Any]]], *, curl: bool, token_reference: str) -> None:
        """Each submit exactly as it would be sent (token redacted); nothing was contacted."""
        from ..api.described import curl_command

        for position, (line, request) in enumerate(requests):
            if self.mode is Mode.JSON:
                # a run's requests (numbered) are one line each, however many are left to send
                self.result_json({**request, "line": line} if line is not None else request,
                                 compact=len(requests) > 1 or line is not None)
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

    # -- workflows: a run of several jobs, previews, the bell, a question ---------------------------

    def run_plan(self, summary: str, prompts: Sequence[str]) -> None:
        """What a generate run will submit, before it does: the summary, and each prompt for people."""
        self.note(summary)
        if len(prompts) > 1:
            for number, prompt in enumerate(prompts, start=1):
                self.info(f"  {number:>3}. {prompt}")

    def confirm(self, question: str) -> bool:
        """Ask on the terminal (the question on stderr, stdout stays for results); no answer is no."""
        with self._lock:
            self.stderr.write(f"{escape(question, keep=EVENT_KEEPS)} [y/N] ")
            self.stderr.flush()
        answer = sys.stdin.readline()
        return answer.strip().lower() in ("y", "yes")

    def preview(self, path: str) -> None:
        """A thumbnail of a saved image on stderr, in the terminal's own image protocol.

        Like the live display, only for a person at a terminal: never in a pipe, a log, --json or -q.
        """
        if not self.live:
            return
        import shutil
        from pathlib import Path

        from .preview import PreviewUnavailable, choose_protocol, render

        columns = min(PREVIEW_COLUMNS, shutil.get_terminal_size().columns - 1)
        try:
            drawing = render(Path(path), choose_protocol(), columns)
        except PreviewUnavailable as exc:
            if not self._preview_refused:
                self._preview_refused = True
                self.warn(f"--preview: {exc}")
            return
        with self._lock:
            self.stderr.write(drawing)
            self.stderr.flush()

    def bell(self) -> None:
        if self.live:
            with self._lock:
                self.stderr.write("\a")
                self.stderr.flush()


def error_document(error: NanobananaError) -> None:
    """The error that ended a job command before it printed any document, as that command's job
    document with --json: status `error` (`uncertain` when a submit's outcome is unknown),
    request_id null, the message and the exit code. An interrupt is no such error: it names its jobs.

    `main()` calls it for every error; it prints only for the command that asked (`documents_errors`)."""
    global _documenting
    documenting, _documenting = _documenting, None
    if documenting is None or isinstance(error, InterruptedWaitError) or not str(error):
        return
    output, per_line = documenting
    if output.mode is not Mode.JSON or output.documents:
        return
    from ..engine.outcome import JobOutcome

    output.result_json(JobOutcome.from_error(error).to_dict(), compact=per_line)


def forget_documenting() -> None:
    """A new command starts (several run in one process: tests, an embedding program)."""
    global _documenting
    _documenting = None
