"""What a person sees in a real terminal: the CLI runs in a pseudo-terminal, its output is fed to a
terminal emulator (pyte), and the tests read the screen as it is, during the run and after it.

Results must stay on screen, in order, above the live display, and the display must leave nothing behind.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import HELD, WAIT_LIMIT, finish_all

pyte = pytest.importorskip("pyte")

COLUMNS, LINES = 200, 50
PROGRESS_WORDS = ("in queue", "in progress", "position", "completed", "done", "━")


class Terminal:
    """A program in a pseudo-terminal (stdin, stdout and stderr all on it), shown on an emulated screen."""

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path | str | None = None,
                 columns: int = COLUMNS, lines: int = LINES) -> None:
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.ByteStream(self.screen)
        self._lock = threading.Lock()
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))

        def own_terminal() -> None:  # a session of its own, with the pty as its controlling terminal
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(lines)}
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                                        preexec_fn=own_terminal, close_fds=True)
        os.close(slave)
        self._master = master
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # the program ended and the pty closed
                return
            if not data:
                return
            with self._lock:
                self._stream.feed(data)

    def send(self, text: str) -> None:
        os.write(self._master, text.encode())

    def lines(self) -> list[str]:
        with self._lock:
            return [line.rstrip() for line in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = WAIT_LIMIT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if predicate(text):
                return text
            time.sleep(0.05)
        raise AssertionError("the screen never matched; it shows:\n" + self.text())

    def wait_exit(self, timeout: float = WAIT_LIMIT) -> int:
        code = self.process.wait(timeout)
        self._reader.join(WAIT_LIMIT)  # everything written before the exit is on the screen
        assert not self._reader.is_alive(), "the terminal never closed"
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT_LIMIT)
        self._reader.join(WAIT_LIMIT)
        os.close(self._master)


@pytest.fixture
def terminal():
    opened: list[Terminal] = []

    def open_terminal(*args: str, cwd: Path | None = None) -> Terminal:
        opened.append(Terminal([sys.executable, "-m", "nanobanana_cli", *args], env=os.environ.copy(), cwd=cwd))
        return opened[-1]

    yield open_terminal
    for opened_terminal in opened:
        opened_terminal.close()


def on_screen(terminal: Terminal) -> list[str]:
    return [line for line in terminal.lines() if line.strip()]


def submit(cli, prompt: str) -> str:
    run = cli("generate", prompt, "--no-wait", "-q")
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


def assert_no_residue(lines: list[str]) -> None:
    leftovers = [line for line in lines if any(word in line for word in PROGRESS_WORDS)]
    assert leftovers == [], "the live display left lines behind"


def test_watch_of_three_jobs_leaves_exactly_their_paths_on_screen(cli, start_sandbox, terminal, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    ids = [submit(cli, f"fox number {n}") for n in range(3)]
    out = tmp_path / "out"
    screen = terminal("watch", *ids, "-o", out)
    screen.wait_for(lambda text: "in queue" in text)  # the live display is up
    sandbox.start_job(ids[1])
    screen.wait_for(lambda text: "in progress" in text)
    finish_all(sandbox)
    assert screen.wait_exit() == 0
    lines = on_screen(screen)
    saved = sorted(str(path) for path in out.iterdir())
    # the screen in the message: this failed once (a path missing) in ~8 full runs, never reproduced alone
    assert sorted(line for line in lines if line.startswith("/")) == saved, "\n".join(lines)
    assert len(saved) == 3
    assert all(any(line.startswith(f"{request_id[:8]}: saved 1 image(s)") for line in lines) for request_id in ids)
    assert len(lines) == 6, "three paths and three summaries, nothing else"
    assert_no_residue(lines)


# Rows come and go from worker threads while two others print results: with Rich's own refresh thread
# drawing, lines above the display were erased and old rows left behind in every run of this.
CHURN = """
import sys, threading
from nanobanana_cli.api.models import JobStatus
from nanobanana_cli.render.output import Output
from nanobanana_cli.render.progress import JobProgress

output = Output()
with JobProgress(output) as progress:
    def churn(worker):
        for round_no in range(15):
            ids = [f"{worker:02d}{round_no:04d}{n:02d}aaaaaaaaaaaa" for n in range(8)]
            for request_id in ids:
                progress.job_update(JobStatus(request_id, "in_queue", 1), 0.1)
            for request_id in ids:
                progress.job_update(JobStatus(request_id, "completed", None), 0.2)
    def results(worker):
        for n in range(40):
            output.result_line(f"/path/{worker}/{n}")
    threads = [threading.Thread(target=churn, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=results, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
"""


def test_results_printed_while_rows_come_and_go_all_stay_on_screen_and_the_rows_leave_nothing(tmp_path):
    script = tmp_path / "churn.py"
    script.write_text(CHURN)
    screen = Terminal([sys.executable, str(script)], env=os.environ.copy(), lines=120)
    try:
        assert screen.wait_exit() == 0
        lines = on_screen(screen)
    finally:
        screen.close()
    expected = sorted(f"/path/{worker}/{n}" for worker in range(2) for n in range(40))
    assert sorted(lines) == expected, "\n".join(lines)


def test_generate_leaves_its_paths_and_no_progress_on_screen(start_sandbox, terminal, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    screen = terminal("generate", "a fox on a terminal", "-n", "2", "-o", tmp_path / "out")
    screen.wait_for(lambda text: "in queue" in text)
    (job,) = sandbox.jobs()
    sandbox.start_job(job.request_id)
    screen.wait_for(lambda text: "in progress" in text)
    sandbox.finish_job(job.request_id)
    assert screen.wait_exit() == 0
    lines = on_screen(screen)
    paths = [line for line in lines if line.startswith("/")]
    assert sorted(paths) == sorted(str(path) for path in (tmp_path / "out").iterdir())
    assert lines[0].startswith("submitted ") and lines[-1].endswith("s") and "saved 2 image(s)" in lines[-1]
    assert_no_residue(lines)


ROW = re.compile(r"^\s*(\d+)\s+([0-9a-f]{8})\s+(.+?)\s+(\d+)s\s+(.+)$")


def table_rows(text: str) -> dict[int, tuple[str, int]]:
    """The batch table's rows: line number -> (state, seconds)."""
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            rows[int(match[1])] = (match[3], int(match[4]))
    return rows


def test_batch_table_ticks_shows_queue_positions_and_leaves_only_paths(start_sandbox, terminal, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"a fox in a batch {n}" for n in range(4)) + "\n")
    out = tmp_path / "out"
    screen = terminal("batch", prompts, "-j", "2", "-o", out)
    first = table_rows(screen.wait_for(lambda text: len(table_rows(text)) == 2 and "position" in text))
    assert any("position" in state for state, _ in first.values()), first

    def ticked(text: str) -> bool:  # a row's elapsed seconds went up while its job stayed queued
        later = table_rows(text)
        return any(number in later and later[number][1] > seconds for number, (_, seconds) in first.items())

    screen.wait_for(ticked)  # the column counts whole seconds: at least one passes, however long that takes
    sandbox.queue_seconds = 0.0  # the last two jobs need not wait
    finish_all(sandbox)
    assert screen.wait_exit() == 0
    lines = on_screen(screen)
    saved = sorted(str(path) for path in out.iterdir() if path.suffix == ".png")
    assert sorted(line for line in lines if line.startswith("/")) == saved and len(saved) == 4
    assert not any(line.split()[:2] == ["line", "job"] for line in lines), "a table header was left behind"
    assert lines[-1].startswith("batch: 4 line(s)")


def test_batch_table_counts_a_failed_line_as_done_and_stops_showing_it(start_sandbox, terminal, tmp_path):
    from nanobanana_cli.sandbox.server import FAIL_MARKER

    # The failing line ends at once; the other stays queued until the test interrupts the run.
    start_sandbox(durations=lambda job_input: (0.0, 0.0) if FAIL_MARKER in job_input["prompt"] else (3600.0, 0.0))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(f"a fox that fails {FAIL_MARKER}\na fox that waits\n")
    screen = terminal("batch", prompts, "-j", "2", "-o", tmp_path / "out")
    text = screen.wait_for(lambda text: "1/2 done" in text and "position" in text)
    rows = table_rows(text)
    assert list(rows) == [2], f"only the waiting line is still shown as running: {rows}"
    screen.send("\x03")
    assert screen.wait_exit() == 130
