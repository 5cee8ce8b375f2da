"""Sandbox jobs: their timetable, the public view tests read, and cheap queue bookkeeping.

A job's timetable is fixed at submit, with one exception for tests that must not depend on the
machine's speed: a job submitted with an endless queue (or run) time stays there until the test
moves it on itself (`JobQueue.start` / `JobQueue.finish`, through `Sandbox.start_job` and
`Sandbox.finish_job`), once it has seen what it waits for (a poll, a line on stderr, a manifest
record). Nothing else rewrites a timetable.
"""

from __future__ import annotations

import heapq
import math
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any

from .models import SandboxModel

IN_QUEUE = "in_queue"
IN_PROGRESS = "in_progress"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED})


@dataclass(frozen=True)
class Asset:
    data: bytes
    content_type: str


@dataclass(eq=False)
class Job:
    """One submitted job. Its whole timetable is fixed at submit; only a cancel, or a test moving a
    held job on (`JobQueue.start` / `finish`), changes it."""

    request_id: str
    model: SandboxModel
    input: dict[str, Any]
    fails: bool
    queue_seconds: float
    run_seconds: float
    created: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)
    sequence: int = -1  # submit order, set by JobQueue.add
    cancelled_at: float | None = None  # monotonic
    images: dict[int, bytes] = field(default_factory=dict)  # rendered files, by 1-based index
    inputs: tuple[bytes, ...] = ()  # an edit's input images, decoded, in the order given
    error: str | None = None  # why the job fails, when the sandbox knows (an input it would not fetch)
    left_queue: bool = False  # bookkeeping flags, owned by JobQueue
    retired: bool = False

    @property
    def queue_end(self) -> float:
        return self.created + self.queue_seconds

    @property
    def run_end(self) -> float:
        return self.queue_end + self.run_seconds

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    def state(self, now: float) -> str:
        """The state `/result` reports at monotonic time `now`."""
        if self.cancelled_at is not None:
            return CANCELLED
        if now < self.queue_end:
            return IN_QUEUE
        if now < self.run_end:
            return IN_PROGRESS
        return FAILED if self.fails else SUCCEEDED

    @property
    def finished_at(self) -> float:
        """When the job ended, or will end, on the wall clock: what `finished_at` reports."""
        ended = self.cancelled_at if self.cancelled_at is not None else self.run_end
        return self.created_wall + (ended - self.created)


@dataclass(frozen=True)
class JobView:
    """A job as tests and benchmarks see it: a snapshot, safe to keep."""

    request_id: str
    model_id: str
    input: dict[str, Any]
    state: str  # as /result says: in_queue, in_progress, succeeded, failed or cancelled
    cancelled: bool
    fails: bool
    queue_seconds: float
    run_seconds: float
    queue_position: int | None  # 1-based while in_queue
    created_at: float  # wall clock (time.time())
    finished_at: float  # wall clock: when it ended, or will end


def _span_to(start: float, moment: float) -> float:
    """Seconds from `start` that reach no further than `moment`: a moved job is in its new state at
    `moment` itself, whatever floating point rounding does to `start + (moment - start)`."""
    span = moment - start
    while start + span > moment:
        span = math.nextafter(span, -math.inf)
    return span


class JobQueue:
    """How many jobs are in flight and where each queued job stands, without scanning the jobs.

    Callers hold the sandbox's lock. Jobs leave the queue and finish on timetables fixed at
    submit, so two heaps of those times tell which jobs moved on since the last look (O(log n)
    per change), and `_queued`, the sequence numbers still queued in order, turns a queue position
    into one bisect. Leaving the queue deletes from that list: a memmove, not a Python-level scan.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self._next_sequence = 0
        self._queued: list[int] = []
        self._queue_ends: list[tuple[float, int, Job]] = []
        self._run_ends: list[tuple[float, int, Job]] = []

    def add(self, job: Job, now: float) -> None:
        job.sequence = self._next_sequence
        self._next_sequence += 1
        self.in_flight += 1
        self._queued.append(job.sequence)  # the newest sequence: the list stays sorted
        heapq.heappush(self._queue_ends, (job.queue_end, job.sequence, job))
        heapq.heappush(self._run_ends, (job.run_end, job.sequence, job))
        self.advance(now)

    def advance(self, now: float) -> None:
        """Account for every job that left the queue or finished by `now`."""
        while self._queue_ends and self._queue_ends[0][0] <= now:
            end, _, job = heapq.heappop(self._queue_ends)
            if end == job.queue_end:  # else an entry a moved timetable left behind
                self._leave_queue(job)
        while self._run_ends and self._run_ends[0][0] <= now:
            end, _, job = heapq.heappop(self._run_ends)
            if end == job.run_end:
                self._retire(job)

    def start(self, job: Job, now: float) -> bool:
        """Move a queued job to in_progress at `now`, running until `finish`; False if it left the queue."""
        self.advance(now)
        if job.left_queue:
            return False
        self._reschedule(job, now, queue_seconds=_span_to(job.created, now), run_seconds=math.inf)
        return True

    def finish(self, job: Job, now: float) -> bool:
        """End a queued or running job at `now`, with the outcome fixed at submit; False if it had ended."""
        self.advance(now)
        if job.retired:
            return False
        queue_seconds = job.queue_seconds if job.left_queue else _span_to(job.created, now)
        self._reschedule(job, now, queue_seconds=queue_seconds, run_seconds=_span_to(job.created + queue_seconds, now))
        return True

    def _reschedule(self, job: Job, now: float, *, queue_seconds: float, run_seconds: float) -> None:
        # Old entries stay in the heaps and `advance` skips them, their times no longer matching; an
        # unchanged time gets no second entry (two equal entries would compare their jobs).
        queue_end, run_end = job.queue_end, job.run_end
        job.queue_seconds, job.run_seconds = queue_seconds, run_seconds
        if job.queue_end != queue_end:
            heapq.heappush(self._queue_ends, (job.queue_end, job.sequence, job))
        if job.run_end != run_end:
            heapq.heappush(self._run_ends, (job.run_end, job.sequence, job))
        self.advance(now)

    def position(self, job: Job, now: float) -> int | None:
        self.advance(now)
        return None if job.left_queue else bisect_left(self._queued, job.sequence) + 1

    def cancel(self, job: Job, now: float) -> bool:
        """Cancel a job that is still queued; False once it has started (or ended)."""
        self.advance(now)
        if job.left_queue:
            return False
        job.cancelled_at = now
        self._leave_queue(job)
        self._retire(job)
        return True

    def _leave_queue(self, job: Job) -> None:
        # a cancelled job's heap entry is still there when its time comes: skip it then
        if not job.left_queue:
            job.left_queue = True
            del self._queued[bisect_left(self._queued, job.sequence)]

    def _retire(self, job: Job) -> None:
        if not job.retired:
            job.retired = True
            self.in_flight -= 1
