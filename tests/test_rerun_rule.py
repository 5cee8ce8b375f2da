"""One rerun rule for every `generate` of several jobs (issue 22, "Runs and reruns"): the same command in
the same directory resumes a run that is not done, paying only for what was never submitted, and once
every job is done makes a new run with new images; either is said on stderr. The price shown (the
estimate, the confirmation, a dry run) is what will actually be submitted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from .conftest import HELD, WAIT_LIMIT, job_polls, wait_until


def manifest_records(directory: Path) -> list[dict]:
    path = directory / "nanobanana-batch.jsonl"
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [json.loads(line) for line in lines]


def images_in(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir() if path.suffix == ".png"}


def test_a_finished_run_of_more_than_four_images_run_again_makes_new_images(cli, sandbox, tmp_path):
    out = tmp_path / "out"
    first = cli("generate", "a fox", "-n", "6", "-o", out)
    assert first.exit_code == 0, first.stderr
    before = images_in(out)
    assert len(before) == 6 and sandbox.stats.submits == 2
    again = cli("generate", "a fox", "-n", "6", "-o", out)
    assert again.exit_code == 0, again.stderr
    assert sandbox.stats.submits == 4  # the same command, like `-n 4`: new jobs, new images
    paths = again.stdout.split()
    assert len(paths) == 6 and not set(paths) & set(first.stdout.split())
    after = images_in(out)
    assert len(after) == 12 and all(after[name] == data for name, data in before.items())  # nothing overwritten
    assert f"the earlier run of this command in {out} is done" in again.stderr and "new run of 2 job(s)" in again.stderr
    assert "estimated cost $" in again.stderr and "for 6 image(s)" in again.stderr


def test_a_finished_matrix_with_fixed_names_run_again_makes_new_files_beside_the_old(cli, sandbox, tmp_path):
    args = ("generate", "a {red,blue} fox", "--name", "{var.1}", "-o", tmp_path)
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    before = images_in(tmp_path)
    again = cli(*args)
    assert again.exit_code == 0, again.stderr
    assert sandbox.stats.submits == 4
    after = images_in(tmp_path)
    assert len(after) == 4 and all(after[name] == data for name, data in before.items())
    assert not set(again.stdout.split()) & set(first.stdout.split())
    third = cli(*args)  # the second run is done too: a third one, not a resume of either
    assert third.exit_code == 0 and sandbox.stats.submits == 6 and "new run" in third.stderr


def test_an_interrupted_run_resumes_saying_what_is_done_and_pays_only_for_the_rest(start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nanobanana_cli", "generate", "a fox", "-n", "10", "-j", "1", "-o", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        # job 1 is finished and saved, job 2 is submitted and held, job 3 is never sent: then Ctrl-C
        wait_until(lambda: len(sandbox.jobs()) == 1, "the first job submitted")
        sandbox.finish_job(sandbox.jobs()[0].request_id)
        wait_until(lambda: any(r.get("status") == "succeeded" for r in manifest_records(out)), "the first job saved")
        wait_until(lambda: len(sandbox.jobs()) == 2 and sum(r.get("status") == "submitted" for r in manifest_records(out)) == 2,
                   "the second job submitted")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=WAIT_LIMIT)
    finally:
        process.kill()
    assert process.returncode == 130, err
    held = sandbox.jobs()[1].request_id
    sandbox.finish_job(held)
    sandbox.queue_seconds = 0
    rerun = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=WAIT_LIMIT)
    assert rerun.returncode == 0, rerun.stderr
    assert sandbox.stats.submits == 3  # the finished job skipped, the held one waited on, the third sent
    assert (f"resuming the run of this command in {out}: 1 of 3 job(s) done, 1 still running (waited on, "
            "not paid again), 1 to submit") in rerun.stderr
    assert re.search(r"estimated cost \$\d+\.\d{4} for 2 image\(s\)", rerun.stderr), rerun.stderr  # job 3's 2 images only
    assert len(rerun.stdout.split()) == 10 and len(images_in(out)) == 10


def test_a_rerun_after_failures_retries_only_them_and_asks_only_about_them(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("NANOBANANA_MATRIX_CONFIRM_ABOVE", "2")
    args = ("generate", "a fox, {calm,angry sandbox:fail,shy}", "-o", tmp_path)
    first = cli(*args, "--yes")
    assert first.exit_code == 5 and sandbox.stats.submits == 3
    # one job to submit is within the threshold of 2: no question, no --yes needed
    again = cli(*args)
    assert again.exit_code == 5, again.stderr
    assert sandbox.stats.submits == 4
    assert "resuming the run of this command" in again.stderr and "2 of 3 job(s) done, 1 to submit" in again.stderr
    assert re.search(r"estimated cost \$\d+\.\d{4} for 1 image\(s\)", again.stderr), again.stderr


def test_the_confirmation_counts_and_prices_only_the_jobs_still_to_submit(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("NANOBANANA_MATRIX_CONFIRM_ABOVE", "1")
    args = ("generate", "a fox, {calm,angry sandbox:fail,shy sandbox:fail}", "-o", tmp_path)
    assert cli(*args, "--yes").exit_code == 5 and sandbox.stats.submits == 3
    unanswered = cli(*args, tty_stdin=True)  # the terminal's input ends: no
    assert unanswered.exit_code == 1
    assert re.search(r"Submit 2 jobs \(estimated cost \$\d+\.\d{4} for 2 image\(s\)", unanswered.stderr), unanswered.stderr
    assert sandbox.stats.submits == 3


def test_a_dry_run_of_a_resumed_run_shows_and_prices_only_what_would_be_sent(cli, sandbox, tmp_path):
    args = ("generate", "a fox, {calm,angry sandbox:fail}", "-n", "2", "-o", tmp_path)
    assert cli(*args).exit_code == 5
    dry = cli(*args, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    bodies = [json.loads(line)["body"] for line in dry.stdout.splitlines()]
    assert [body["prompt"] for body in bodies] == ["a fox, angry sandbox:fail"]
    assert re.search(r"estimated cost \$\d+\.\d{4} for 2 image\(s\)", dry.stderr), dry.stderr
    assert sandbox.stats.submits == 2


def test_a_dry_run_of_a_finished_run_shows_the_new_run(cli, sandbox, tmp_path):
    args = ("generate", "a {red,blue} fox", "-o", tmp_path)
    assert cli(*args).exit_code == 0
    dry = cli(*args, "--dry-run", "--json")
    assert dry.exit_code == 0
    assert len(dry.stdout.splitlines()) == 2 and "new run of 2 job(s)" in dry.stderr
    assert re.search(r"estimated cost \$\d+\.\d{4} for 2 image\(s\)", dry.stderr), dry.stderr


# -- a single job: the same rule, through the history -------------------------------------------


def interrupt_while_waiting(sandbox, command: list[str]) -> str:
    """Run `command` until its job is polled, then Ctrl-C it; the job's id."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        wait_until(lambda: len(sandbox.jobs()) == 1 and job_polls(sandbox, sandbox.jobs()[0].request_id) >= 1, "a poll of the job")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=WAIT_LIMIT)
    finally:
        process.kill()
    assert process.returncode == 130, err
    return sandbox.jobs()[0].request_id


def test_an_interrupted_single_job_run_again_is_waited_on_not_paid_again(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    out = tmp_path / "out"
    request_id = interrupt_while_waiting(sandbox, [sys.executable, "-m", "nanobanana_cli", "generate", "a fox", "-n", "2", "-o", str(out)])
    sandbox.finish_job(request_id)
    sandbox.queue_seconds = 0  # were a new job submitted, it would not be held
    again = cli("generate", "a fox", "-n", "2", "-o", out)
    assert again.exit_code == 0, again.stderr
    assert sandbox.stats.submits == 1
    assert f"resuming job {request_id}" in again.stderr and "instead of paying again" in again.stderr
    paths = again.stdout.split()
    assert len(paths) == 2 and all(Path(path).parent == out and request_id[:8] in path for path in paths)
    # now it is done: the same command makes new images, as after any finished run
    third = cli("generate", "a fox", "-n", "2", "-o", out)
    assert third.exit_code == 0 and sandbox.stats.submits == 2 and "resuming" not in third.stderr
    assert not set(third.stdout.split()) & set(paths)


def test_a_single_job_that_timed_out_is_resumed_by_the_same_command(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    first = cli("generate", "a fox", "--timeout", "0.2", "-o", tmp_path)
    assert first.exit_code != 0 and sandbox.stats.submits == 1
    sandbox.finish_job(sandbox.jobs()[0].request_id)
    sandbox.queue_seconds = 0
    again = cli("generate", "a fox", "-o", tmp_path)
    assert again.exit_code == 0, again.stderr
    assert sandbox.stats.submits == 1 and "resuming job" in again.stderr


def test_another_request_or_directory_or_a_no_wait_job_is_not_resumed(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    request_id = interrupt_while_waiting(sandbox, [sys.executable, "-m", "nanobanana_cli", "generate", "a fox", "-o", str(tmp_path / "a")])
    sandbox.finish_job(request_id)
    sandbox.queue_seconds = 0
    for args in (("a fox", "-o", tmp_path / "b"), ("a fox", "-a", "1:1", "-o", tmp_path / "a")):
        run = cli("generate", *args)
        assert run.exit_code == 0 and "resuming" not in run.stderr
    assert sandbox.stats.submits == 3
    submitted = cli("generate", "a wolf", "--no-wait", "-o", tmp_path / "c", "-q")
    assert submitted.exit_code == 0
    waited = cli("generate", "a wolf", "-o", tmp_path / "c")  # the --no-wait job was not interrupted: a new job
    assert waited.exit_code == 0 and "resuming" not in waited.stderr and sandbox.stats.submits == 5


def test_a_run_into_the_current_directory_by_default_names_the_manifest_it_keeps_there(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = cli("generate", "a fox", "-n", "5")
    assert first.exit_code == 0, first.stderr
    assert "records its jobs in nanobanana-batch.jsonl beside its images, in the current directory" in first.stderr
    assert (tmp_path / "nanobanana-batch.jsonl").is_file()
    again = cli("generate", "a fox", "-n", "5")  # said once, when it appears
    assert again.exit_code == 0 and "records its jobs" not in again.stderr
    chosen = cli("generate", "a fox", "-n", "5", "-o", tmp_path / "out")
    assert chosen.exit_code == 0 and "records its jobs" not in chosen.stderr


def test_a_batch_run_again_with_every_line_done_says_it_costs_nothing_new(cli, sandbox, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red fox\na blue fox\n")
    assert cli("batch", prompts, "-o", tmp_path / "out").exit_code == 0
    again = cli("batch", prompts, "-o", tmp_path / "out")
    assert again.exit_code == 0 and sandbox.stats.submits == 2
    assert "nothing left to submit: no new cost" in again.stderr and "estimated cost" not in again.stderr


def test_a_resumed_run_over_two_models_prices_only_the_jobs_still_to_submit(cli, start_sandbox, tmp_path):
    from nanobanana_cli.sandbox.models import load_models

    from .test_model_compare import priced_models

    schema = priced_models(tmp_path / "prices.json", **{"google__nano_banana__pro__text_to_image": "0.15"})
    sandbox = start_sandbox(models=load_models(schema))
    args = ("generate", "a {calm,angry sandbox:fail} fox", "--model", "nano-banana,nano-banana-pro", "-o", tmp_path / "out")
    first = cli(*args)
    assert first.exit_code == 5 and sandbox.stats.submits == 4
    assert "estimated cost $0.3780 for 4 image(s)" in first.stderr
    again = cli(*args, "--max-cost", "0.2")  # the whole run is over it; what is left to pay is not
    assert again.exit_code == 5, again.stderr
    assert ("estimated cost $0.1890 for 2 image(s): 1 × $0.0390 on nano-banana, 1 × $0.1500 on nano-banana-pro, "
            "within --max-cost $0.2000") in again.stderr
    assert sandbox.stats.submits == 6


def test_an_interrupted_job_the_api_no_longer_knows_is_replaced_once_not_forever(cli, sandbox, tmp_path):
    from nanobanana_cli.api.models import GenerationInput
    from nanobanana_cli.engine.intent import JobIntent
    from nanobanana_cli.engine.naming import FileNamer
    from nanobanana_cli.stores.history import History

    expired = "0e0e0e0e-1111-4222-8333-444455556666"  # interrupted long ago: the API has forgotten it
    generation = GenerationInput(prompt="a fox")
    intent = JobIntent(tmp_path.resolve(), FileNamer.for_job(None, generation), "embed")
    with History() as history:
        history.record_submission(expired, generation, sandbox.base_url, intent.to_record())
        history.update(expired, event=("detached", {"reason": "interrupted"}))
    run = cli("generate", "a fox", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert f"resuming job {expired}" in run.stderr and "unknown to the API now" in run.stderr
    assert sandbox.stats.submits == 1 and len(run.stdout.split()) == 1
    again = cli("generate", "a fox", "-o", tmp_path)
    assert again.exit_code == 0 and "resuming" not in again.stderr and sandbox.stats.submits == 2
