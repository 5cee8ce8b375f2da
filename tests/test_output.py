"""The output object: what reaches stdout and stderr, with and without a terminal."""

from __future__ import annotations

import io

from nanobanana_cli.api.models import JobStatus
from nanobanana_cli.render.output import Mode, Output


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_errors_are_coloured_but_stdout_never_is(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    stdout, stderr = FakeTerminal(), FakeTerminal()
    output = Output(stdout=stdout, stderr=stderr)
    output.error("boom", "do this")
    output.result_line("/tmp/a.png")
    assert "\x1b[" in stderr.getvalue()
    assert stdout.getvalue() == "/tmp/a.png\n"


def test_no_color_is_honoured_on_a_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("NO_COLOR", "1")
    stderr = FakeTerminal()
    Output(stdout=io.StringIO(), stderr=stderr).error("boom", "do this")
    assert "\x1b[" not in stderr.getvalue() and "error: boom; do this" in stderr.getvalue()


def test_without_a_terminal_progress_is_one_plain_line_per_change():
    stderr = io.StringIO()
    output = Output(stdout=io.StringIO(), stderr=stderr)
    with output.progress() as progress:
        for state, position in [("in_queue", 2), ("in_queue", 2), ("in_queue", 1), ("in_progress", None)]:
            progress.job_update(JobStatus("abcdef123456", state, position), 1.0)
        progress.download_progress("http://x/1.png", 10, 100)
    assert stderr.getvalue().splitlines() == [
        "abcdef12: in queue (position 2) after 1.0s",
        "abcdef12: in queue (position 1) after 1.0s",
        "abcdef12: in progress after 1.0s",
    ]


def test_json_and_quiet_modes_keep_narration_off_stderr():
    for mode in (Mode.JSON, Mode.QUIET):
        stderr = io.StringIO()
        output = Output(mode, stdout=io.StringIO(), stderr=stderr)
        output.info("narration")
        with output.progress() as progress:
            progress.job_update(JobStatus("abc", "in_queue", 1), 0.5)
        assert stderr.getvalue() == ""
