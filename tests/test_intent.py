"""A job's intent (output directory, file names) is recorded at submit and followed by every later
command: fetching a job again saves into the directory it was submitted for, under the names it was
given, so its files already there are not saved twice."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest


def files_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.suffix == ".png")


def test_fetching_one_job_of_a_ten_image_run_again_makes_no_new_file(cli, sandbox, tmp_path):
    out = tmp_path / "ten"
    made = cli("generate", "a red fox", "-n", "10", "-o", out, "--json")
    assert made.exit_code == 0, made.stderr
    before = files_in(out)
    assert len(before) == 10
    for job in sandbox.jobs():  # each job's own images, numbered within the run: 1-4, 5-8, 9-10
        again = cli("watch", job.request_id, "-o", out, "-q")
        assert again.exit_code == 0, again.stderr
        assert files_in(out) == before, "a job's files were saved again under other names"
        assert sorted(Path(path).name for path in again.stdout.split()) == [
            name for name in before if job.request_id[:8] in name
        ]


def test_a_matrix_job_fetched_again_keeps_its_variable_prefix(cli, sandbox, tmp_path):
    out = tmp_path / "matrix"
    assert cli("generate", "a {red,blue} fox", "-o", out, "-q").exit_code == 0
    before = files_in(out)
    blue = next(job.request_id for job in sandbox.jobs() if "blue" in job.input["prompt"])
    again = cli("result", blue, "--download", "-q")
    assert again.exit_code == 0, again.stderr
    (path,) = again.stdout.split()
    assert Path(path).parent == out.resolve() and Path(path).name.startswith("blue-")
    assert files_in(out) == before


def test_no_wait_with_o_then_watch_saves_into_that_directory(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    submitted = cli("generate", "a crane", "--no-wait", "-o", "nowaitdir")
    assert submitted.exit_code == 0, submitted.stderr
    request_id = submitted.stdout.strip()
    assert f"follow it with: nanobanana watch {request_id} -o nowaitdir" in submitted.stderr
    watched = cli("watch", request_id, "-q")
    assert watched.exit_code == 0, watched.stderr
    (path,) = watched.stdout.split()
    assert Path(path).parent == (tmp_path / "nowaitdir").resolve()
    assert files_in(tmp_path) == []


def test_watch_last_after_a_timeout_saves_where_the_job_was_meant_to(cli, start_sandbox, tmp_path, monkeypatch):
    sandbox = start_sandbox(queue_seconds=3600.0)
    monkeypatch.chdir(tmp_path)
    timed_out = cli("generate", "a slow heron", "-o", "later", "--timeout", "0.5")
    assert timed_out.exit_code == 6
    (job,) = sandbox.jobs()
    sandbox.find_job(job.request_id).queue_seconds = 0.0  # the test lets the queue move now
    resumed = cli("watch", "--last", "-q")
    assert resumed.exit_code == 0, resumed.stderr
    (path,) = resumed.stdout.split()
    assert Path(path).parent == (tmp_path / "later").resolve()


def test_the_disk_full_hint_names_the_directory(cli, sandbox, tmp_path, monkeypatch):
    from nanobanana_cli.engine import downloads

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(downloads, "_place", full)
    run = cli("generate", "a fox on a full disk", "-o", tmp_path / "full")
    assert run.exit_code == 9, run.stderr
    (job,) = sandbox.jobs()
    assert f"nanobanana result {job.request_id} --download -o {tmp_path / 'full'}" in run.stderr


def test_the_intent_is_in_the_history_before_the_job_is_waited_on(cli, start_sandbox, tmp_path):
    start_sandbox(queue_seconds=3600.0)
    run = cli("generate", "a patient owl", "-o", tmp_path / "owls", "--name", "owl-{i}", "--no-wait", "-q")
    assert run.exit_code == 0, run.stderr
    (row,) = json.loads(cli("history", "--json").stdout)
    assert row["intent"]["output_dir"] == str((tmp_path / "owls").resolve())
    assert row["intent"]["names"]["template"] == "owl-{i}"


@pytest.mark.parametrize("damage", [{"output_dir": "relative/dir"}, {"names": {"template": "../{i}"}}, "not an object"])
def test_a_damaged_intent_is_ignored_and_the_job_is_saved_as_this_command_says(cli, sandbox, tmp_path, monkeypatch, damage):
    import sqlite3

    from nanobanana_cli.stores.history import DB_NAME
    from nanobanana_cli.stores.paths import data_dir

    monkeypatch.chdir(tmp_path)
    request_id = cli("generate", "a fox", "--no-wait", "-o", "meant", "-q").stdout.strip()
    with sqlite3.connect(data_dir() / DB_NAME) as db:
        (intent,) = db.execute("SELECT intent FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
        record = {**json.loads(intent), **damage} if isinstance(damage, dict) else damage
        db.execute("UPDATE jobs SET intent = ? WHERE request_id = ?", (json.dumps(record), request_id))
    run = cli("watch", request_id, "-q")
    assert run.exit_code == 0, run.stderr
    (path,) = run.stdout.split()
    assert Path(path).parent == tmp_path.resolve() and not Path(path).name.startswith(".")
