"""Job history, `--last`, batch runs (bounded, resumable, never double-billed) and the gallery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HELD, WAIT_LIMIT, beside, finish_all, wait_until
from .imaging import image_info, ratio, sha256_of


def history_json(cli, *args: str) -> list[dict]:
    run = cli("history", "--json", *args)
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


# -- history ------------------------------------------------------------------------------------


def test_a_job_is_recorded_before_the_wait(cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    run = cli("generate", "a fox that takes forever", "--timeout", "0.1")
    assert run.exit_code == 6
    (entry,) = history_json(cli)
    assert entry["request_id"] in run.stderr and entry["status"] == "in_queue"
    assert entry["input"]["prompt"] == "a fox that takes forever"


def test_history_records_outcome_urls_and_paths_newest_first(cli, sandbox):
    first = json.loads(cli("generate", "first fox", "--json").stdout)
    cli("generate", "second fox sandbox:fail")
    entries = history_json(cli)
    assert [e["input"]["prompt"] for e in entries] == ["second fox sandbox:fail", "first fox"]
    assert entries[0]["status"] == "failed"
    assert entries[1]["status"] == "succeeded"
    assert entries[1]["paths"] == [o["path"] for o in first["outputs"]]
    assert entries[1]["output_urls"] == [o["url"] for o in first["outputs"]]
    assert entries[1]["base_url"] == sandbox.base_url


def test_history_filters(cli, sandbox):
    for prompt in ("red fox", "blue whale", "100% green_frog", "red panda sandbox:fail"):
        cli("generate", prompt, "-q")
    assert [e["input"]["prompt"] for e in history_json(cli, "--search", "red")] == ["red panda sandbox:fail", "red fox"]
    assert [e["input"]["prompt"] for e in history_json(cli, "--search", "0% g")] == ["100% green_frog"]
    assert history_json(cli, "--search", "_") and history_json(cli, "--search", "%_x") == []
    assert [e["status"] for e in history_json(cli, "--status", "failed")] == ["failed"]
    assert len(history_json(cli, "-n", "2")) == 2
    human = cli("history", "-n", "1").stdout
    assert "red panda" in human and "failed" in human and "1× 16:9 png" in human


def test_commands_default_to_the_latest_job_on_this_api(cli, start_sandbox, tmp_path):
    start_sandbox(queue_seconds=HELD)
    older = cli("generate", "older", "--no-wait", "-q").stdout.strip()
    newer = cli("generate", "newer", "--no-wait", "-q").stdout.strip()
    assert json.loads(cli("status", "--json").stdout)["request_id"] == newer
    assert json.loads(cli("status", "--last", "--json").stdout)["queue_position"] == 2
    assert cli("cancel").stdout.strip() == newer
    assert cli("status", older, "-q").stdout.strip() == "in_queue"
    assert cli("status", older, "--last").exit_code == 2  # one or the other


def test_no_history_and_no_id_is_a_usage_error(cli, sandbox):
    run = cli("status")
    assert run.exit_code == 2 and "pass a request id" in run.stderr


def test_watch_uses_the_recorded_prompt_for_file_names(cli, sandbox, tmp_path):
    request_id = cli("generate", "a recorded fox", "-a", "5:4", "--no-wait", "-q").stdout.strip()
    run = cli("watch", "-q", "-o", tmp_path)
    assert Path(run.stdout.strip()).name == f"a-recorded-fox-{request_id[:8]}-1.png"
    assert history_json(cli)[0]["paths"] == [run.stdout.strip()]


def test_a_corrupt_history_database_degrades_to_a_warning(cli, sandbox, tmp_path):
    database = tmp_path / "data" / "history.sqlite3"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"this is not a database" * 100)
    run = cli("generate", "a fox", "-o", tmp_path / "out")
    assert run.exit_code == 0 and Path(run.stdout.strip()).is_file()
    assert run.stderr.count("warning: job history unavailable") == 1


def test_parallel_processes_share_the_history(start_sandbox):
    sandbox = start_sandbox(run_seconds=0.3)
    processes = [
        subprocess.Popen([sys.executable, "-m", "nanobanana_cli", "generate", f"fox {n}", "-q", "-o", "out"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        for n in range(6)
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "warning" not in err
    listed = subprocess.run([sys.executable, "-m", "nanobanana_cli", "history", "--json", "-n", "50"],
                            capture_output=True, text=True, env=os.environ.copy(), timeout=60)
    entries = json.loads(listed.stdout)
    assert sorted(e["input"]["prompt"] for e in entries) == [f"fox {n}" for n in range(6)]
    assert all(e["status"] == "succeeded" and len(e["paths"]) == 1 for e in entries)
    assert sandbox.stats.submits == 6


# -- batch --------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_batch_of_text_and_json_lines(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "\n".join([
        "# a comment", "a red fox", "", '{"prompt": "a whale", "aspect_ratio": "1:1", "num_images": 2, "name": "whale"}',
        '{"prompt": "a frog", "output_format": "webp"}', "a red fox",
    ]))
    out = tmp_path / "out"
    run = cli("batch", prompts, "-o", out, "-a", "9:16", "--json")
    assert run.exit_code == 0, run.stderr
    docs = {doc["line"]: doc for doc in map(json.loads, run.stdout.splitlines())}
    assert sorted(docs) == [2, 4, 5, 6]
    assert docs[4]["input"] == {"prompt": "a whale", "aspect_ratio": "1:1", "output_format": "png", "num_images": 2}
    assert docs[4]["name"] == "whale" and all(Path(o["path"]).name.startswith("whale-") for o in docs[4]["outputs"])
    assert image_info(docs[2]["outputs"][0]["path"]) == ("png", ratio("9:16"))
    assert image_info(docs[5]["outputs"][0]["path"]) == ("webp", ratio("9:16"))
    assert docs[2]["request_id"] != docs[6]["request_id"]  # the same prompt twice is two jobs
    for doc in docs.values():
        for item in doc["outputs"]:
            assert sha256_of(item["path"]) == item["sha256"]
    assert sandbox.stats.submits == 4
    assert "batch: 4 line(s): 4 succeeded" in run.stderr


def in_flight(sandbox) -> list[str]:
    return [job.request_id for job in sandbox.jobs() if job.state in ("in_queue", "in_progress")]


def test_batch_respects_the_concurrency_bound(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    prompts = write(tmp_path / "p.txt", "\n".join(f"fox number {n}" for n in range(9)))

    def one_at_a_time() -> None:
        """Each time the batch has as many jobs out as it may (3, fewer at the end), end the oldest."""
        for done in range(9):
            wanted = min(3, 9 - done)
            wait_until(lambda wanted=wanted: len(in_flight(sandbox)) == wanted, f"{wanted} jobs in flight")
            sandbox.finish_job(in_flight(sandbox)[0])

    with beside(one_at_a_time, sandbox):
        run = cli("batch", prompts, "-j", "3", "-o", tmp_path / "out", "-q")
    assert run.exit_code == 0, run.stderr
    assert len(run.stdout.split()) == 9
    assert sandbox.stats.peak_in_flight == 3  # held jobs: a fourth out at once would have been counted


def test_invalid_lines_are_all_reported_up_front_and_nothing_is_sent(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "\n".join([
        "fine", '{"prompt": "x", "aspect_ratio": "7:1"}', "{not json", "x" * 1001, '{"prompt": "y", "colour": "red"}',
        '{"name": "no prompt"}',
    ]))
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2
    for number in (2, 3, 4, 5, 6):
        assert f"p.txt:{number}: " in run.stderr
    assert "p.txt:1:" not in run.stderr and "21:9" in run.stderr and "colour" in run.stderr
    assert sandbox.stats.requests == []
    skipped = cli("batch", prompts, "-o", tmp_path / "out", "--skip-invalid", "-q")
    assert skipped.exit_code == 0 and len(skipped.stdout.split()) == 1 and sandbox.stats.submits == 1


def test_mixed_success_and_failure_exits_5_with_every_outcome(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "good one\nbad one sandbox:fail\nanother good one\n")
    run = cli("batch", prompts, "-o", tmp_path / "out", "--json")
    assert run.exit_code == 5
    docs = {doc["line"]: doc for doc in map(json.loads, run.stdout.splitlines())}
    assert {n: d["status"] for n, d in docs.items()} == {1: "succeeded", 2: "failed", 3: "succeeded"}
    assert "line 2:" in run.stderr and "could not render" in run.stderr


def test_second_run_submits_nothing_and_failed_lines_are_retried(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "fox a\nfox b\nfox c sandbox:fail\n")
    out = tmp_path / "out"
    assert cli("batch", prompts, "-o", out).exit_code == 5
    assert sandbox.stats.submits == 3
    again = cli("batch", prompts, "-o", out, "--json")
    docs = {doc["line"]: doc for doc in map(json.loads, again.stdout.splitlines())}
    assert docs[1]["skipped"] and docs[2]["skipped"] and not docs[3]["skipped"]
    assert sandbox.stats.submits == 4  # only the failed line went out again
    prompts.write_text("fox a\nfox b\n")
    assert cli("batch", prompts, "-o", out).exit_code == 0
    assert sandbox.stats.submits == 4


def test_unfinished_jobs_are_reattached_not_resubmitted(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    prompts = write(tmp_path / "p.txt", "fox a\nfox b\n")
    out = tmp_path / "out"
    first = cli("batch", prompts, "-o", out, "--timeout", "0.1")
    assert first.exit_code == 6 and sandbox.stats.submits == 2
    finish_all(sandbox)
    manifest = [json.loads(line) for line in (out / "nanobanana-batch.jsonl").read_text().splitlines()]
    submitted = {r["request_id"] for r in manifest if r.get("status") == "submitted"}
    assert len(submitted) == 2
    second = cli("batch", prompts, "-o", out, "--json")
    assert second.exit_code == 0, second.stderr
    assert {json.loads(line)["request_id"] for line in second.stdout.splitlines()} == submitted
    assert sandbox.stats.submits == 2


def manifest_records(directory: Path) -> list[dict]:
    """The batch manifest's complete records so far (a line being written is not one yet)."""
    path = directory / "nanobanana-batch.jsonl"
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return [json.loads(line) for line in lines]


def test_ctrl_c_keeps_the_manifest_and_a_rerun_pays_nothing_twice(start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    prompts = write(tmp_path / "p.txt", "\n".join(f"fox {n}" for n in range(6)))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nanobanana_cli", "batch", str(prompts), "-o", str(out), "-j", "3"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    # the three jobs it may have out are held in the queue: Ctrl-C once the manifest has all their ids
    wait_until(lambda: sum(r.get("status") == "submitted" for r in manifest_records(out)) == 3, "three submitted records")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=WAIT_LIMIT)
    assert process.returncode == 130, err
    assert f"run the same batch command again to resume without paying twice: nanobanana batch {prompts} -o {out}" in err
    assert "Traceback" not in err
    submitted_before = sandbox.stats.submits
    assert submitted_before == 3
    finish_all(sandbox)
    sandbox.queue_seconds = 0  # the rerun's own jobs need not wait
    rerun = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=WAIT_LIMIT)
    assert rerun.returncode == 0, rerun.stderr
    assert sandbox.stats.submits == 6  # the three interrupted jobs were re-attached, not re-sent
    assert len([p for p in out.iterdir() if p.suffix == ".png"]) == 6


def test_batch_from_stdin_with_a_gallery(cli, sandbox, tmp_path):
    out = tmp_path / "out"
    run = cli("batch", "-", "-o", out, "--gallery", "-q", input="a <script>alert(1)</script> fox\na plain fox\n")
    assert run.exit_code == 0
    page = (out / "index.html").read_text()
    for path in run.stdout.split():
        assert f'src="{Path(path).name}"' in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# -- gallery ------------------------------------------------------------------------------------


def test_gallery_of_generate_outputs_uses_the_history(cli, sandbox, tmp_path):
    out = tmp_path / "g"
    paths = cli("generate", 'a "quoted" fox & <b>friends</b>', "-n", "2", "-o", out, "-q").stdout.split()
    (out / "notes.txt").write_text("not an image")
    run = cli("gallery", out)
    assert run.exit_code == 0
    page = Path(run.stdout.strip()).read_text()
    assert page.count("<figure>") == 2
    for path in paths:
        assert f'<img src="{Path(path).name}"' in page
    assert "<b>friends</b>" not in page and "&lt;b&gt;friends&lt;/b&gt;" in page and "&quot;quoted&quot;" in page
    assert "notes.txt" not in page and "http" not in page.split("<main>")[1]  # no external assets


def test_gallery_of_a_missing_directory(cli, tmp_path):
    assert cli("gallery", tmp_path / "nope").exit_code == 2


# -- learning from the history --------------------------------------------------------------------


def test_a_learned_duration_lets_the_next_job_skip_useless_polls(cli, start_sandbox, monkeypatch):
    """The first job's timeline (its duration by the server's clock, its start as polls saw it) plans
    the next job's wait. What that plan costs in polls is a pure function, run here in virtual time
    for a job that takes what was learned: a real wait's count depends on how promptly a busy
    machine answers (test_polling.py counts one where the job cannot be late; benchmarks/ measures
    the lag)."""
    from nanobanana_cli.engine import polling

    from .test_polling import simulate

    plans: list = []

    def spy(*args, expectation=None, **kwargs):
        plans.append(expectation)
        return wait_for_result(*args, expectation=expectation, **kwargs)

    wait_for_result = polling.wait_for_result
    monkeypatch.setattr(polling, "wait_for_result", spy)
    start_sandbox(queue_seconds=0.3, run_seconds=0.9)
    assert cli("generate", "first fox", "-q").exit_code == 0
    (entry,) = history_json(cli)
    assert entry["duration_seconds"] == pytest.approx(1.2, abs=0.01)  # from the server's created/finished times
    assert cli("generate", "second fox", "-q").exit_code == 0
    assert not plans[0]  # nothing learned yet
    (learned,) = plans[1].jobs
    assert learned.total == entry["duration_seconds"]
    start = 0.3 if learned.running_by is None else (learned.queued_after + learned.running_by) / 2
    waited = simulate(start, learned.total - start, plans[1])
    assert len(waited.polls) <= 3 and waited.lag < 0.05, (learned, waited)


def test_a_version_1_history_is_migrated_in_place(cli, sandbox, tmp_path):
    import sqlite3

    from nanobanana_cli.stores.history import MIGRATIONS

    database = tmp_path / "data" / "history.sqlite3"
    database.parent.mkdir(parents=True)
    with sqlite3.connect(database) as old:
        for statement in MIGRATIONS[1]:
            old.execute(statement)
        old.execute(
            "INSERT INTO jobs VALUES ('old-job', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'm', ?, 'an old fox',"
            " '{\"prompt\": \"an old fox\"}', 'succeeded', '[]', '[]')", (sandbox.base_url,),
        )
        old.execute("PRAGMA user_version = 1")
    assert cli("generate", "a new fox", "-q").exit_code == 0
    entries = history_json(cli)
    assert [e["request_id"] for e in entries][-1] == "old-job"
    assert entries[0]["duration_seconds"] is not None and entries[-1]["duration_seconds"] is None

CREATE_HISTORY = """
import sys, time
from pathlib import Path
from nanobanana_cli.stores.history import History
from nanobanana_cli.api.models import GenerationInput
warnings = []
gate = Path(sys.argv[2])
(gate / sys.argv[3]).touch()  # ready; then all go at once, when every process is ready
while len(list(gate.iterdir())) < int(sys.argv[4]):
    time.sleep(0.001)
with History(Path(sys.argv[1]), warn=warnings.append) as history:
    history.record_submission("job-" + sys.argv[3], GenerationInput("a fox"), "http://127.0.0.1:1")
print(warnings)
"""


def test_many_processes_creating_the_history_at_once_all_record(tmp_path):
    """Switching a new database to WAL can meet "database is locked" at once; opening must wait it out."""
    for trial in range(8):
        path, gate = tmp_path / f"trial-{trial}.sqlite3", tmp_path / f"gate-{trial}"
        gate.mkdir()
        processes = [
            subprocess.Popen([sys.executable, "-c", CREATE_HISTORY, str(path), str(gate), str(n), "16"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in range(16)
        ]
        outputs = [process.communicate(timeout=WAIT_LIMIT)[0].strip() for process in processes]
        assert outputs == ["[]"] * 16, next(o for o in outputs if o != "[]")



def test_skip_invalid_json_streams_a_document_for_every_skipped_line(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", 'a fine fox\n{"prompt": "x", "aspect_ratio": "7:1"}\n{not json\n')
    run = cli("batch", prompts, "-o", tmp_path / "out", "--skip-invalid", "--json")
    assert run.exit_code == 0, run.stderr
    docs = {doc["line"]: doc for doc in map(json.loads, run.stdout.splitlines())}
    assert docs[1]["status"] == "succeeded" and docs[1]["skipped"] is False
    for number in (2, 3):
        assert docs[number]["status"] == "invalid" and docs[number]["skipped"] is True
        assert docs[number]["request_id"] is None and docs[number]["exit_code"] == 2 and docs[number]["error"]
    assert sandbox.stats.submits == 1
