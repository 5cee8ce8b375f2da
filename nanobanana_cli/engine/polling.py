"""Waiting for a job: adaptive polling, a deadline, and Ctrl-C that never loses the job."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InterruptedWaitError, WaitTimeoutError
from ..api.models import COMPLETED, JobResult, JobStatus

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


UpdateListener = Callable[[JobStatus, float], None]


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

    While queued we ask `/status`, the only endpoint that reports a queue position; after that
    (or once the job is expected to be done) `/result`, which answers with the live state until
    the job is finished, so one request per poll.
    """
    started = time.monotonic()
    deadline = started + timeout if timeout is not None else None
    schedule = schedule or PollSchedule.from_env()
    intervals = schedule.intervals()
    last_state: str | None = None
    stop = stop or threading.Event()
    while True:
        if stop.is_set():
            raise InterruptedWaitError(f"stopped waiting for job {request_id}", hint=f"resume with: nanobanana watch {request_id}")
        past_expected = expected_seconds is not None and time.monotonic() - started >= expected_seconds
        if last_state in (None, "in_queue") and not past_expected:
            status = client.status(request_id)
            result = client.result(request_id) if not status.is_running else None
        else:
            result = client.result(request_id)
            status = JobStatus(request_id, "completed" if result.is_finished else result.status, result.queue_position)
        last_state = status.status
        if on_update:
            on_update(status, time.monotonic() - started)
        if result is not None and result.is_finished:
            return result
        if status.status == COMPLETED and result is not None and not result.is_finished:
            # /status and /result disagree for a moment around completion; poll /result next.
            last_state = result.status
        delay = next(intervals)
        if expected_seconds is not None:
            until_expected = started + expected_seconds + schedule.margin - time.monotonic()
            if until_expected > delay:
                delay = min(until_expected, max(delay, schedule.max_jump))
                if delay == until_expected:  # the next poll lands on the expected finish: dense from there
                    intervals = PollSchedule(first=schedule.dense_first, factor=schedule.dense_factor, cap=schedule.cap).intervals()
        if deadline is not None and time.monotonic() + delay > deadline:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(
                    f"gave up waiting after {timeout:g}s; job {request_id} is still {status.status}",
                    request_id=request_id,
                    hint=f"resume with: nanobanana watch {request_id}",
                )
            delay = remaining
        stop.wait(delay)


@contextmanager
def resumable(request_id: str) -> Iterator[None]:
    """Turn Ctrl-C during a wait into an error that names the job and how to resume it.

    The job itself is left alone: cancelling on Ctrl-C would surprise anyone who only meant to
    stop watching.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise InterruptedWaitError(
            f"interrupted; job {request_id} was not cancelled and keeps running",
            hint=f"resume with: nanobanana watch {request_id}",
        ) from None


@contextmanager
def submitting() -> Iterator[None]:
    """Ctrl-C while a submit is in flight: the job may exist, so say so rather than exit silently."""
    try:
        yield
    except KeyboardInterrupt:
        raise InterruptedWaitError(
            "interrupted while submitting; a job may have been created and billed",
            hint="check `nanobanana history` or your RunComfy dashboard before submitting again",
        ) from None
