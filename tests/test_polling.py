"""The poll plan: few requests where the job cannot be done, dense ones where it should finish.

The plan is pure (no clock, no I/O), so most of these drive it through simulated jobs in virtual
time and check behaviour: how many polls, how late the finish is seen, how far apart polls get.
A few run real waits against the sandbox: they count its requests and check the order of events,
never the lag (a timing property: benchmarks/ measures it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.engine.polling import Expectation, PastJob, Plan, PollSchedule, wait_for_result
from nanobanana_cli.stores.history import History

from .conftest import HELD, beside, job_polls, step_job, wait_until

ROUND_TRIP = 0.004  # virtual seconds per request


@dataclass
class Waited:
    polls: list[float]  # when each poll's answer came, seconds since the submit
    lag: float  # from the job's finish to the poll that saw it
    seen: tuple[float, float] | None  # (last answer saying in_queue, first saying running), as the lifecycle records them

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.polls, self.polls[1:])]


def simulate(queue: float, run: float, expectation: Expectation | None = None, schedule: PollSchedule | None = None) -> Waited:
    """A job that queues then runs, polled as the plan says, in virtual time."""
    plan = Plan(expectation, schedule or PollSchedule())
    finish, now, polls = queue + run, 0.0, []
    queued_after, seen = 0.0, None
    while len(polls) < 1000:
        now = plan.next_poll(now) + ROUND_TRIP
        polls.append(now)
        state = "in_queue" if now < queue else "in_progress" if now < finish else "succeeded"
        if state == "succeeded":
            return Waited(polls, now - finish, seen)
        if state == "in_queue":
            queued_after = now
        elif seen is None:
            seen = (queued_after, now)
        plan.observe(now, state)
    raise AssertionError("the plan never saw the job finish")


def learned_from(jobs: list[tuple[float, float]]) -> Expectation:
    """History as a user builds it: each earlier job waited for with no history of its own."""
    past = []
    for queue, run in jobs:
        seen = simulate(queue, run).seen
        past.append(PastJob(queue + run, *seen) if seen else PastJob(queue + run))
    return Expectation(tuple(past))


def test_with_no_history_polls_start_early_and_settle_at_a_steady_pace():
    waited = simulate(0.5, 20.0)
    schedule = PollSchedule()
    assert waited.polls[0] == pytest.approx(schedule.first, abs=0.01)
    assert all(schedule.steady - 0.01 <= gap <= schedule.cap + 0.01 for gap in waited.gaps)
    assert waited.lag <= schedule.cap
    # fewer requests than 1.5x a poller asking every second
    assert len(waited.polls) <= 1.5 * (20.5 + 2)


def test_a_duration_learned_right_needs_a_look_and_one_poll_at_the_expected_finish():
    waited = simulate(0.5, 2.0, learned_from([(0.5, 2.0)] * 5))
    assert len(waited.polls) <= 3
    assert waited.lag < 0.05


def test_learned_run_time_with_a_variable_queue_polls_densely_only_near_the_finish():
    history = learned_from([(0.3, 4.0), (1.9, 4.0), (1.1, 4.0), (0.7, 4.0), (1.5, 4.0)])
    for queue in (0.2, 0.9, 1.6):
        waited = simulate(queue, 4.0, history)
        assert waited.lag <= PollSchedule().dense + ROUND_TRIP
        # sparse while running and far from the finish: each gap at least the time elapsed
        middle = [poll for poll in waited.polls if queue + 0.5 < poll < queue + 3.0]
        assert len(middle) <= 2, waited.polls


def test_a_long_job_costs_fewer_than_half_the_requests_of_a_one_second_poller():
    history = learned_from([(q, 27.0) for q in (1.0, 5.5, 3.2, 0.4, 4.4)])
    for queue in (0.5, 2.5, 5.0):
        waited = simulate(queue, 27.0, history)
        assert len(waited.polls) <= 0.5 * (queue + 27.0 + 2)
        assert waited.lag <= PollSchedule().dense + ROUND_TRIP


def test_a_job_learned_to_take_a_second_is_polled_once_at_its_expected_finish():
    waited = simulate(0.0, 1.0, learned_from([(0.0, 1.0)] * 3))
    assert len(waited.polls) == 1 and waited.lag < 0.05


def test_a_job_much_quicker_than_learned_is_still_seen_within_about_half_its_duration():
    history = learned_from([(0.5, 2.0)] * 5)
    waited = simulate(0.17, 0.67, history)
    assert waited.lag <= 0.5 * 0.84 and len(waited.polls) <= 3


def test_a_job_slower_than_learned_is_polled_no_more_than_half_a_second_apart_once_overdue():
    history = learned_from([(0.5, 2.0)] * 5)
    waited = simulate(1.5, 6.0, history)
    schedule = PollSchedule()
    late = [gap for poll, gap in zip(waited.polls, waited.gaps) if poll > 3.5]
    assert late and max(late) <= schedule.overdue_cap + 0.01
    assert waited.lag <= schedule.overdue_cap + ROUND_TRIP
    assert len(waited.polls) <= 1.5 * (7.5 + 2)


def _iso_seconds(moment: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def step_until_recorded(sandbox, count: int):
    """Work for `beside`: each job held until a poll saw it queued, then running until the client
    recorded its start, and ended only once the server's duration is longer than that start: the
    record counts from the client's submit, the duration from the server's creation, and on a busy
    machine the submit reaches the server late. All events; the last a moment computed from them."""

    def step(request_id: str) -> None:
        wait_until(lambda: job_polls(sandbox, request_id) >= 1, "a poll while queued")
        sandbox.start_job(request_id)
        with History() as history:
            wait_until(lambda: getattr(history.get(request_id), "started_at", None), "the start to be recorded")
            entry = history.get(request_id)
        running_by = _iso_seconds(entry.started_at) - _iso_seconds(entry.submitted_at)
        ends_after = sandbox.job(request_id).created_at + running_by
        wait_until(lambda: time.time() > ends_after + 0.01, "the server's duration to pass the recorded start")
        sandbox.finish_job(request_id)

    def work() -> None:
        for index in range(count):
            wait_until(lambda index=index: len(sandbox.jobs()) > index, f"job {index + 1}")
            step(sandbox.jobs()[index].request_id)

    return work


def test_generate_records_each_jobs_queue_and_run(start_sandbox, cli, monkeypatch):
    """Each job's recorded start bounds lie in order, whatever the machine's speed.
    (That the next job is planned from them: test_a_learned_duration_lets_the_next_job_skip_useless_polls.)"""
    monkeypatch.delenv("NANOBANANA_POLL_INTERVAL")  # the real plan
    sandbox = start_sandbox(queue_seconds=HELD)
    with beside(step_until_recorded(sandbox, 2), sandbox):
        for _ in range(2):
            assert cli("generate", "a fox", "-o", "out").exit_code == 0
    rows = History().timings(sandbox.base_url)
    assert len(rows) == 2
    for row in rows:  # the job began running between the last answer saying in_queue and the first saying otherwise
        assert row["running_by"] is not None, row
        assert 0 < row["queued_after"] < row["running_by"] <= row["total"], row


def test_only_a_job_just_submitted_is_planned_from_earlier_jobs_timings(sandbox, cli, monkeypatch):
    from nanobanana_cli.engine import polling

    plans: list[Expectation | None] = []

    def spy(*args, expectation=None, **kwargs):
        plans.append(expectation)
        return wait_for_result(*args, expectation=expectation, **kwargs)

    monkeypatch.setattr(polling, "wait_for_result", spy)
    for _ in range(2):
        assert cli("generate", "a fox", "-o", "out").exit_code == 0
    request_id = cli("generate", "a fox", "--no-wait", "--quiet").stdout.strip()
    # timings count from a submit: for a job another command submitted they would mislead the plan
    assert cli("watch", request_id, "-o", "out").exit_code == 0
    assert not plans[0] and len(plans[1].jobs) == 1 and plans[2] is None


def test_a_just_submitted_jobs_plan_counts_from_its_submits_answer_not_from_the_journal_write_after_it(sandbox, monkeypatch):
    """Earlier jobs' durations run from their creation, which comes before the submit's answer: the plan
    counts from the answer's arrival, the nearest moment sure not to be early, not from the bookkeeping after it."""
    from nanobanana_cli.api.retry import Clock
    from nanobanana_cli.engine import polling
    from nanobanana_cli.engine.lifecycle import Jobs

    reads: list[tuple[float, int]] = []  # each clock reading, with how many POSTs the sandbox had answered by then

    def monotonic() -> float:
        reads.append((float(len(reads)), sum(r.method == "POST" for r in sandbox.stats.requests)))
        return reads[-1][0]

    class Journal(History):
        journaled_after: float | None = None  # the clock readings made before the journal heard the answer

        def submitted(self, ticket: str, request_id: str) -> None:
            self.journaled_after = float(len(reads))
            super().submitted(ticket, request_id)

    begun: list[float | None] = []

    def spy(*args, since=None, **kwargs):
        begun.append(since)
        return wait_for_result(*args, since=since, **kwargs)

    monkeypatch.setattr(polling, "wait_for_result", spy)
    with Journal() as history, Client(sandbox.token, sandbox.base_url, clock=Clock(monotonic=monotonic), journal=history) as client:
        jobs = Jobs(client, history)
        generation = GenerationInput("a fox")
        jobs.finish(jobs.submit(generation).request_id, generation, just_submitted=True)
    answered = min(moment for moment, posts in reads if posts == 1)  # the first reading once the POST was answered
    assert begun == [answered] and history.journaled_after is not None and answered < history.journaled_after


def test_the_poll_interval_override_caps_every_gap(monkeypatch):
    monkeypatch.setenv("NANOBANANA_POLL_INTERVAL", "0.05")
    waited = simulate(0.5, 2.0, learned_from([(0.5, 2.0)] * 3), PollSchedule.from_env())
    assert max(waited.gaps) <= 0.05 + ROUND_TRIP + 1e-9
    monkeypatch.setenv("NANOBANANA_POLL_INTERVAL", "soon")
    assert PollSchedule.from_env() == PollSchedule()


def test_the_history_gives_the_poller_each_jobs_timeline(tmp_path):
    with History(tmp_path / "h.sqlite3") as history:
        for number, num_images in enumerate((1, 4, 4)):
            request_id = f"job-{number}"
            history.record_submission(request_id, GenerationInput("a fox", num_images=num_images), "http://api")
            submitted = history.get(request_id).submitted_at
            history.update(request_id, status="succeeded", duration_seconds=3.0, started_at=_plus(submitted, 1.0),
                           event=("running", {"queued_until": _plus(submitted, 0.6)}))
        history.record_submission("not-seen-running", GenerationInput("a fox", num_images=4), "http://api")
        history.update("not-seen-running", status="succeeded", duration_seconds=2.5)
        history.record_submission("elsewhere", GenerationInput("a fox"), "http://other")
        history.update("elsewhere", status="succeeded", duration_seconds=9.0)
        rows = history.timings("http://api")
        expectation = Expectation.from_history(history, "http://api", 4)
    assert len(rows) == 4 and {row["total"] for row in rows} == {3.0, 2.5}
    seen = [row for row in rows if row["running_by"] is not None]
    assert all(row["running_by"] == pytest.approx(1.0, abs=0.01) for row in seen)
    assert all(row["queued_after"] == pytest.approx(0.6, abs=0.01) for row in seen)
    # jobs with as many images are preferred: three of them here, one never seen running
    assert sorted(job.total for job in expectation.jobs) == [2.5, 3.0, 3.0]
    assert Expectation.from_history(None, "http://api") == Expectation()


def _plus(iso: str, seconds: float) -> str:
    from datetime import datetime, timedelta

    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_real_wait_with_a_learned_duration_makes_few_requests(start_sandbox, monkeypatch):
    """The poll count only: load can delay a poll, never bring one forward, so it can only lower the
    count. How promptly the finish is seen is checked in virtual time above and measured by
    benchmarks/ (the learned-duration overhead)."""
    monkeypatch.delenv("NANOBANANA_POLL_INTERVAL")  # the real plan, not the tests' fast one
    sandbox = start_sandbox(queue_seconds=0.2, run_seconds=0.8)
    expectation = learned_from([(0.2, 0.8)] * 3)
    with Client(sandbox.token, sandbox.base_url) as client:
        request_id = client.submit(GenerationInput("a fox")).request_id
        before = len(sandbox.stats.requests)
        result = wait_for_result(client, request_id, expectation=expectation)
    assert result.succeeded
    polls = [r for r in sandbox.stats.requests[before:] if r.listener == "api" and r.method == "GET"]
    assert len(polls) <= 3, [r.path for r in polls]


def test_a_real_wait_without_history_tells_the_listener_of_each_state(start_sandbox, monkeypatch):
    """How many polls a job of a given length takes with no history is the plan's business, checked
    in virtual time above; here each state the job passes through reaches the listener, in order."""
    monkeypatch.delenv("NANOBANANA_POLL_INTERVAL")
    sandbox = start_sandbox(queue_seconds=HELD)
    updates: list[str] = []
    with Client(sandbox.token, sandbox.base_url) as client:
        request_id = client.submit(GenerationInput("a fox")).request_id
        with beside(lambda: step_job(sandbox, request_id), sandbox):
            result = wait_for_result(client, request_id, on_update=lambda status, elapsed: updates.append(status.status))
    *waiting, _ = updates  # the last answer is the finished job
    assert result.succeeded and waiting[0] == "in_queue" and "in_progress" in waiting, updates
    assert waiting == sorted(waiting, key=["in_queue", "in_progress"].index), updates
