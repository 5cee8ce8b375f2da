"""Deadlines that hold and answers that stay bounded.

`--timeout T` is a wall-clock bound: whatever the server does to the polls (a Retry-After of an
hour, 5xx with many retries, an answer trickled one byte at a time), `generate` exits 6 within
T + 1 s. Every HTTP exchange has a total deadline, not a per-read one; every download a stall
limit and a total deadline. A huge or absurdly deep answer costs a few MB and a clean exit 7.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.api.retry import RetryPolicy
from nanobanana_cli.errors import BadResponseError, SubmitUncertainError, UnavailableError

from .conftest import SENTINEL_TOKEN
from .test_reliability_fakeapi import FILE_PATH, JOB_PATH, PNG, SUBMIT_PATH, Answer, FakeAPI, trickled

TIMEOUT = 1.5
STATUS_ANSWER = json.dumps({"request_id": "r", "status": "in_queue", "queue_position": 1}).encode()


def polls(answer):
    """An override answering every status/result poll with `answer(api)`, the rest as scripted."""
    return lambda request, api: answer(api) if JOB_PATH.match(request.path) else None


POLL_SCENARIOS = {
    "429 with Retry-After: 3600": (
        polls(lambda api: Answer.json({"detail": "slow down"}, 429, headers={"Retry-After": "3600"})), (),
    ),
    "502 pages with --retries 8": (polls(lambda api: Answer(502, b"<html>bad gateway</html>")), ("--retries", "8")),
    "an answer trickled a byte at a time": (polls(lambda api: Answer(200, STATUS_ANSWER, trickle=0.1)), ()),
}


@pytest.mark.timing  # a python process's start-up counts against its 1 s of slack
@pytest.mark.parametrize("name", list(POLL_SCENARIOS))
def test_generate_timeout_holds_within_a_second_whatever_the_polls_do(name, tmp_path):
    override, extra = POLL_SCENARIOS[name]
    with FakeAPI(override=override) as api:
        env = {**os.environ, "NANOBANANA_BASE_URL": api.base_url, "RUNCOMFY_API_TOKEN": SENTINEL_TOKEN}
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "nanobanana_cli", "generate", "a patient fox", "--timeout", str(TIMEOUT),
             "-o", str(tmp_path / "out"), *extra],
            capture_output=True, text=True, timeout=60, env=env,
        )
        elapsed = time.monotonic() - started
    assert run.returncode == 6, run.stderr
    assert elapsed < TIMEOUT + 1, f"{name}: exited after {elapsed:.1f}s"
    assert "gave up waiting" in run.stderr and "nanobanana watch" in run.stderr
    assert sum(api.posts.values()) == 1


def client_for(api: FakeAPI, **kwargs) -> Client:
    return Client(SENTINEL_TOKEN, api.base_url, retry=RetryPolicy(retries=kwargs.pop("retries", 0), base=0), **kwargs)


def test_an_api_call_has_a_total_deadline_not_a_per_read_one():
    trickle = polls(lambda api: Answer(200, STATUS_ANSWER, trickle=0.05))  # ~9 s in all, a byte every 50 ms
    with FakeAPI(override=trickle) as api, client_for(api, total_timeout=0.5, retries=1) as client:
        started = time.monotonic()
        with pytest.raises(UnavailableError, match=r"no complete answer within 0\.5s, 2 times"):
            client.status("abc")
        assert time.monotonic() - started < 2.0


def test_a_trickled_submit_answer_is_cut_off_as_uncertain_and_not_resent():
    def trickle_submits(request, api):
        if request.path != SUBMIT_PATH:
            return None
        answer = api._submit(request)  # the job is created; only its answer crawls
        answer.trickle = 0.05
        return answer

    with FakeAPI(override=trickle_submits) as api, client_for(api, total_timeout=0.5, retries=3) as client:
        with pytest.raises(SubmitUncertainError, match="no complete answer within 0.5s"):
            client.submit(GenerationInput("a fox on a slow line"))
    assert sum(api.posts.values()) == 1


def _slow_files(pace: float, stall: float = 0.0):
    def answer(request, api):
        if FILE_PATH.match(request.path):

            def body():
                yield PNG[:16]
                if api.stopping.wait(stall):
                    return
                yield from trickled(PNG[16:], pace, api.stopping)

            return Answer(200, body(), {"Content-Type": "image/png"}, length=len(PNG))
        return None

    return answer


def assert_no_partial_files(directory: Path) -> None:
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".")] if directory.exists() else []
    assert leftovers == []


def test_a_download_has_a_total_deadline(cli, monkeypatch, tmp_path):
    from nanobanana_cli.engine import downloads

    monkeypatch.setattr(downloads, "DOWNLOAD_TOTAL_SECONDS", 1.0)
    with FakeAPI(override=_slow_files(pace=0.05)) as api:  # ~50 s for the whole file
        monkeypatch.setenv("NANOBANANA_BASE_URL", api.base_url)
        monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
        started = time.monotonic()
        run = cli("generate", "a fox on a slow CDN", "-o", tmp_path / "out")
        elapsed = time.monotonic() - started
    assert run.exit_code == 7 and "no complete answer within 1s" in run.stderr, run.stderr
    assert "nanobanana result" in run.stderr and elapsed < 3
    assert_no_partial_files(tmp_path / "out")


def test_a_stalled_download_is_cut_off_by_the_stall_limit(cli, monkeypatch, tmp_path):
    from nanobanana_cli.api import client

    monkeypatch.setattr(client, "ASSET_TIMEOUT", (5.0, 0.3))
    with FakeAPI(override=_slow_files(pace=0.0, stall=30)) as api:
        monkeypatch.setenv("NANOBANANA_BASE_URL", api.base_url)
        monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
        started = time.monotonic()
        run = cli("generate", "a fox on a stuck CDN", "-o", tmp_path / "out", "--retries", "1")
        elapsed = time.monotonic() - started
    assert run.exit_code == 7 and "stalled after" in run.stderr, run.stderr
    assert elapsed < 3
    assert_no_partial_files(tmp_path / "out")


# -- bounded answers --------------------------------------------------------------------------------

HUGE = 300 * 1024 * 1024


def _endless_status(request, api):
    if JOB_PATH.match(request.path):
        block = b'{"status": "in_queue", "padding": "' + b"x" * (1024 * 1024)

        def body():
            for _ in range(HUGE // len(block)):
                if api.stopping.is_set():
                    return
                yield block

        return Answer(200, body(), {"Content-Type": "application/json"}, length=HUGE // len(block) * len(block))
    return None


def test_a_300_mb_status_answer_costs_a_few_mb_of_memory():
    with FakeAPI(override=_endless_status) as api, client_for(api) as client:
        tracemalloc.start()
        try:
            started = time.monotonic()
            with pytest.raises(BadResponseError, match="larger than 4 MB") as caught:
                client.status("abc")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert caught.value.exit_code == 7
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert time.monotonic() - started < 5


def test_absurdly_deep_json_is_a_clean_exit_7(cli, monkeypatch):
    depth = 500_000
    deep = polls(lambda api: Answer(200, b"[" * depth + b"]" * depth, {"Content-Type": "application/json"}))
    with FakeAPI(override=deep) as api:
        monkeypatch.setenv("NANOBANANA_BASE_URL", api.base_url)
        monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
        run = cli("status", "abc", "--retries", "0")
    assert run.exit_code == 7 and "not a JSON object" in run.stderr, run.stderr
    assert "Recursion" not in run.stderr and "unexpected" not in run.stderr


@pytest.mark.timing
def test_a_shorter_deadline_cuts_on_time_while_the_watchdog_sleeps_until_a_longer_one():
    import socket
    import threading

    from nanobanana_cli.api import deadline

    ours, peer = socket.socketpair()
    waited: list[float] = []

    def short_exchange() -> None:
        with deadline.watching(0.3):
            deadline._adopt(ours)
            started = time.monotonic()
            ours.recv(1)  # no byte ever comes: only the cut ends this read
            waited.append(time.monotonic() - started)

    with deadline.watching(60):  # the watchdog now sleeps until this one's deadline
        worker = threading.Thread(target=short_exchange)
        worker.start()
        worker.join(5)
    ours.close()
    peer.close()
    assert waited and 0.2 < waited[0] < 1.5, waited
