"""Waiting for a job: adaptive polling under a wall-clock deadline that retries cannot stretch."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..api.models import COMPLETED, JobResult, JobStatus
from ..api.retry import DeadlineReached
from ..errors import InterruptedWaitError, WaitTimeoutError

if TYPE_CHECKING:
    from ..api.client import Client

POLL_INTERVAL_ENV = "NANOBANANA_POLL_INTERVAL"


@dataclass(frozen=True)
class PollSchedule:
    """Short first intervals catch quick jobs; the cap bounds both latency and request rate.

    With an expected duration (learned from the job history) the wait skips the polls that
    would only find the job unfinished: it sleeps towards the expected finish, at most
    `max_jump` at a time so a quicker job is not kept waiting, then polls densely around it.
    """

    first: float = 0.25
    factor: float = 1.5
    cap: float = 1.0
    max_jump: float = 3.0
    dense_first: float = 0.15
    dense_factor: float = 2.0
    margin: float = 0.05

    @classmethod
    def from_env(cls) -> PollSchedule:
        override = os.environ.get(POLL_INTERVAL_ENV)
        if override:
            try:
                cap = max(0.0, float(override))
            except ValueError:
                return cls()
            return cls(first=min(cls.first, cap), cap=cap, max_jump=max(cap, 0.0), dense_first=min(cls.dense_first, cap))
        return cls()

    def intervals(self) -> Iterator[float]:
        interval = self.first
        while True:
            yield interval
            interval = min(self.cap, interval * self.factor)

    def dense(self) -> PollSchedule:
        return PollSchedule(first=self.dense_first, factor=self.dense_factor, cap=self.cap)


UpdateListener = Callable[[JobStatus, float], None]


class _Waiter:
    """One wait: the poll loop's state, so each step stays small."""

    def __init__(
        self, client: Client, request_id: str, timeout: float | None, schedule: PollSchedule, expected: float | None
    ) -> None:
        self.client = client
        self.request_id = request_id
        self.timeout = timeout
        self.schedule = schedule
        self.intervals = schedule.intervals()
        self.expected = expected
        self.started = client.clock.monotonic()
        self.deadline = self.started + timeout if timeout is not None else None
        self.last_state: str | None = None

    def elapsed(self) -> float:
        return self.client.clock.monotonic() - self.started

    def timed_out(self, state: str | None) -> WaitTimeoutError:
        # No state yet: the first poll itself was cut off (a server trickling its answer, say).
        where = f"job {self.request_id} is still {state}" if state else f"no answer about job {self.request_id} yet"
        return WaitTimeoutError(f"gave up waiting after {self.timeout:g}s; {where}", request_id=self.request_id)

    def poll(self) -> tuple[JobStatus, JobResult | None]:
        """While queued ask `/status` (the only source of a queue position); after that, or once the
        job is expected to be done, `/result`, which answers with the live state until it is finished."""
        past_expected = self.expected is not None and self.elapsed() >= self.expected
        try:
            if self.last_state in (None, "in_queue") and not past_expected:
                status = self.client.status(self.request_id, deadline=self.deadline)
                result = self.client.result(self.request_id, deadline=self.deadline) if not status.is_running else None
            else:
                result = self.client.result(self.request_id, deadline=self.deadline)
                status = JobStatus(self.request_id, COMPLETED if result.is_finished else result.status, result.queue_position)
        except DeadlineReached:
            raise self.timed_out(self.last_state) from None
        self.last_state = status.status
        if status.status == COMPLETED and result is not None and not result.is_finished:
            # /status and /result disagree for a moment around completion; poll /result next.
            self.last_state = result.status
        return status, result

    def next_delay(self) -> float:
        delay = next(self.intervals)
        if self.expected is not None:
            until_expected = self.started + self.expected + self.schedule.margin - self.client.clock.monotonic()
            if until_expected > delay:
                delay = min(until_expected, max(delay, self.schedule.max_jump))
                if delay == until_expected:  # the next poll lands on the expected finish: dense from there
                    self.intervals = self.schedule.dense().intervals()
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
    expected_seconds: float | None = None,
) -> JobResult:
    """Poll until the job is finished and return `/result`'s answer (succeeded, failed or cancelled).

    `timeout` bounds the whole wait, retries and Retry-After included.
    """
    waiter = _Waiter(client, request_id, timeout, schedule or PollSchedule.from_env(), expected_seconds)
    stop = stop or threading.Event()
    while True:
        if stop.is_set():
            raise InterruptedWaitError(f"stopped waiting for job {request_id}")
        status, result = waiter.poll()
        if on_update:
            on_update(status, waiter.elapsed())
        if result is not None and result.is_finished:
            return result
        stop.wait(waiter.next_delay())
