"""`history`: only real states, honest empty answers, --refresh from the API, `rm` and `clear`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.stores.history import History

OTHER_API = "http://127.0.0.1:9"


def database(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


def record(tmp_path: Path, request_id: str, prompt: str, *, submitted_at: str | None = None, base_url: str = OTHER_API) -> None:
    with History(database(tmp_path)) as history:
        history.record_submission(request_id, GenerationInput(prompt), base_url)
    if submitted_at:
        with sqlite3.connect(database(tmp_path)) as db:
            db.execute("UPDATE jobs SET submitted_at = ? WHERE request_id = ?", (submitted_at, request_id))


def listed(cli, *args: str) -> list[dict]:
    run = cli("history", "--json", *args)
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def test_status_filter_accepts_only_real_states(cli, tmp_path):
    record(tmp_path, "job-1", "a fox")
    run = cli("history", "--status", "finished")
    assert run.exit_code == 2
    assert "unknown status 'finished'" in run.stderr
    assert "submitting, uncertain, in_queue, in_progress, succeeded, failed, cancelled" in run.stderr
    assert [e["request_id"] for e in listed(cli, "--status", "IN_QUEUE")] == ["job-1"]
    assert cli("history", "--status", "canceled").exit_code == 0  # the API's other spelling


def test_empty_history_and_filters_that_match_nothing_say_different_things(cli, tmp_path):
    assert "no jobs recorded yet" in cli("history").stderr
    record(tmp_path, "job-1", "a fox")
    run = cli("history", "--search", "whale")
    assert run.exit_code == 0 and "no jobs match" in run.stderr and "recorded yet" not in run.stderr


def test_refresh_updates_unfinished_jobs_through_the_api(cli, sandbox, tmp_path):
    record(tmp_path, "job-elsewhere", "a fox on another API")
    request_id = cli("generate", "a fox finished meanwhile", "--no-wait", "-q").stdout.strip()
    assert {e["request_id"]: e["status"] for e in listed(cli)}[request_id] == "in_queue"
    run = cli("history", "--refresh", "--json")
    asked = [r.path for r in sandbox.stats.requests if r.method == "GET"]
    assert run.exit_code == 0, run.stderr
    states = {e["request_id"]: e["status"] for e in json.loads(run.stdout)}
    assert states == {request_id: "succeeded", "job-elsewhere": "in_queue"}
    assert "1 unfinished job(s) were sent to another API" in run.stderr
    assert all(request_id in path for path in asked)  # the other API's job was never asked about here


def test_rm_forgets_jobs_and_names_the_unknown_ones(cli, tmp_path):
    record(tmp_path, "job-1", "first fox")
    record(tmp_path, "job-2", "second fox")
    run = cli("history", "rm", "job-1", "no-such-job")
    assert run.exit_code == 4 and "not in the history: no-such-job" in run.stderr
    assert [e["request_id"] for e in listed(cli)] == ["job-2"]
    assert cli("history", "rm", "job-2").exit_code == 0
    assert listed(cli) == []


def test_clear_before_a_date_keeps_the_newer_jobs(cli, tmp_path):
    record(tmp_path, "job-old", "an old fox", submitted_at="2025-12-30T10:00:00.000Z")
    record(tmp_path, "job-new", "a new fox", submitted_at="2026-02-01T10:00:00.000Z")
    run = cli("history", "clear", "--before", "2026-01-15", "--yes")
    assert run.exit_code == 0 and "removed 1 job(s)" in run.stderr
    assert [e["request_id"] for e in listed(cli, "-n", "5")] == ["job-new"]
    bad = cli("history", "clear", "--before", "last tuesday")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr
    assert cli("history", "clear").exit_code == 2  # --before is required: no accidental wipe
