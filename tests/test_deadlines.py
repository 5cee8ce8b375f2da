"""Deadlines that hold and answers that stay bounded, against the sandbox's faults.

`--timeout T` bounds the wait whatever the server does to the polls (a Retry-After of an hour, 5xx
with many retries, an answer trickled a byte a second): the command gives up with exit 6. Every HTTP
exchange has a total deadline, not a per-read one; every download a stall limit and a total
deadline. A huge or absurdly deep answer costs a few MB and a clean exit 7.

No test here races the clock. Each server behaviour would hold the client for a minute or more,
and the test checks that the deadline is what ended it: by the error it names, by the exit code,
and by the wait the command measured itself, far below what the server would have taken. How close
to T the exit comes is a timing property, not asserted.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.api.retry import RetryPolicy
from nanobanana_cli.errors import BadResponseError, SubmitUncertainError, UnavailableError
from nanobanana_cli.sandbox import Faults

from .conftest import HELD, SENTINEL_TOKEN, WAIT_LIMIT, wait_until

TIMEOUT = 1.5
ENDLESS = 10**6  # a fault budget no test uses up
# Each scenario holds a poll at least this long without a deadline: Retry-After is honoured up to
# 60 s, eight backed-off retries of a 502 take about 30 s, and a trickled answer some 300 s.
HELD_AT_LEAST = 30.0

POLL_SCENARIOS = {
    "429 with Retry-After: 3600": (Faults(rate_limit=ENDLESS, retry_after="3600"), ()),
    "502 pages with --retries 8": (Faults(server_error=ENDLESS), ("--retries", "8")),
    "an answer trickled a byte a second": (Faults(trickle_api=ENDLESS, trickle_interval=1.0), ()),
}


@pytest.mark.parametrize("name", list(POLL_SCENARIOS))
def test_watch_timeout_holds_whatever_the_polls_do(name, cli, start_sandbox, tmp_path):
    """A separate process, as a user runs it: the retry routine's waits are real there."""
    sandbox = start_sandbox(queue_seconds=HELD)
    request_id = cli("generate", "a patient fox", "--no-wait", "-q").stdout.strip()
    faults, extra = POLL_SCENARIOS[name]
    sandbox.inject(faults)  # after the submit: some of these hit every API request
    run = subprocess.run(
        [sys.executable, "-m", "nanobanana_cli", "watch", request_id, "--timeout", str(TIMEOUT), "--json",
         "-o", str(tmp_path / "out"), *extra],
        capture_output=True, text=True, timeout=WAIT_LIMIT, env=os.environ.copy(), check=False,
    )
    assert run.returncode == 6, run.stderr
    assert "gave up waiting" in run.stderr and f"nanobanana watch {request_id}" in run.stderr
    waited = json.loads(run.stdout)["elapsed_seconds"]  # measured by the command itself
    assert waited < HELD_AT_LEAST / 2, f"{name}: gave up after {waited}s"  # (or earlier: a wait past T is never begun)
    assert sandbox.stats.submits == 1


def client_for(sandbox, **kwargs) -> Client:
    return Client(SENTINEL_TOKEN, sandbox.base_url, retry=RetryPolicy(retries=kwargs.pop("retries", 0), base=0), **kwargs)


def queued_job(sandbox) -> str:
    with client_for(sandbox) as client:
        return client.submit(GenerationInput("a fox")).request_id


def test_an_api_call_has_a_total_deadline_not_a_per_read_one(start_sandbox):
    sandbox = start_sandbox(queue_seconds=HELD)
    request_id = queued_job(sandbox)
    # a byte every 50 ms: a per-read timeout never fires, and the whole answer takes some 20 s
    sandbox.inject(Faults(trickle_api=ENDLESS, trickle_interval=0.05))
    with client_for(sandbox, total_timeout=0.5, retries=1) as client, \
            pytest.raises(UnavailableError, match=r"no complete answer within 0\.5s, 2 times"):
        client.status(request_id)


def test_a_trickled_submit_answer_is_cut_off_as_uncertain_and_not_resent(start_sandbox):
    # the job is created at once; only its answer crawls, the first byte 50 ms after it
    sandbox = start_sandbox(faults=Faults(trickle_api=1, trickle_interval=0.05))
    with client_for(sandbox, total_timeout=0.5, retries=3) as client, \
            pytest.raises(SubmitUncertainError, match="no complete answer within 0.5s"):
        client.submit(GenerationInput("a fox on a slow line"))
    wait_until(lambda: sandbox.stats.submits == 1, "the job to be created")
    assert sandbox.stats.api_requests_started == 1  # never re-sent


def assert_no_partial_files(directory: Path) -> None:
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".")] if directory.exists() else []
    assert leftovers == []


def test_a_download_has_a_total_deadline(cli, start_sandbox, monkeypatch, tmp_path):
    from nanobanana_cli.engine import downloads

    monkeypatch.setattr(downloads, "DOWNLOAD_TOTAL_SECONDS", 1.0)
    # a byte every 50 ms: never a stall, and the whole file would take minutes
    start_sandbox(faults=Faults(trickle_download=ENDLESS, trickle_interval=0.05))
    run = cli("generate", "a fox on a slow CDN", "-o", tmp_path / "out")
    assert run.exit_code == 7 and "no complete answer within 1s" in run.stderr, run.stderr
    assert "nanobanana result" in run.stderr
    assert_no_partial_files(tmp_path / "out")


def test_a_stalled_download_is_cut_off_by_the_stall_limit(cli, start_sandbox, monkeypatch, tmp_path):
    from nanobanana_cli.api import client

    monkeypatch.setattr(client, "ASSET_TIMEOUT", (5.0, 0.3))
    start_sandbox(faults=Faults(stall_download=ENDLESS, stall_seconds=3600))  # half the file, then an hour
    run = cli("generate", "a fox on a stuck CDN", "-o", tmp_path / "out", "--retries", "1")
    assert run.exit_code == 7 and "stalled after" in run.stderr, run.stderr
    assert_no_partial_files(tmp_path / "out")


# -- bounded answers --------------------------------------------------------------------------------


def test_a_300_mb_status_answer_costs_a_few_mb_of_memory(sandbox):
    request_id = queued_job(sandbox)
    sandbox.inject(Faults(huge_json=1, huge_json_mb=300))  # streamed by the sandbox, as far as it is read
    with client_for(sandbox) as client:
        tracemalloc.start()
        try:
            with pytest.raises(BadResponseError, match="larger than 4 MB") as caught:
                client.status(request_id)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert caught.value.exit_code == 7
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_absurdly_deep_json_is_a_clean_exit_7(cli, sandbox):
    request_id = queued_job(sandbox)
    sandbox.inject(Faults(deep_json=ENDLESS, deep_json_depth=500_000))
    run = cli("status", request_id, "--retries", "0")
    assert run.exit_code == 7 and "not a JSON object" in run.stderr, run.stderr
    assert "Recursion" not in run.stderr and "unexpected" not in run.stderr


def test_a_shorter_deadline_cuts_while_the_watchdog_sleeps_until_a_longer_one():
    """The watchdog, asleep until a 60 s deadline, wakes for a 0.3 s one started meanwhile: the read
    ends long before the 60 s (had it slept on, the join would time out with nothing waited)."""
    from nanobanana_cli.api import deadline

    ours, peer = socket.socketpair()
    waited: list[float] = []

    def short_exchange() -> None:
        import time

        with deadline.watching(0.3):
            deadline._adopt(ours)
            started = time.monotonic()
            ours.recv(1)  # no byte ever comes: only the cut ends this read
            waited.append(time.monotonic() - started)

    with deadline.watching(60):  # the watchdog now sleeps until this one's deadline
        worker = threading.Thread(target=short_exchange)
        worker.start()
        worker.join(WAIT_LIMIT)
    ours.close()
    peer.close()
    assert waited and waited[0] < 30, waited
