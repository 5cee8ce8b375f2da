"""`history` knows which API each job went to: an API column and --api filter, spend and stats without
the sandbox's jobs unless asked, `clear` that confirms, and a refresh that says what changed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.stores.history import History

REAL_API = "https://model-api.runcomfy.net"
LOCAL_API = "http://127.0.0.1:9"


def record(tmp_path: Path, request_id: str, base_url: str, *, cost: float | None = None, submitted_at: str | None = None) -> None:
    database = tmp_path / "data" / "history.sqlite3"
    with History(database) as history:
        history.record_submission(request_id, GenerationInput(f"a fox {request_id}"), base_url)
        history.update(request_id, status="succeeded", cost=cost)
    if submitted_at:
        with sqlite3.connect(database) as db:
            db.execute("UPDATE jobs SET submitted_at = ? WHERE request_id = ?", (submitted_at, request_id))


def ids(run) -> list[str]:
    assert run.exit_code == 0, run.stderr
    return [entry["request_id"] for entry in json.loads(run.stdout)]


def test_the_table_has_a_header_and_an_api_column_and_api_filters(cli, tmp_path):
    record(tmp_path, "job-real", REAL_API)
    record(tmp_path, "job-local", LOCAL_API)
    lines = cli("history").stdout.splitlines()
    assert lines[0].split() == ["SUBMITTED", "(UTC)", "ID", "STATUS", "MODEL", "IMAGES", "API", "PROMPT"]
    rows = {line.split()[2]: line for line in lines[1:]}
    assert REAL_API in rows["job-real"] and LOCAL_API in rows["job-local"]
    assert lines[0].index("API") == rows["job-real"].index(REAL_API)  # the column lines up
    assert ids(cli("history", "--json", "--api", REAL_API + "/")) == ["job-real"]
    assert ids(cli("history", "--json", "--api", LOCAL_API)) == ["job-local"]
    assert cli("history", "--api", "model-api.runcomfy.net").exit_code == 2


def test_stats_leave_out_local_jobs_unless_asked(cli, tmp_path):
    record(tmp_path, "job-real", REAL_API, cost=0.039)
    record(tmp_path, "job-local", LOCAL_API, cost=4.0)
    run = cli("history", "stats", "--json")
    assert run.exit_code == 0, run.stderr
    stats = json.loads(run.stdout)
    assert (stats["jobs"], stats["spend_usd"]) == (1, 0.039)
    assert "left out 1 job(s) sent to a local API" in run.stderr and "--all" in run.stderr
    everything = json.loads(cli("history", "stats", "--json", "--all").stdout)
    assert (everything["jobs"], everything["spend_usd"]) == (2, 4.039)
    local = json.loads(cli("history", "stats", "--json", "--api", LOCAL_API).stdout)
    assert (local["jobs"], local["spend_usd"]) == (1, 4.0)


def test_stats_since_a_wrong_date_suggests_since(cli):
    run = cli("history", "stats", "--since", "yesterday")
    assert run.exit_code == 2 and "e.g. --since 2026-01-31" in run.stderr and "--before" not in run.stderr


def test_clear_lists_with_dry_run_and_needs_yes_in_a_script(cli, tmp_path):
    record(tmp_path, "job-old", REAL_API, submitted_at="2025-12-30T10:00:00.000Z")
    record(tmp_path, "job-new", REAL_API, submitted_at="2026-02-01T10:00:00.000Z")
    dry = cli("history", "clear", "--before", "2026-01-15", "--dry-run")
    assert dry.exit_code == 0 and "would remove 1 job(s)" in dry.stderr
    assert "job-old" in dry.stdout and "job-new" not in dry.stdout
    scripted = cli("history", "clear", "--before", "2026-01-15")
    assert scripted.exit_code == 2 and "--yes" in scripted.stderr and "nothing was removed" in scripted.stderr
    asked = cli("history", "clear", "--before", "2026-01-15", tty_stdin=True)  # the terminal answers nothing: no
    assert asked.exit_code == 1 and "Forget 1 job(s)" in asked.stderr and "not confirmed" in asked.stderr
    assert ids(cli("history", "--json")) == ["job-new", "job-old"]
    assert cli("history", "clear", "--before", "2026-01-15", "--yes").exit_code == 0
    assert ids(cli("history", "--json")) == ["job-new"]


def test_refresh_says_what_changed_even_when_the_filter_then_matches_nothing(cli, sandbox):
    first = cli("generate", "a fox", "--no-wait", "-q").stdout.strip()
    second = cli("generate", "a hare", "--no-wait", "-q").stdout.strip()
    assert {e["request_id"]: e["status"] for e in json.loads(cli("history", "--json").stdout)} == {
        first: "in_queue", second: "in_queue"}
    run = cli("history", "--refresh", "--status", "in_queue", "-n", "1")  # -n limits the listing, not the refresh
    assert run.exit_code == 0, run.stderr
    assert "refreshed 2 unfinished job(s)" in run.stderr and "2 in_queue → succeeded" in run.stderr
    assert "no jobs match" in run.stderr
    assert {e["status"] for e in json.loads(cli("history", "--json").stdout)} == {"succeeded"}
