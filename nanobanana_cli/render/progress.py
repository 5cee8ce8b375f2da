"""Live progress on a terminal, one plain line per event elsewhere: for one job, many, or a batch."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ..api.models import JobStatus
    from .output import Output


def describe_status(status: JobStatus) -> str:
    text = status.status.replace("_", " ")
    if status.queue_position is not None and status.status == "in_queue":
        text += f" (position {status.queue_position})"
    return text


class JobProgress:
    """Reporter for waiting and downloading: a live display on a terminal, plain lines otherwise."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self._last_state: dict[str, str] = {}
        self._tasks: dict[str, TaskID] = {}
        self._progress: Progress | None = None

    def __enter__(self) -> JobProgress:
        if self.output.live:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=self.output.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def job_update(self, status: JobStatus, elapsed: float) -> None:
        text = describe_status(status)
        short = status.request_id[:8]
        if self._progress is not None:
            key = f"job:{status.request_id}"
            if key not in self._tasks:
                self._tasks[key] = self._progress.add_task(f"{short} {text}", total=None)
            self._progress.update(self._tasks[key], description=f"{short} {text}")
        elif self._last_state.get(status.request_id) != text:
            self._last_state[status.request_id] = text
            self.output.info(f"{short}: {text} after {elapsed:.1f}s")

    def download_progress(self, url: str, received: int, total: int | None) -> None:
        if self._progress is None:
            return
        key = f"file:{url}"
        name = url.rsplit("/", 1)[-1].split("?", 1)[0][:32]
        size = f"{received / 1e6:.1f}/{total / 1e6:.1f} MB" if total else f"{received / 1e6:.1f} MB"
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task("", total=total)
        self._progress.update(self._tasks[key], description=f"  {name} {size}", completed=received, total=total)


class BatchProgress:
    """Batch reporter: a live table of lines on a terminal, one plain line per event otherwise."""

    def __init__(self, output: Output, total: int) -> None:
        self.output = output
        self.total = total
        self._rows: dict[int, list[str]] = {}
        self._line_of_job: dict[str, int] = {}
        self._started: dict[int, float] = {}
        self._live: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> BatchProgress:
        if self.output.live:
            from rich.live import Live

            self._live = Live(self._table(), console=self.output.console, refresh_per_second=4, transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=True, header_style="bold")
        for column in ("line", "job", "state", "time", "prompt"):
            table.add_column(column)
        done = sum(1 for row in self._rows.values() if row[2] in ("succeeded", "skipped"))
        table.caption = f"{done}/{self.total} done"
        active = [n for n, row in self._rows.items() if row[2] not in ("succeeded", "skipped")]
        for number in sorted(active)[:20]:
            row = self._rows[number]
            elapsed = time.monotonic() - self._started.get(number, time.monotonic())
            table.add_row(str(number), row[0], row[2], f"{elapsed:.0f}s", row[1][:50])
        return table

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table())

    def _event(self, number: int, text: str) -> None:
        if self._live is None:
            self.output.info(f"line {number}: {text}")

    def line_started(self, line: Any, action: str, request_id: str | None) -> None:
        with self._lock:
            self._rows[line.number] = [(request_id or "")[:8], line.label, action]
            self._started[line.number] = time.monotonic()
            if request_id:
                self._line_of_job[request_id] = line.number
            self._refresh()
        self._event(line.number, f"{action} {request_id}")

    def job_update(self, status: JobStatus, elapsed: float) -> None:
        with self._lock:
            number = self._line_of_job.get(status.request_id)
            if number is None or self._rows[number][2] == status.status:
                return
            self._rows[number][2] = status.status
            self._refresh()

    def download_progress(self, url: str, received: int, total: int | None) -> None:
        pass  # the table shows jobs; per-file bytes would flood it

    def line_finished(self, line: Any, outcome: Any, skipped: bool) -> None:
        state = "skipped" if skipped else outcome.status
        with self._lock:
            self._rows[line.number] = [outcome.request_id[:8], line.label, state]
            self._refresh()
        if outcome.error is not None:
            self.output.error(f"line {line.number}: {outcome.error}")
        elif skipped:
            self._event(line.number, f"already done ({outcome.request_id}), skipped")
        else:
            self._event(line.number, f"{state}, {len(outcome.saved or [])} file(s) in {outcome.elapsed_seconds:.1f}s")
