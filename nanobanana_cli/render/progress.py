"""Live progress on a terminal, one plain line per event elsewhere: for one job, many, or a batch.

Live displays are transient (they leave nothing behind) and registered with the `Output`, which
prints each result above them. They are drawn by `Redrawer`, never by Rich's own refresh thread.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..sanitise import escape

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions
    from rich.live import Live
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from ..api.models import JobStatus
    from ..engine.batch_file import BatchLine
    from .output import Output

# Rows the batch table leaves for its header, caption and the line the cursor sits on.
TABLE_CHROME_LINES = 4


def describe_status(status: JobStatus) -> str:
    text = escape(status.status).replace("_", " ")
    if status.queue_position is not None and status.status == "in_queue":
        text += f" (position {status.queue_position})"
    return text


class Redrawer:
    """Draws a live display only while holding the Output's terminal lock, from a thread of its own.

    Rich's refresh thread takes only the Live's lock, and a line printed during a live display is
    rendered (the display below it included) outside that lock and written later. A redraw in
    between moves the cursor over a display of another height than the screen shows: lines above it
    are erased, or old rows stay behind (a path missing from a watch's screen). So Rich's refresh
    thread stays off, this one redraws, and every redraw, print and change of rows holds the lock.
    """

    def __init__(self, output: Output, live: Live, per_second: float) -> None:
        self.output = output
        self.live = live
        self._interval = 1 / per_second
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redraw", daemon=True)

    def start(self) -> None:
        with self.output.terminal_lock:
            self.live.start(refresh=True)
            self.output.attach_live(self.live)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        with self.output.terminal_lock:  # results printed from here on go straight to stdout
            self.output.attach_live(None)
            self.live.stop()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            with self.output.terminal_lock:
                self.live.refresh()


class JobProgress:
    """Reporter for waiting and downloading: a live display on a terminal, plain lines otherwise."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self._last_state: dict[str, str] = {}
        self._tasks: dict[str, TaskID] = {}
        self._progress: Progress | None = None
        self._redrawer: Redrawer | None = None

    def __enter__(self) -> JobProgress:
        if self.output.live:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                # the description quotes the server (a state, a file name): never read as markup
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                TimeElapsedColumn(),
                console=self.output.console,
                transient=True,
                auto_refresh=False,  # the Redrawer draws it
                # stdout must stay the real stdout: results are written there, above the display.
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._redrawer = Redrawer(self.output, self._progress.live, per_second=10)
            self._redrawer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._redrawer is not None:
            self._redrawer.stop()

    def job_update(self, status: JobStatus, elapsed: float) -> None:
        text = describe_status(status)
        short = escape(status.request_id[:8])
        if self._progress is not None:
            key = f"job:{status.request_id}"
            with self.output.terminal_lock:  # adding a row redraws the display (see Redrawer)
                if status.is_running:
                    if key not in self._tasks:
                        self._tasks[key] = self._progress.add_task(f"{short} {text}", total=None)
                    self._progress.update(self._tasks[key], description=f"{short} {text}")
                elif key in self._tasks:  # finished: its downloads (if any) show from here on
                    self._progress.remove_task(self._tasks.pop(key))
        elif self._last_state.get(status.request_id) != text:
            self._last_state[status.request_id] = text
            self.output.info(f"{short}: {text} after {elapsed:.1f}s")

    def download_progress(self, url: str, received: int, total: int | None) -> None:
        if self._progress is None:
            return
        key = f"file:{url}"
        name = escape(url.rsplit("/", 1)[-1].split("?", 1)[0][:32])
        size = f"{received / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{received / 1e6:.1f} MB"
        with self.output.terminal_lock:
            if key not in self._tasks:
                self._tasks[key] = self._progress.add_task("", total=total)
            self._progress.update(self._tasks[key], description=f"  {name} {size}", completed=received, total=total)
            if total is not None and received >= total:
                self._progress.remove_task(self._tasks.pop(key))

    def warn(self, text: str) -> None:
        self.output.warn(text)  # printed above the live display, which the Output knows of


class BatchProgress:
    """Batch reporter: a live table of lines on a terminal, one plain line per event otherwise.

    The table is drawn anew on every refresh (four times a second), so elapsed times keep moving
    between state changes.
    """

    def __init__(self, output: Output, total: int) -> None:
        self.output = output
        self.total = total
        # a job by its line number and its place among the line's jobs (0: the line's only job)
        self._rows: dict[tuple[int, int], list[str]] = {}  # -> [short id, label, state]
        self._ended: set[tuple[int, int]] = set()  # jobs with an outcome, whatever it was: they no longer run
        self._line_of_job: dict[str, tuple[int, int]] = {}
        self._started: dict[tuple[int, int], float] = {}
        self._redrawer: Redrawer | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> BatchProgress:
        if self.output.live:
            from rich.live import Live

            live = Live(self, console=self.output.console, auto_refresh=False, transient=True,
                        redirect_stdout=False, redirect_stderr=False)
            self._redrawer = Redrawer(self.output, live, per_second=4)
            self._redrawer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._redrawer is not None:
            self._redrawer.stop()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Any:
        yield self._table(options.max_height)

    def _table(self, height: int) -> Table:
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("line", "job", "state", "time", "prompt"):
            table.add_column(column)
        with self._lock:
            rows = {number: list(row) for number, row in self._rows.items()}
            started = dict(self._started)
            ended = set(self._ended)
        done = len(ended)
        active = sorted(number for number in rows if number not in ended)
        shown = active[: max(1, height - TABLE_CHROME_LINES)]  # taller than the screen, it could not be erased
        now = time.monotonic()
        for number in shown:
            short, label, state = rows[number]
            # Text, not str: a cell given as a str is read as Rich markup, and a prompt may say "[red]"
            cells = (_tag(number), short, state, f"{now - started.get(number, now):.0f}s", label[:50])
            table.add_row(*(Text(escape(cell)) for cell in cells))
        more = f", {len(active) - len(shown)} more running" if len(active) > len(shown) else ""
        table.caption = f"{done}/{self.total} done{more}"
        return table

    def _event(self, number: tuple[int, int], text: str) -> None:
        if self._redrawer is None:
            self.output.info(f"line {_tag(number)}: {text}")

    def line_started(self, line: BatchLine, action: str, request_id: str | None) -> None:
        row = _row_of(line)
        with self._lock:
            self._rows[row] = [(request_id or "")[:8], line.label, action]
            self._started[row] = time.monotonic()
            if request_id:
                self._line_of_job[request_id] = row
        self._event(row, f"{action} {request_id}")

    def job_update(self, status: JobStatus, elapsed: float) -> None:
        with self._lock:
            number = self._line_of_job.get(status.request_id)
            if number is not None:
                self._rows[number][2] = describe_status(status)  # with the queue position while queued

    def download_progress(self, url: str, received: int, total: int | None) -> None:
        pass  # the table shows jobs; per-file bytes would flood it

    def warn(self, text: str) -> None:
        self.output.warn(text)

    def line_finished(self, line: BatchLine, outcome: Any, skipped: bool) -> None:
        state = "skipped" if skipped else outcome.status
        row = _row_of(line)
        with self._lock:
            self._rows[row] = [outcome.request_id[:8], line.label, state]
            self._ended.add(row)
        if outcome.error is not None:
            self.output.error(f"line {_tag(row)}: {outcome.error}")
        elif skipped:
            self._event(row, f"already done ({outcome.request_id}), skipped")
        else:
            waited = f" in {outcome.elapsed_seconds:.1f}s" if outcome.elapsed_seconds is not None else ""
            self._event(row, f"{state}, {len(outcome.saved or [])} file(s){waited}")


def _row_of(line: BatchLine) -> tuple[int, int]:
    return (line.number, line.job)


def _tag(row: tuple[int, int]) -> str:
    """`3`, or `3.2` for the second job of line 3 (a matrix, or more than four images)."""
    return f"{row[0]}.{row[1]}" if row[1] else str(row[0])
