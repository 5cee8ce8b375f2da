"""Never pay twice: every submit is recorded before it is sent, and one whose outcome is unknown
is shown as `uncertain` and never sent again without --resubmit-uncertain.

The chaos test kills `nanobanana batch` with SIGKILL at seeded random moments and checks, after
resuming, that no line was ever submitted twice and that every line not left uncertain has its
image on disk.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from nanobanana_cli.engine.batch import MANIFEST_NAME, parse_batch
from nanobanana_cli.sandbox import Faults

from .conftest import SENTINEL_TOKEN
from .test_reliability_fakeapi import PNG, SUBMIT_PATH, Answer, FakeAPI

DEFAULTS = {"aspect_ratio": "16:9", "output_format": "png", "num_images": 1}


def point_at(monkeypatch, api: FakeAPI) -> None:
    monkeypatch.setenv("NANOBANANA_BASE_URL", api.base_url)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)


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


def test_a_5xx_after_the_job_was_created_is_uncertain_and_not_resent(cli, monkeypatch, tmp_path):
    def created_then_502(request, api):
        if request.path == SUBMIT_PATH:
            api._submit(request)  # the job exists and is billed; the gateway loses the answer
            return Answer(502, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})
        return None

    with FakeAPI(override=created_then_502) as api:
        point_at(monkeypatch, api)
        run = cli("generate", "a fox behind a bad gateway", "-o", tmp_path / "out")
    assert run.exit_code == 7 and "may have been created" in run.stderr
    assert sum(api.posts.values()) == 1
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
    sandbox = start_sandbox(queue_seconds=0.5)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a fox after a crash\n")
    out = tmp_path / "out"
    manifest = write_manifest(out, [], cut_tail='{"key": "0123456789abcdef-1", "line": 1, "sta')
    first = cli("batch", prompts, "-o", out, "--timeout", "0.1")
    assert first.exit_code == 6 and sandbox.stats.submits == 1
    assert f"{manifest}:1: record cut short" in first.stderr
    records = [json.loads(line) for line in manifest.read_text().splitlines()]  # every line parses now
    assert [r["status"] for r in records if r.get("request_id")] == ["submitted"]
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
CHAOS_PARALLEL = 2  # trials at once, each with its own prompts and output directory


def _chaos_trial(api: FakeAPI, workdir: Path, trial: int, kill_after: float) -> dict:
    prompts = [f"chaos {trial} fox {n}" for n in range(CHAOS_LINES)]
    source = workdir / f"prompts-{trial}.txt"
    source.write_text("\n".join(prompts) + "\n")
    out = workdir / f"out-{trial}"
    command = [sys.executable, "-m", "nanobanana_cli", "batch", str(source), "-o", str(out), "-j", "3", "--json"]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    time.sleep(kill_after)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    time.sleep(api.submit_delay)  # a POST that was in flight lands (and is counted) server-side
    before = {prompt: api.posts[prompt] for prompt in prompts}
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    after = {prompt: api.posts[prompt] for prompt in prompts}
    return {"prompts": prompts, "before": before, "after": after, "resumed": resumed}


def _check_trial(result: dict) -> tuple[int, bool]:
    """Assert one trial's promises; return how many of its lines ended uncertain, and whether the
    kill left the resume anything to do."""
    resumed = result["resumed"]
    docs = {doc["line"]: doc for doc in map(json.loads, resumed.stdout.splitlines())}
    assert sorted(docs) == list(range(1, CHAOS_LINES + 1)), resumed.stderr
    uncertain = 0
    for number, prompt in enumerate(result["prompts"], start=1):
        doc, before, after = docs[number], result["before"][prompt], result["after"][prompt]
        if doc["status"] == "uncertain":
            uncertain += 1
            assert after == before <= 1, (prompt, before, after)  # never re-sent by the resume
            continue
        assert doc["status"] == "succeeded", (prompt, doc, resumed.stderr)
        assert after == 1, (prompt, before, after)  # exactly one POST for the line, kill or not
        (saved,) = doc["outputs"]
        assert Path(saved["path"]).read_bytes() == PNG
    assert resumed.returncode == (7 if uncertain else 0), resumed.stderr
    return uncertain, not all(doc["skipped"] for doc in docs.values())


def test_sigkill_at_random_moments_never_bills_a_line_twice(monkeypatch, tmp_path):
    rng = random.Random(CHAOS_SEED)
    # A complete run takes about a second here; kills spread over it, starting-up included: one
    # seeded moment in each of CHAOS_TRIALS equal slices, so few trials still cover the whole run.
    slice_ = (1.0 - 0.15) / CHAOS_TRIALS
    kill_times = [0.15 + (trial + rng.random()) * slice_ for trial in range(CHAOS_TRIALS)]
    with FakeAPI(queue_seconds=0.05, run_seconds=0.1, submit_delay=0.1) as api:
        point_at(monkeypatch, api)
        with ThreadPoolExecutor(CHAOS_PARALLEL) as pool:
            results = list(pool.map(lambda args: _chaos_trial(api, tmp_path, *args), enumerate(kill_times)))
    checked = [_check_trial(result) for result in results]
    cut_short = sum(1 for _, unfinished in checked if unfinished)
    assert cut_short >= CHAOS_TRIALS // 4, f"only {cut_short} kills landed before the batch was done"
    print(f"chaos: {cut_short} of {CHAOS_TRIALS} runs cut short, {sum(n for n, _ in checked)} line(s) left uncertain")
