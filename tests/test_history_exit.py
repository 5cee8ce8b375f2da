"""A process that ends when its command is done (the console script) leaves its last history's
connections to the exit: no WAL checkpoint with two fsyncs between the last file and the exit. The
commits are in the WAL, which the next open reads; a process that runs on keeps at most one
history's connections open beyond those in use."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from nanobanana_cli import invocation
from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.stores.history import History


@pytest.fixture
def ends_when_done():
    invocation.exits_when_done()
    yield
    invocation.exits_when_done(False)


def open_descriptors(path: Path) -> int:
    """How many of this process's file descriptors point at the database or its WAL."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed between the listing and the read
        count += target.startswith(str(path))
    return count


def record(path: Path, request_id: str) -> None:
    history = History(path)
    history.record_submission(request_id, GenerationInput("a red fox"), "http://127.0.0.1:9")
    history.close()


def test_an_ordinary_process_checkpoints_and_removes_the_wal_on_close(tmp_path):
    path = tmp_path / "history.sqlite3"
    record(path, "job-1")
    assert not Path(f"{path}-wal").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_a_process_that_ends_when_done_leaves_the_wal_to_the_next_open(tmp_path, ends_when_done):
    path = tmp_path / "history.sqlite3"
    record(path, "job-1")
    assert Path(f"{path}-wal").stat().st_size > 0  # not checkpointed: the job is in the WAL
    with closing(sqlite3.connect(path)) as other:  # another process's view: the WAL is read
        assert other.execute("SELECT request_id FROM jobs").fetchall() == [("job-1",)]
    held = open_descriptors(path)
    assert held > 0
    for number in range(2, 12):  # a batch or the MCP server: histories opened and closed again and again
        record(path, f"job-{number}")
        assert open_descriptors(path) <= held  # the connections left before are closed when others are left
    with History(path) as history:
        assert {entry.request_id for entry in history.entries(limit=None)} == {f"job-{n}" for n in range(1, 12)}
