"""Sandbox jobs: their timetable, the public view tests read, and cheap queue bookkeeping."""

from __future__ import annotations

import heapq
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
    """One submitted job. Its whole timetable is fixed at submit; only a cancel changes it."""

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
            self._leave_queue(heapq.heappop(self._queue_ends)[2])
        while self._run_ends and self._run_ends[0][0] <= now:
            self._retire(heapq.heappop(self._run_ends)[2])

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
