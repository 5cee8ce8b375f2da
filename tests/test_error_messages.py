"""Errors that say what happened: a job cancelled twice, a failed job's reason, a file that is not an
image, a broken history database, a refused connection."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from nanobanana_cli.api.client import _transport_reason


def submit(cli, prompt: str = "a fox") -> str:
    run = cli("generate", prompt, "--no-wait", "-q")
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


def test_cancelling_a_cancelled_job_says_so_and_succeeds(cli, start_sandbox):
    start_sandbox(queue_seconds=30)
    request_id = submit(cli)
    assert cli("cancel", request_id).exit_code == 0
    again = cli("cancel", request_id)
    assert again.exit_code == 0, again.stderr
    assert "already cancelled" in again.stderr and "billed" not in again.stderr
    document = json.loads(cli("cancel", request_id, "--json").stdout)
    assert (document["status"], document["exit_code"]) == ("cancelled", 0)


def test_cancelling_a_running_job_says_it_is_running(cli, start_sandbox):
    start_sandbox(run_seconds=30)
    request_id = submit(cli)
    run = cli("cancel", request_id)
    assert run.exit_code == 1 and "already running" in run.stderr and "billed" in run.stderr


def test_status_of_a_failed_job_gives_the_reason_escaped(cli, sandbox):
    request_id = submit(cli, "a fox sandbox:fail")
    run = cli("status", request_id)
    assert run.stdout.strip() == "completed: failed: generation_failed: the model could not render this prompt"


def test_inspecting_a_file_that_is_not_an_image_fails(cli, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    run = cli("inspect", text)
    assert run.exit_code == 2
    assert "is not an image" in run.stderr


def test_inspecting_an_image_and_a_non_image_exits_1(cli, sandbox, tmp_path):
    image = cli("generate", "a fox", "-o", tmp_path / "out", "-q").stdout.strip()
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    run = cli("inspect", image, text, "--json")
    assert run.exit_code == 1 and "notes.txt is not an image" in run.stderr
    assert [json.loads(line)["format"] for line in run.stdout.splitlines()] == ["png", None]


def test_a_corrupt_history_database_is_an_error_for_the_history_commands(cli, tmp_path):
    database = tmp_path / "data" / "history.sqlite3"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"this is not a database" * 100)
    for command in (["history"], ["history", "stats"], ["history", "rm", "3f2a9c1e-aaaa"],
                    ["history", "clear", "--before", "2020-01-01"]):
        run = cli(*command)
        assert run.exit_code == 1, (command, run.stderr)
        assert "job history cannot be read" in run.stderr and "mv " in run.stderr, command
        assert "no jobs recorded yet" not in run.stderr and "warning" not in run.stderr
    assert database.read_bytes() == b"this is not a database" * 100


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_to_this_machine_says_so_without_retrying(cli, monkeypatch):
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "nbtest-a-token")
    run = cli("status", "3f2a9c1e-aaaa-bbbb", "--base-url", f"http://127.0.0.1:{free_port()}", "--retries", "3")
    assert run.exit_code == 7
    assert "connection refused" in run.stderr and "ConnectionError" not in run.stderr
    assert "retrying" not in run.stderr  # nothing listens: waiting would not change that


def test_transport_failures_are_named_in_words():
    with pytest.raises(requests.RequestException) as refused:
        requests.get(f"http://127.0.0.1:{free_port()}/", timeout=5)
    assert _transport_reason(refused.value) == "connection refused"
    assert _transport_reason(requests.exceptions.ConnectTimeout()) == "connection timed out"
