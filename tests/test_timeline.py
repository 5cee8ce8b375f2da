"""A job's timeline: one reading of its times (`times.timeline`), and a start recorded only when a
client saw the job running, never after its finish."""

from __future__ import annotations

import json

from nanobanana_cli.times import Timeline, timeline


def test_a_start_after_the_finish_is_unknown_not_a_queue_wait():
    spans = timeline("2026-01-01T00:00:00Z", "2026-01-01T00:00:35Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:11Z")
    assert spans == Timeline(queue_wait=None, run=None, total=10.0)


def test_a_queue_wait_longer_than_the_whole_job_is_unknown():
    # our clock says it started 35 s after the submit, the server says the job took 10 s in all
    spans = timeline("2026-01-01T00:00:00Z", "2026-01-01T00:00:35Z", None, None, 10.0)
    assert spans.queue_wait is None and spans.run is None and spans.total == 10.0


def test_an_observed_start_gives_queue_wait_and_run_time():
    spans = timeline("2026-01-01T00:00:00Z", "2026-01-01T00:00:02.5Z", "2026-01-01T00:00:00.1Z", "2026-01-01T00:00:06Z")
    assert spans == Timeline(queue_wait=2.5, run=3.5, total=5.9)


def test_no_sighting_leaves_queue_and_run_unknown_and_unreadable_times_are_ignored():
    assert timeline("2026-01-01T00:00:00Z", None, None, "2026-01-01T00:00:04Z") == Timeline(None, None, 4.0)
    assert timeline("yesterday", 17, ["x"], None, "3") == Timeline(None, None, None)


def test_a_job_first_seen_finished_records_no_start_and_explain_says_unknown(cli, sandbox, tmp_path):
    # An instant job: the first answer after the submit already says it finished.
    made = json.loads(cli("generate", "a crane at dawn", "-o", tmp_path, "--json").stdout)
    listed = json.loads(cli("history", "--json").stdout)
    job = next(entry for entry in listed if entry["request_id"] == made["request_id"])
    assert job["started_at"] is None and job["finished_at"] is not None
    explained = cli("explain", made["request_id"])
    assert explained.exit_code == 0, explained.stderr
    assert "queue wait  unknown" in explained.stdout and "run time" in explained.stdout


def test_a_job_seen_running_starts_before_it_finishes_and_a_later_watch_keeps_that_start(cli, start_sandbox, tmp_path):
    import time

    sandbox = start_sandbox(queue_seconds=0.0, run_seconds=3600.0)
    request_id = cli("generate", "a heron", "--no-wait", "-q").stdout.strip()
    seen = cli("watch", request_id, "-o", tmp_path, "--timeout", "3")  # sees it running, then gives up
    assert seen.exit_code != 0 and "in_progress" in json.dumps(cli("status", request_id, "--json").stdout)
    first = next(e for e in json.loads(cli("history", "--json").stdout) if e["request_id"] == request_id)
    assert first["started_at"] is not None and first["finished_at"] is None
    job = sandbox.find_job(request_id)
    job.run_seconds = time.monotonic() - job.created  # the test ends the run now, on the server's clock
    done = cli("watch", request_id, "-o", tmp_path)
    assert done.exit_code == 0, done.stderr
    later = next(e for e in json.loads(cli("history", "--json").stdout) if e["request_id"] == request_id)
    assert later["started_at"] == first["started_at"] <= later["finished_at"]
    explained = json.loads(cli("explain", request_id, "--json").stdout)
    assert explained["queue_wait_seconds"] is not None
    assert explained["queue_wait_seconds"] <= explained["total_seconds"]
