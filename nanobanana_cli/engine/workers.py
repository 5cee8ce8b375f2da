"""The one worker pool: bounded concurrency, results as they finish, and a stop that never waits.

Downloads, `watch` and `batch` all run through `run_concurrently`. Its threads are daemons and
are never joined after a stop, so Ctrl-C or SIGTERM ends the process at once even while a worker
is blocked on a slow server; each worker notices `stop` at its next check and tidies up.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# How often the consuming thread wakes while waiting, so a signal handler gets to run promptly.
WAKE_SECONDS = 0.2


def run_concurrently(
    items: Sequence[Item],
    work: Callable[[Item], Result],
    *,
    max_workers: int,
    stop: threading.Event,
    in_order: bool = False,
) -> Iterator[Result]:
    """Yield `work(item)` for every item, as each finishes (or in input order with `in_order`).

    An exception raised by `work` is re-raised here, in the consuming thread. If the consumer is
    interrupted (or stops iterating), `stop` is set, queued items are never started and the
    running ones are left to notice `stop` on their own. A single item runs in the consuming thread.
    """
    if not items:
        return
    if len(items) == 1:  # nothing to overlap: run it here, with no thread to start and hand the result back
        try:
            yield work(items[0])
        except BaseException:
            stop.set()
            raise
        return
    pending: queue.SimpleQueue[tuple[int, Item]] = queue.SimpleQueue()
    for position, item in enumerate(items):
        pending.put((position, item))
    finished: queue.SimpleQueue[tuple[int, bool, object]] = queue.SimpleQueue()

    def worker() -> None:
        while not stop.is_set():
            try:
                position, item = pending.get_nowait()
            except queue.Empty:
                return
            try:
                finished.put((position, True, work(item)))
            except BaseException as exc:  # handed to the consumer, which decides what it means
                finished.put((position, False, exc))

    for _ in range(max(1, min(max_workers, len(items)))):
        threading.Thread(target=worker, daemon=True).start()
    try:
        yield from _collect(finished, len(items), in_order)
    except BaseException:
        stop.set()
        raise


def _collect(finished: queue.SimpleQueue[tuple[int, bool, object]], count: int, in_order: bool) -> Iterator[Result]:
    held: dict[int, tuple[bool, object]] = {}
    next_position = 0
    for _ in range(count):
        position, ok, value = _next_finished(finished)
        if not in_order:
            yield _unwrap(ok, value)
            continue
        held[position] = (ok, value)
        while next_position in held:
            yield _unwrap(*held.pop(next_position))
            next_position += 1


def _next_finished(finished: queue.SimpleQueue[tuple[int, bool, object]]) -> tuple[int, bool, object]:
    while True:
        try:
            return finished.get(timeout=WAKE_SECONDS)
        except queue.Empty:
            continue


def _unwrap(ok: bool, value: Any) -> Any:
    if not ok:
        raise value
    return value
