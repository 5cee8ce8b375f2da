"""`history clear` on a real terminal asks first: `n` keeps every job, `y` forgets them."""

from __future__ import annotations

import os
import sys

import pytest

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.stores.history import History

from .test_terminal import Terminal


def recorded() -> list[str]:
    with History() as history:
        return [entry.request_id for entry in history.entries(limit=None)]


@pytest.fixture
def two_jobs() -> None:
    with History() as history:
        for request_id in ("job-1", "job-2"):
            history.record_submission(request_id, GenerationInput(f"a fox {request_id}"), "https://api.example")


@pytest.mark.parametrize(("answer", "code", "left"), [("n", 1, ["job-2", "job-1"]), ("y", 0, [])])
def test_history_clear_asks_on_a_terminal_and_follows_the_answer(two_jobs, answer, code, left):
    assert sorted(recorded()) == ["job-1", "job-2"]
    terminal = Terminal([sys.executable, "-m", "nanobanana_cli", "history", "clear", "--before", "2100-01-01"], env=os.environ.copy())
    try:
        terminal.wait_for(lambda text: "Forget 2 job(s) submitted before" in text and "[y/N]" in text)
        terminal.send(f"{answer}\r")
        assert terminal.wait_exit() == code
        screen = terminal.text()
    finally:
        terminal.close()
    assert ("nothing was removed" in screen) == (answer == "n")
    assert ("removed 2 job(s)" in screen) == (answer == "y")
    assert sorted(recorded()) == sorted(left)
