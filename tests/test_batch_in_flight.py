"""A batch keeps `-j` jobs on the server, not `-j` lines in hand: the moment a job has finished there,
the next line is submitted while the finished one's images are still being saved. And the records
every worker writes (the manifest, the submit journal) never make one worker wait on another's."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.engine.manifest import Manifest
from nanobanana_cli.engine.polling import wait_for_result
from nanobanana_cli.sandbox import Faults
from nanobanana_cli.stores.history import History

from .conftest import HELD, WAIT_LIMIT, beside, wait_until


def test_the_next_line_is_submitted_while_a_finished_jobs_image_downloads(cli, start_sandbox, tmp_path, monkeypatch):
    sandbox = start_sandbox(faults=Faults(stall_download=1, stall_seconds=WAIT_LIMIT))
    released = threading.Event()
    monkeypatch.setattr(sandbox, "pause", lambda seconds: released.wait(seconds))  # the stall ends when the test says
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red fox\na blue fox\n")

    def asked_for_the_first_image() -> list[str]:
        jobs = sandbox.jobs()
        if not jobs:
            return []
        first = jobs[0].request_id
        return [r.path for r in list(sandbox.stats.requests) if r.listener != "api" and f"/{first}/" in r.path]

    def release_once_the_second_line_is_submitted() -> None:
        wait_until(asked_for_the_first_image, "the first job's image to be asked for (and stall half way)")
        wait_until(lambda: sandbox.stats.submits == 2, "the second submit while the first job's image is half sent")
        assert len(asked_for_the_first_image()) == 1  # still its first request: stalled, not given up on and asked again
        released.set()

    with beside(release_once_the_second_line_is_submitted, sandbox):
        run = cli("batch", prompts, "-j", "1", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    docs = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(doc["line"] for doc in docs) == [1, 2] and all(doc["status"] == "succeeded" for doc in docs)


def test_a_job_that_has_not_finished_keeps_its_place(cli, start_sandbox, tmp_path):
    """Held jobs: at -j 2 the third line waits for one of the first two to finish on the server."""
    sandbox = start_sandbox(queue_seconds=HELD)
    prompts = tmp_path / "p.txt"
    prompts.write_text("fox one\nfox two\nfox three\n")

    def finish_one_then_the_rest() -> None:
        wait_until(lambda: sandbox.stats.submits == 2, "two jobs out")
        first = sandbox.jobs()[0].request_id
        assert sandbox.stats.submits == 2  # nothing else goes out while both are on the server
        sandbox.finish_job(first)
        wait_until(lambda: sandbox.stats.submits == 3, "the third line, once a job has finished")
        for job in sandbox.jobs():
            if job.state in ("in_queue", "in_progress"):
                sandbox.finish_job(job.request_id)

    with beside(finish_one_then_the_rest, sandbox):
        run = cli("batch", prompts, "-j", "2", "-o", tmp_path / "out", "-q")
    assert run.exit_code == 0, run.stderr
    assert sandbox.stats.peak_in_flight == 2


def test_a_wait_plans_its_polls_from_the_submits_answer(start_sandbox):
    """The bookkeeping between a submit and its wait (journal, manifest) must not push back the poll
    planned for the job's finish: the plan's clock starts at the answer (`since`)."""
    sandbox = start_sandbox()
    seen: list[float] = []
    with Client(sandbox.token, sandbox.base_url) as client:
        request_id = client.submit(GenerationInput("a fox")).request_id
        answered = client.clock.monotonic() - 5.0  # as if the bookkeeping had taken five seconds
        result = wait_for_result(client, request_id, since=answered, on_update=lambda status, elapsed: seen.append(elapsed))
    assert result.succeeded and seen and seen[0] >= 5.0


def test_the_submit_journal_does_not_queue_behind_the_shared_connection(tmp_path):
    with History(tmp_path / "h.sqlite3") as history:
        ticket = history.submitting(GenerationInput("a lone fox"), "http://api")
        history.submitted(ticket, "lone-1")
        assert history._journal_connection is None  # a free shared connection serves the journal: one open, as before
        done = threading.Event()

        def journal() -> None:
            history.submitted(history.submitting(GenerationInput("a fox"), "http://api"), "busy-1")
            done.set()

        with history._db():  # another worker's statement holds the shared connection
            worker = threading.Thread(target=journal, daemon=True)
            worker.start()
            assert done.wait(WAIT_LIMIT), "the journal waited for the shared connection"
        worker.join(WAIT_LIMIT)
        assert {entry.request_id: entry.status for entry in history.entries()} == {"lone-1": "in_queue", "busy-1": "in_queue"}


def test_records_written_at_once_by_many_workers_all_land_whole(tmp_path: Path):
    manifest = Manifest(tmp_path)
    start = threading.Barrier(8)

    def worker(number: int) -> None:
        start.wait(WAIT_LIMIT)
        for step in range(40):
            manifest.record(f"key-{number}", durable=step % 2 == 0, line=number + 1, status="submitting", step=step, pad="x" * 9000)

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_LIMIT)
    again = Manifest(tmp_path)
    assert again.problems == []
    assert {again.get(f"key-{number}")["step"] for number in range(8)} == {39}
    assert len(again.path.read_bytes().splitlines()) == 8 * 40
