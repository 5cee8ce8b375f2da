"""`status`, `result`, `cancel` and `watch` against a sandbox: every state and exit code they can meet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import HELD, WAIT_LIMIT, Lines
from .imaging import image_info, ratio, sha256_of


def submit(cli, *args: str, prompt: str = "a fox") -> str:
    run = cli("generate", prompt, "--no-wait", "-q", *args)
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


def test_status_reports_queue_position(cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    first, second = submit(cli), submit(cli)
    assert cli("status", first).stdout.strip() == "in_queue (position 1)"
    doc = json.loads(cli("status", second, "--json").stdout)
    assert (doc["request_id"], doc["status"], doc["queue_position"], doc["exit_code"]) == (second, "in_queue", 2, 0)
    assert cli("status", second, "-q").stdout == "in_queue\n"


def test_status_of_a_completed_job_tells_success_from_failure(cli, sandbox):
    good, bad = submit(cli), submit(cli, prompt="a fox sandbox:fail")
    assert cli("status", good).stdout.strip() == "completed: succeeded"
    assert json.loads(cli("status", bad, "--json").stdout)["status"] == "failed"


def test_result_of_an_unfinished_job_prints_its_state_and_exits_8(cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    request_id = submit(cli)
    run = cli("result", request_id)
    assert run.exit_code == 8 and "in_queue" in run.stderr and f"nanobanana watch {request_id}" in run.stderr
    run = cli("result", request_id, "--json")
    assert run.exit_code == 8 and json.loads(run.stdout)["status"] == "in_queue"


def test_result_prints_urls_then_downloads_with_the_flag(cli, sandbox, tmp_path):
    request_id = submit(cli, "-n", "2", "-a", "3:2", "-f", "webp")
    urls = cli("result", request_id).stdout.split()
    assert len(urls) == 2 and all(u.startswith(sandbox.asset_base_url) for u in urls)
    run = cli("result", request_id, "--download", "-o", tmp_path / "dl")
    assert run.exit_code == 0, run.stderr
    paths = run.stdout.split()
    assert [Path(p).suffix for p in paths] == [".webp", ".webp"]
    assert all(image_info(p) == ("webp", ratio("3:2")) for p in paths)


def test_result_of_a_failed_job_exits_5(cli, sandbox):
    run = cli("result", submit(cli, prompt="a fox sandbox:fail"), "--json")
    assert run.exit_code == 5
    assert json.loads(run.stdout)["error"] == "generation_failed: the model could not render this prompt"


def test_unknown_request_id_exits_4(cli, sandbox):
    for command in ("status", "result", "cancel", "watch"):
        run = cli(command, "00000000-0000-0000-0000-000000000000")
        assert run.exit_code == 4, (command, run.stderr)
        assert "unknown or expired request id" in run.stderr


def test_malformed_request_id_exits_2_without_a_request(cli, sandbox):
    run = cli("status", "../../v1/models")
    assert run.exit_code == 2 and sandbox.stats.requests == []


def test_cancel_a_queued_job_then_watch_reports_it_cancelled(cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    request_id = submit(cli)
    run = cli("cancel", request_id)
    assert run.exit_code == 0 and run.stdout.strip() == request_id
    assert cli("status", request_id, "-q").stdout.strip() == "cancelled"
    watched = cli("watch", request_id)
    assert watched.exit_code == 5 and "cancelled" in watched.stderr


def test_cancel_a_running_job_is_refused_clearly(cli, start_sandbox):
    start_sandbox(queue_seconds=0, run_seconds=HELD)
    request_id = submit(cli)
    run = cli("cancel", request_id, "--json")
    assert run.exit_code == 1
    assert json.loads(run.stdout)["outcome"] == "not_cancellable"
    assert "cannot be cancelled" in run.stderr and "billed" in run.stderr


def test_watch_downloads_each_job_and_prints_one_json_line_per_job(cli, sandbox, tmp_path):
    ids = [submit(cli, "-n", "2"), submit(cli, "-a", "1:1")]
    run = cli("watch", *ids, "--json", "-o", tmp_path / "w")
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 2
    docs = {doc["request_id"]: doc for doc in map(json.loads, lines)}
    assert set(docs) == set(ids)
    for doc in docs.values():
        assert doc["status"] == "succeeded"
        for item in doc["outputs"]:
            assert sha256_of(item["path"]) == item["sha256"]
    assert len(docs[ids[0]]["outputs"]) == 2
    assert image_info(docs[ids[1]]["outputs"][0]["path"])[1] == ratio("1:1")


def test_watch_with_a_failed_job_still_reports_the_others(cli, sandbox):
    good, bad = submit(cli), submit(cli, prompt="a fox sandbox:fail")
    run = cli("watch", good, bad, "--json")
    assert run.exit_code == 5
    docs = {doc["request_id"]: doc for doc in map(json.loads, run.stdout.splitlines())}
    assert docs[good]["status"] == "succeeded" and docs[bad]["status"] == "failed"
    assert docs[bad]["exit_code"] == 5


def test_watch_waits_through_the_lifecycle_showing_progress_lines(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    request_id = submit(cli)
    short = request_id[:8]
    process = subprocess.Popen([sys.executable, "-m", "nanobanana_cli", "watch", request_id, "-o", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    stderr = Lines(process.stderr)
    stderr.wait_for(f"{short}: in queue")
    sandbox.start_job(request_id)
    stderr.wait_for(f"{short}: in progress")
    sandbox.finish_job(request_id)
    stdout = process.stdout.read()
    assert process.wait(WAIT_LIMIT) == 0, stderr.rest()
    assert Path(stdout.strip()).is_file()


def test_watch_timeout_exits_6(cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    request_id = submit(cli)
    run = cli("watch", request_id, "--timeout", "0.1")
    assert run.exit_code == 6 and request_id in run.stderr
