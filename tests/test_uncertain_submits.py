"""Never pay twice: every submit is recorded before it is sent, and one whose outcome is unknown
is shown as `uncertain` and never sent again without --resubmit-uncertain.

The chaos test kills `nanobanana batch` with SIGKILL at seeded random moments of its run (each
moment an event the test sees: a request arriving, a manifest record, a download starting) and
checks, after resuming, that no line was ever submitted twice and that every line not left
uncertain has its image on disk.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nanobanana_cli.engine.batch_file import parse_batch
from nanobanana_cli.engine.manifest import MANIFEST_NAME
from nanobanana_cli.sandbox import Faults, Sandbox

from .conftest import HELD, SENTINEL_TOKEN, WAIT_LIMIT, finish_all, stop_promptly, wait_until
from .imaging import image_info, sha256_of

DEFAULTS = {"aspect_ratio": "16:9", "output_format": "png", "num_images": 1}


def history_json(cli) -> list[dict]:
    run = cli("history", "--json", "-n", "50")
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def line_docs(run) -> dict[int, dict]:
    return {doc["line"]: doc for doc in map(json.loads, run.stdout.splitlines())}


def key_of(prompt: str) -> str:
    (line,), _ = parse_batch(prompt, DEFAULTS)
    return line.key


def write_manifest(directory: Path, records: list[dict | str], *, cut_tail: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MANIFEST_NAME
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    path.write_text(text + cut_tail)
    return path


# -- generate: an unknown outcome is recorded, not lost -------------------------------------------


def test_a_lost_submit_answer_is_in_the_history_as_uncertain(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(drop_after_submit=1))
    run = cli("generate", "a fox whose answer is lost", "-o", tmp_path / "out")
    assert run.exit_code == 7 and "nanobanana history" in run.stderr
    (entry,) = history_json(cli)
    assert entry["status"] == "uncertain" and entry["request_id"].startswith("local:")
    assert entry["input"]["prompt"] == "a fox whose answer is lost" and "not sent again" in entry["error"]
    assert "uncertain" in cli("history").stdout
    assert sandbox.stats.submits == 1
    assert cli("status").exit_code == 2  # `--last` never picks a submit without an id


def test_a_5xx_after_the_job_was_created_is_uncertain_and_not_resent(cli, start_sandbox, tmp_path):
    # the job exists and is billed; the gateway loses the answer
    sandbox = start_sandbox(faults=Faults(error_after_submit=1))
    run = cli("generate", "a fox behind a bad gateway", "-o", tmp_path / "out")
    assert run.exit_code == 7 and "may have been created" in run.stderr
    assert sandbox.stats.submits == 1 and [r.method for r in sandbox.stats.requests] == ["POST"]
    (entry,) = history_json(cli)
    assert entry["status"] == "uncertain" and "HTTP 502" in entry["error"]


def test_a_submit_refused_outright_leaves_no_trace_and_a_success_leaves_one_row(cli, start_sandbox, tmp_path):
    start_sandbox(faults=Faults(submit_unavailable=50))
    assert cli("generate", "a refused fox", "--retries", "0").exit_code == 7
    assert history_json(cli) == []  # a 503 proves nothing was created: nothing to be unsure about
    start_sandbox()
    request_id = cli("generate", "an accepted fox", "--no-wait", "-q").stdout.strip()
    assert [(e["request_id"], e["status"]) for e in history_json(cli)] == [(request_id, "in_queue")]


def test_a_submit_whose_process_died_is_uncertain_in_the_history(cli, tmp_path):
    import sqlite3

    from nanobanana_cli.api.models import GenerationInput
    from nanobanana_cli.stores.history import History

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    database = tmp_path / "data" / "history.sqlite3"
    with History(database) as history:
        ticket = history.submitting(GenerationInput("a fox killed mid-submit"), "http://127.0.0.1:9")
        history.submitting(GenerationInput("a fox this process is submitting"), "http://127.0.0.1:9")
    with sqlite3.connect(database) as db:
        db.execute("UPDATE jobs SET owner_pid = ? WHERE request_id = ?", (gone.pid, ticket))
    states = {e["input"]["prompt"]: e["status"] for e in history_json(cli)}
    assert states == {"a fox killed mid-submit": "uncertain", "a fox this process is submitting": "submitting"}


# -- batch: uncertain lines are never re-sent without the flag -------------------------------------


def test_a_batch_line_whose_answer_was_lost_is_never_resubmitted_without_the_flag(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(drop_after_submit=1))
    prompts = tmp_path / "p.txt"
    prompts.write_text("fox one\nfox two\n")
    out = tmp_path / "out"
    first = cli("batch", prompts, "-o", out, "-j", "1", "--json")
    assert first.exit_code == 7, first.stderr
    assert {n: d["status"] for n, d in line_docs(first).items()} == {1: "uncertain", 2: "succeeded"}
    assert "1 uncertain" in first.stderr and "--resubmit-uncertain" in first.stderr and "bill twice" in first.stderr
    assert "to retry the failed lines" not in first.stderr  # rerunning alone would not retry this one
    assert sandbox.stats.submits == 2

    again = cli("batch", prompts, "-o", out, "--json")
    assert again.exit_code == 7 and line_docs(again)[1]["status"] == "uncertain"
    assert sandbox.stats.submits == 2

    forced = cli("batch", prompts, "-o", out, "--json", "--resubmit-uncertain")
    assert forced.exit_code == 0, forced.stderr
    assert sandbox.stats.submits == 3
    assert all(Path(o["path"]).is_file() for doc in line_docs(forced).values() for o in doc["outputs"])


def test_batch_help_says_that_resubmitting_may_bill_twice(cli):
    run = cli("batch", "--help")
    assert "--resubmit-uncertain" in run.stdout and "may bill them twice" in " ".join(run.stdout.split())


def test_a_submitting_record_left_by_a_crash_makes_the_line_uncertain(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox()
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox killed mid-submit\n")
    out = tmp_path / "out"
    write_manifest(out, [{"key": key_of("a fox killed mid-submit"), "line": 1, "request_id": None, "status": "submitting"}])
    run = cli("batch", prompts, "-o", out)
    assert run.exit_code == 7 and "1 uncertain" in run.stderr and "line 1:" in run.stderr
    assert sandbox.stats.submits == 0


def test_a_cut_last_manifest_line_is_repaired_before_appending(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox after a crash\n")
    out = tmp_path / "out"
    manifest = write_manifest(out, [], cut_tail='{"key": "0123456789abcdef-1", "line": 1, "sta')
    first = cli("batch", prompts, "-o", out, "--timeout", "0.1")
    assert first.exit_code == 6 and sandbox.stats.submits == 1
    assert f"{manifest}:1: record cut short" in first.stderr
    records = [json.loads(line) for line in manifest.read_text().splitlines()]  # every line parses now
    assert [r["status"] for r in records if r.get("request_id")] == ["submitted"]
    finish_all(sandbox)
    second = cli("batch", prompts, "-o", out, "-q")
    assert second.exit_code == 0, second.stderr
    assert sandbox.stats.submits == 1  # re-attached: the id was not swallowed by the cut line


def test_invalid_manifest_records_are_reported_with_their_line_and_skipped(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox()
    existing = cli("generate", "fox a", "--no-wait", "-q").stdout.strip()
    prompts = tmp_path / "p.txt"
    prompts.write_text("fox a\nfox b\n")
    out = tmp_path / "out"
    manifest = write_manifest(out, [
        {"key": key_of("fox a"), "line": 1, "request_id": existing, "status": "submitted"},
        {"key": key_of("fox a"), "status": "succeeded", "outputs": [1]},
        {"key": key_of("fox b"), "line": 2, "request_id": "../../etc", "status": "submitted"},
        "not json at all",
        "[1, 2]",
    ])
    run = cli("batch", prompts, "-o", out, "--json")
    assert run.exit_code == 7, run.stderr  # fox b may have been billed under a mangled id: uncertain
    for number, what in ((2, "outputs"), (3, "request_id"), (4, "key"), (5, "key")):
        assert f"{manifest}:{number}: " in run.stderr and what in run.stderr
    assert "unexpected" not in run.stderr
    docs = line_docs(run)
    assert docs[1]["request_id"] == existing and docs[1]["status"] == "succeeded"  # re-attached, not re-sent
    assert docs[2]["status"] == "uncertain" and sandbox.stats.submits == 1
    forced = cli("batch", prompts, "-o", out, "--resubmit-uncertain", "-q")
    assert forced.exit_code == 0, forced.stderr  # never failing every rerun
    assert sandbox.stats.submits == 2


# -- chaos: SIGKILL at any moment ------------------------------------------------------------------

CHAOS_SEED = 20260611
CHAOS_TRIALS = 10  # two python processes each: the test's cost
CHAOS_LINES = 6
CHAOS_PARALLEL = 2  # trials at once, each with its own sandbox, prompts and output directory
MOMENTS = ("at start-up", "mid-submit", "while waiting", "after some lines", "mid-download")


def manifest_records(directory: Path) -> list[dict]:
    """The batch manifest's complete records so far (a line being written is not one yet)."""
    path = directory / MANIFEST_NAME
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [json.loads(line) for line in lines]


def _kill_moment(sandbox: Sandbox, out: Path, moment: str, amount: int, victim: subprocess.Popen) -> None:
    """Return at `moment` of the victim's run. Its jobs are held in the queue until the test ends
    some, and every API request is slowed 0.1 s on arrival (a POST in that window is in flight)."""

    def until(condition, what: str) -> None:
        wait_until(lambda: condition() or victim.poll() is not None, what)
        assert victim.poll() is None, f"the batch ended on its own (exit {victim.returncode}) before {what}"

    if moment == "mid-submit":
        until(lambda: sandbox.stats.api_requests_started >= amount, f"{amount} API requests")
    elif moment == "while waiting":
        until(lambda: sum(r.get("status") == "submitted" for r in manifest_records(out)) >= amount, "submitted records")
    elif moment == "after some lines":
        until(lambda: len(sandbox.jobs()) >= amount, f"{amount} jobs")
        for job in sandbox.jobs()[:amount]:
            sandbox.finish_job(job.request_id)
        until(lambda: sum(r.get("status") == "succeeded" for r in manifest_records(out)) >= amount, "finished lines")
    elif moment == "mid-download":
        until(lambda: len(sandbox.jobs()) >= 1, "a job")
        sandbox.finish_job(sandbox.jobs()[0].request_id)
        until(lambda: any(r.listener == "assets" for r in sandbox.stats.requests), "a download")


def _chaos_trial(workdir: Path, trial: int, moment: str, amount: int) -> dict:
    sandbox = Sandbox(token=SENTINEL_TOKEN, queue_seconds=HELD, run_seconds=0, faults=Faults(slow_seconds=0.1),
                      image_long_side=64).start()
    try:
        env = {**os.environ, "NANOBANANA_BASE_URL": sandbox.base_url, "RUNCOMFY_API_TOKEN": SENTINEL_TOKEN}
        prompts = [f"chaos {trial} fox {n}" for n in range(CHAOS_LINES)]
        source = workdir / f"prompts-{trial}.txt"
        source.write_text("\n".join(prompts) + "\n")
        out = workdir / f"out-{trial}"
        command = [sys.executable, "-m", "nanobanana_cli", "batch", str(source), "-o", str(out), "-j", "3", "--json"]
        victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        _kill_moment(sandbox, out, moment, amount, victim)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=WAIT_LIMIT)
        sandbox.queue_seconds = 0  # the resume's own jobs need not wait
        sandbox.inject(Faults())
        finish_all(sandbox)
        resumed = subprocess.run(command, capture_output=True, text=True, timeout=WAIT_LIMIT, env=env, check=False)
        # Counted after the resume: a POST the victim left in flight may land any time until then,
        # and only for a line left `submitting`, which the resume reports uncertain and never sends.
        jobs = {prompt: [job for job in sandbox.jobs() if job.input["prompt"] == prompt] for prompt in prompts}
        return {"prompts": prompts, "jobs": jobs, "resumed": resumed, "moment": moment}
    finally:
        stop_promptly(sandbox)


def _check_trial(result: dict) -> int:
    """Assert one trial's promises; return how many of its lines ended uncertain."""
    resumed = result["resumed"]
    docs = {doc["line"]: doc for doc in map(json.loads, resumed.stdout.splitlines())}
    assert sorted(docs) == list(range(1, CHAOS_LINES + 1)), resumed.stderr
    assert not all(doc["skipped"] for doc in docs.values()), "the kill left the resume nothing to do"
    uncertain = 0
    for number, prompt in enumerate(result["prompts"], start=1):
        doc, jobs = docs[number], result["jobs"][prompt]
        if doc["status"] == "uncertain":
            uncertain += 1
            assert len(jobs) <= 1 and not doc["outputs"], (result["moment"], prompt, doc, jobs)  # never re-sent
            assert not doc["request_id"] or doc["request_id"].startswith("local:"), doc
            continue
        assert doc["status"] == "succeeded", (result["moment"], prompt, doc, resumed.stderr)
        assert [job.request_id for job in jobs] == [doc["request_id"]], (result["moment"], prompt, jobs)  # one POST
        (saved,) = doc["outputs"]
        assert sha256_of(saved["path"]) == saved["sha256"] and image_info(saved["path"])[0] == "png"
    assert resumed.returncode == (7 if uncertain else 0), resumed.stderr
    return uncertain


def test_sigkill_at_random_moments_never_bills_a_line_twice(tmp_path):
    rng = random.Random(CHAOS_SEED)
    # every moment twice, each with a seeded amount: how many requests, records or lines in
    trials = [(moment, rng.randint(1, 3)) for moment in MOMENTS for _ in range(CHAOS_TRIALS // len(MOMENTS))]
    with ThreadPoolExecutor(CHAOS_PARALLEL) as pool:
        results = list(pool.map(lambda args: _chaos_trial(tmp_path, args[0], *args[1]), enumerate(trials)))
    uncertain = [_check_trial(result) for result in results]
    print(f"chaos: {CHAOS_TRIALS} runs cut short, {sum(uncertain)} line(s) left uncertain")
