"""What a newcomer trips over in `generate` (issue 22, "Runs and reruns"): a file named as a prompt,
flags that --no-wait ignores, duplicate matrix values, the command an interrupt names, the price shown
before a run."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HELD, SENTINEL_TOKEN, WAIT_LIMIT, wait_until


def test_a_prompt_that_names_an_existing_file_is_refused_with_the_fix(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts.txt").write_text("a red fox\na blue fox\n")
    run = cli("generate", "prompts.txt")
    assert run.exit_code == 2
    assert "existing file" in run.stderr
    assert "nanobanana batch prompts.txt" in run.stderr and "nanobanana generate - < prompts.txt" in run.stderr
    assert sandbox.stats.submits == 0


def test_literal_sends_a_file_name_as_the_prompt(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts.txt").write_text("a red fox\n")
    run = cli("generate", "prompts.txt", "--literal", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert sandbox.stats.submits == 1


@pytest.mark.parametrize("prompt", ["prompts.txt is a nice name", "missing.txt"])
def test_a_sentence_or_a_name_that_is_no_file_is_a_prompt(cli, sandbox, tmp_path, monkeypatch, prompt):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts.txt").write_text("a red fox\n")
    run = cli("generate", prompt, "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert sandbox.stats.submits == 1


@pytest.mark.parametrize("flag", [["--open"], ["--timeout", "30"], ["--no-download"]])
def test_flags_that_no_wait_ignores_are_refused_by_name(cli, sandbox, flag):
    run = cli("generate", "a red fox", "--no-wait", *flag)
    assert run.exit_code == 2
    assert f"{flag[0]} has no effect with --no-wait" in run.stderr
    assert sandbox.stats.submits == 0


def test_no_wait_keeps_the_output_directory_for_a_later_watch(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=3600)
    run = cli("generate", "a red fox", "--no-wait", "-q", "-o", tmp_path / "later")
    assert run.exit_code == 0, run.stderr
    assert sandbox.stats.submits == 1


@pytest.mark.parametrize("seconds", ["0", "-1"])
def test_a_timeout_of_zero_or_less_is_refused_before_submitting(cli, sandbox, seconds):
    run = cli("generate", "a red fox", f"--timeout={seconds}")
    assert run.exit_code == 2
    assert "--timeout" in run.stderr
    assert sandbox.stats.submits == 0


@pytest.mark.parametrize("args", [["a {red,red} fox"], ["a {style} fox", "--var", "style=ink,ink"]])
def test_a_repeated_matrix_value_is_one_job_and_is_said(cli, sandbox, tmp_path, args):
    run = cli("generate", *args, "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert sandbox.stats.submits == 1
    assert "repeated matrix value" in run.stderr


def test_repeated_values_are_dropped_keeping_the_order(cli, sandbox, tmp_path):
    run = cli("generate", "a {red,blue,red,green} fox", "-o", tmp_path / "out", "-j", "1")
    assert run.exit_code == 0, run.stderr
    assert [job.input["prompt"] for job in sandbox.jobs()] == ["a red fox", "a blue fox", "a green fox"]


def manifest_records(directory: Path) -> list[dict]:
    path = directory / "nanobanana-batch.jsonl"
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [json.loads(line) for line in lines]


def test_ctrl_c_in_a_matrix_names_the_command_to_run_again_without_the_token(start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    out = tmp_path / "my out"
    args = ["generate", "a {red,blue} fox's tail", "-o", str(out), "--token", SENTINEL_TOKEN]
    process = subprocess.Popen([sys.executable, "-m", "nanobanana_cli", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    wait_until(lambda: sum(r.get("status") == "submitted" for r in manifest_records(out)) == 2, "two submitted records")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=WAIT_LIMIT)
    assert process.returncode == 130, err
    expected = shlex.join(["nanobanana", *args[:-1], "***"])
    assert f"run the same command again to resume without paying twice: {expected}" in err
    assert SENTINEL_TOKEN not in err
    assert shlex.split(expected)[1:-1] == args[:-1]  # pasted into a shell, it is the same command
    assert sandbox.stats.submits == 2


def test_a_failed_job_in_a_matrix_names_the_command_to_retry(cli, sandbox, tmp_path):
    run = cli("generate", "a fox, {calm,angry sandbox:fail}", "-o", tmp_path)
    assert run.exit_code == 5
    expected = shlex.join(["nanobanana", "generate", "a fox, {calm,angry sandbox:fail}", "-o", str(tmp_path)])
    assert f"run the same command again (the finished ones are not submitted again): {expected}" in run.stderr


@pytest.mark.parametrize("args", [["a red fox", "-n", "3"], ["a {red,blue} fox", "-n", "3"]])
def test_a_dry_run_shows_the_estimated_price_without_asking_the_network(cli, sandbox, args):
    assert cli("model", "nano-banana").exit_code == 0  # the catalog's price, cached (the bundled snapshot has none)
    asked = len(sandbox.stats.requests)
    run = cli("generate", *args, "--dry-run")
    assert run.exit_code == 0, run.stderr
    images = 3 * (2 if "{" in args[0] else 1)
    assert re.search(rf"estimated cost \$\d+\.\d{{4}} for {images} image\(s\)", run.stderr), run.stderr
    assert len(sandbox.stats.requests) == asked


def test_a_dry_run_of_a_model_without_a_known_price_says_so(cli, sandbox, monkeypatch):
    monkeypatch.setattr("nanobanana_cli.engine.catalog.bundled_entry", lambda model_id: None)
    run = cli("generate", "a red fox", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "price unknown" in run.stderr


def test_the_confirmation_shows_the_estimated_price(cli, sandbox, monkeypatch):
    monkeypatch.setenv("NANOBANANA_MATRIX_CONFIRM_ABOVE", "2")
    assert cli("model", "nano-banana").exit_code == 0  # the catalog's price, cached
    asked = len(sandbox.stats.requests)
    run = cli("generate", "a {red,blue,green} fox", "-n", "2", tty_stdin=True)
    assert run.exit_code == 1
    assert re.search(r"Submit 3 jobs \(estimated cost \$\d+\.\d{4} for 6 image\(s\) at \$\d+\.\d{4} each\)\? \[y/N\]", run.stderr), run.stderr
    assert len(sandbox.stats.requests) == asked
