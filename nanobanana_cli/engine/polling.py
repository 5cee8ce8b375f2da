"""Waiting for a job: polls planned from what earlier jobs took, under a wall-clock deadline that retries cannot stretch.

Every poll is a request the user's account pays for in rate limits, and every moment between a job's
finish and the poll that sees it is time the user waits. The plan spends polls where the job may
finish (times in seconds since the submit's answer arrived):

- No history: the first poll at 0.25 s, then every 0.4 s, widening to 0.75 s from about 4 s on
  (the elapsed time / 5): a median detection lag of 0.2 to 0.4 s, for 1.3x to 1.6x the requests of
  a 1 s poller, and never a longer gap than 0.75 s.
- History (see `Expectation`): earlier jobs give a window in which this one should finish: its
  start (as seen by polling) plus the learned run time, narrowed to the learned whole durations when
  those vary less than the run time is known to. Before the window polls climb a ladder (each gap
  the time elapsed, at least 0.5 s, none when the window is within two of them), so a job much
  quicker than learned is seen within about its duration again; while queued, when queue waits
  vary, polls are also sqrt(mean queue wait x dense) apart, the spacing that best trades polls now
  against a narrower window later. Inside the window polls are `dense` apart and end exactly at its
  close; past it the job is slower than learned and gaps widen to `overdue_cap`. A job queued far
  longer than any before is unlike them: no dense window.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..api.models import JobResult, JobStatus
from ..api.retry import DeadlineReached
from ..errors import InterruptedWaitError, WaitTimeoutError
from ..states import JobState

if TYPE_CHECKING:
    from ..api.client import Client

POLL_INTERVAL_ENV = "NANOBANANA_POLL_INTERVAL"
# Hears each answer while the job is waited on: its status and the seconds since the wait began.
UpdateListener = Callable[[JobStatus, float], None]


# NamedTuples rather than dataclasses: every command that waits imports this module, and a dataclass
# costs ~1 ms to define where a NamedTuple costs a tenth of that.
class PastJob(NamedTuple):
    """One earlier job's timeline, in seconds from its submit."""

    total: float  # to its finish, by the server's own clock
    queued_after: float = 0.0  # running began after this (the last answer that said in_queue) ...
    running_by: float | None = None  # ... and by this (the first that said running); None: never seen running


class Expectation(NamedTuple):
    """What earlier jobs on this API (with as many images, when there are such) say about the next one."""

    jobs: tuple[PastJob, ...] = ()

    @classmethod
    def from_history(cls, history: Any, base_url: str, num_images: int | None = None) -> Expectation:
        """From `History.timings`: the latest succeeded jobs on this API, those with `num_images` if
        there are two or more (the run time grows with the images), else all of them."""
        rows = history.timings(base_url) if history is not None else []
        same = [row for row in rows if row.get("num_images") == num_images]
        jobs = [
            PastJob(row["total"], row.get("queued_after") or 0.0, row.get("running_by"))
            for row in (same if len(same) >= 2 else rows)
            if row.get("total") is not None and row["total"] >= 0
        ]
        return cls(tuple(jobs))

    def __bool__(self) -> bool:  # a tuple of one field is always true: what counts is whether it learned anything
        return bool(self.jobs)


class PollSchedule(NamedTuple):
    """The plan's constants (see the module docstring); `max_gap` caps every gap (NANOBANANA_POLL_INTERVAL)."""

    first: float = 0.25
    steady: float = 0.4
    cap: float = 0.75
    settle: float = 5.0  # with no history a gap is the elapsed time / settle, within [steady, cap]
    ladder_floor: float = 0.5
    dense: float = 0.15
    overdue_cap: float = 0.5
    early: float = 0.05  # the window opens this much before the earliest learned finish ...
    late: float = 0.01  # ... and closes this much after the latest: network and clock noise
    max_gap: float = math.inf

    @classmethod
    def from_env(cls) -> PollSchedule:
        override = os.environ.get(POLL_INTERVAL_ENV)
        if override:
            try:
                return cls(max_gap=max(0.0, float(override)))
            except ValueError:
                pass
        return cls()


Span = tuple[float, float]


def _span(values: Sequence[float]) -> Span | None:
    """Lowest and highest of a handful of samples, ignoring the single most extreme at each end of eight or more."""
    ordered = sorted(values)
    if not ordered:
        return None
    trim = 1 if len(ordered) >= 8 else 0
    return ordered[trim], ordered[-1 - trim]


class Learned:
    """Earlier jobs reduced to spans of seconds: whole durations, queue waits, and run times."""

    def __init__(self, expectation: Expectation) -> None:
        seen = [(job, job.running_by) for job in expectation.jobs if job.running_by is not None]
        self.total = _span([job.total for job in expectation.jobs])
        # when each job began running, as well as it is known: the middle of its bounds
        self.starts = sorted((job.queued_after + running_by) / 2 for job, running_by in seen)
        self.latest_start: float = max((running_by for _, running_by in seen), default=0.0)
        self.run = self._run_time(seen)

    @staticmethod
    def _run_time(seen: list[tuple[PastJob, float]]) -> Span | None:
        """Each job bounds its run time between total - running_by and total - queued_after. When the
        bounds of all jobs overlap, one run time explains them all and lies in the overlap (a narrow
        span, however coarsely each start was seen); otherwise run times vary, over the bounds' spread."""
        if not seen:
            return None
        lows = sorted(job.total - running_by for job, running_by in seen)
        highs = sorted(job.total - job.queued_after for job, _ in seen)
        if lows[-1] <= highs[0]:
            return lows[-1], highs[0]
        trim = 1 if len(seen) >= 8 else 0  # as `_span`: one odd job does not widen the span
        return lows[trim], highs[-1 - trim]


class Plan:
    """When to poll next, from what the job has been seen doing and what earlier jobs took. No I/O.

    `observe` each answer; `next_poll` gives the elapsed time of the next poll (the first one too).
    """

    def __init__(self, expectation: Expectation | None, schedule: PollSchedule) -> None:
        self.learned = Learned(expectation or Expectation())
        self.schedule = schedule
        self.queued_until = 0.0  # the job surely began running after this (the last answer saying in_queue)
        self.running_from: float | None = None  # the first answer saying it was running
        self.polls = 0

    def observe(self, at: float, state: str | None) -> None:
        self.polls += 1
        if state == JobState.IN_QUEUE and self.running_from is None:
            self.queued_until = at
        elif state is not None and self.running_from is None:
            self.running_from = at

    def window(self) -> Span | None:
        """When the job should finish, (earliest, latest), or None with nothing learned."""
        learned, s = self.learned, self.schedule
        if learned.run is None:
            return (learned.total[0] - s.early, learned.total[1] + s.late) if learned.total else None
        low, high = self._own_window(learned.run)
        total = learned.total
        # Whole durations that vary less than the run time is known to: queue and run barely vary (the
        # run time is only known coarsely because starts were seen coarsely). Like the earlier jobs so
        # far, this one should take as long as they did.
        if total and total[1] - total[0] <= learned.run[1] - learned.run[0] and total[0] <= high and low <= total[1]:
            low, high = max(low, total[0]), min(high, total[1])
        return low - s.early, high + s.late

    def _own_window(self, run: Span) -> Span:
        if self.running_from is not None:
            return self.queued_until + run[0], self.running_from + run[1]
        later = [start for start in self.learned.starts if start > self.queued_until]
        if not later:  # queued longer than any earlier job: it may start any moment
            return self.queued_until + run[0], math.inf
        return max(self.queued_until, later[0]) + run[0], later[-1] + run[1]

    def next_poll(self, now: float) -> float:
        gap = self._gap(now, self.window())
        return now + max(0.0, min(gap, self.schedule.max_gap))

    def _gap(self, now: float, window: Span | None) -> float:
        s = self.schedule
        if window is None:
            if self.polls == 0:
                return s.first
            return min(s.cap, max(s.steady, now / s.settle))
        low, high = window
        # At most about eight polls across a wide window (run times that vary a lot): sparser, not more of them.
        dense = s.overdue_cap if self._unlike_the_others() else min(s.overdue_cap, max(s.dense, (high - low) / 8))
        if now >= high:  # slower than ever learned: widen from dense, to no more than overdue_cap
            return min(s.overdue_cap, dense + (now - high) / 2)
        # polls `dense` apart end exactly at `high`, so a finish at the latest learned moment is seen at once
        first_dense = high - math.floor((high - low) / dense) * dense if high < math.inf else math.inf
        if now >= first_dense - 1e-6:
            return high - math.floor((high - now - 1e-6) / dense) * dense - now
        step = max(s.ladder_floor, now)  # each gap at most the time elapsed: a quicker job waits at most half again
        if self.running_from is None:
            step = min(step, self._queue_gap(now))
        # a step that would land less than another step short of the window's opening lands on the
        # window instead (so a job learned to take a second is polled once, at its expected finish)
        return first_dense - now if first_dense < math.inf and now + 2 * step >= low else step

    def _unlike_the_others(self) -> bool:
        """Queued well past every earlier job's start: what they took says little about this one, so
        polls in its window are no denser than past it (a dense window would mostly be wasted)."""
        starts = self.learned.starts
        return bool(starts) and self.queued_until > starts[-1] + max(starts[-1] - starts[0], self.schedule.ladder_floor)

    def _queue_gap(self, now: float) -> float:
        """While queued, polls this far apart bound the start closely enough for a narrow window. For a
        queue wait Q, polls every g cost Q / g now and about g / dense in the window later: g =
        sqrt(Q * dense) spends least. Worth it only when queue waits vary: a steady one already tells
        when running will begin."""
        starts = self.learned.starts
        if not starts or self._unlike_the_others():
            return math.inf  # no queue waits learned, or a sparse window ahead: knowing the start buys nothing
        if now > self.learned.latest_start:  # queued longer than any earlier job: as long again, say
            return max(self.schedule.dense, math.sqrt(now * self.schedule.dense))
        if len(starts) > 1 and starts[-1] - starts[0] <= self.schedule.ladder_floor:
            return math.inf
        return max(self.schedule.dense, math.sqrt(sum(starts) / len(starts) * self.schedule.dense))


class _Waiter:
    """One wait: the poll loop's state, so each step stays small."""

    def __init__(self, client: Client, request_id: str, timeout: float | None, plan: Plan, since: float | None = None) -> None:
        self.client = client
        self.request_id = request_id
        self.timeout = timeout
        self.plan = plan
        now = client.clock.monotonic()
        self.started = now if since is None else min(since, now)  # where the plan's elapsed times count from
        self.deadline = now + timeout if timeout is not None else None
        self.last_state: str | None = None

    def elapsed(self) -> float:
        return self.client.clock.monotonic() - self.started

    def timed_out(self, state: str | None) -> WaitTimeoutError:
        # No state yet: the first poll itself was cut off (a server trickling its answer, say).
        where = f"job {self.request_id} is still {state}" if state else f"no answer about job {self.request_id} yet"
        return WaitTimeoutError(f"gave up waiting after {self.timeout:g}s; {where}", request_id=self.request_id)

    def poll(self) -> tuple[JobStatus, JobResult | None]:
        """While queued ask `/status` (the only source of a queue position); once the job runs, or may
        have finished, `/result`, which answers with the live state until it is finished and the
        outcome after, so the poll that sees the finish costs no second request."""
        window = self.plan.window()
        may_be_done = window is not None and self.elapsed() >= window[0]
        try:
            if self.last_state in (None, JobState.IN_QUEUE) and not may_be_done:
                status = self.client.status(self.request_id, deadline=self.deadline)
                result = self.client.result(self.request_id, include_cost=True, deadline=self.deadline) if not status.is_running else None
            else:
                result = self.client.result(self.request_id, include_cost=True, deadline=self.deadline)
                status = JobStatus(self.request_id, JobState.COMPLETED if result.is_finished else result.status, result.queue_position)
        except DeadlineReached:
            raise self.timed_out(self.last_state) from None
        self.last_state = status.status
        if status.status == JobState.COMPLETED and result is not None and not result.is_finished:
            # /status and /result disagree for a moment around completion; poll /result next.
            self.last_state = result.status
        self.plan.observe(self.elapsed(), self.last_state)
        return status, result

    def next_delay(self) -> float:
        now = self.elapsed()
        delay = self.plan.next_poll(now) - now
        if self.deadline is not None:
            remaining = self.deadline - self.client.clock.monotonic()
            if remaining <= 0:
                raise self.timed_out(self.last_state)
            delay = min(delay, remaining)
        return delay


def wait_for_result(
    client: Client,
    request_id: str,
    *,
    timeout: float | None = None,
    on_update: UpdateListener | None = None,
    schedule: PollSchedule | None = None,
    stop: threading.Event | None = None,
    expectation: Expectation | None = None,
    since: float | None = None,
) -> JobResult:
    """Poll until the job is finished and return `/result`'s answer (succeeded, failed or cancelled).

    `timeout` bounds the whole wait, retries and Retry-After included. `expectation` (learned queue
    and run times, see `Expectation.from_history`) plans the polls, in seconds from `since` (the
    client clock's moment the submit's answer arrived; default now): the bookkeeping after it (the
    journal's write, the history's) must not delay the poll planned for the job's finish.
    """
    plan = Plan(expectation, schedule or PollSchedule.from_env())
    waiter = _Waiter(client, request_id, timeout, plan, since)
    stop = stop or threading.Event()
    while True:
        # The first poll waits too: a job is never done the moment it is submitted.
        stop.wait(waiter.next_delay())
        if stop.is_set():
            raise InterruptedWaitError(f"stopped waiting for job {request_id}")
        status, result = waiter.poll()
        if on_update:
            on_update(status, waiter.elapsed())
        if result is not None and result.is_finished:
            return result
