"""The one retry routine: when to try again, how long to wait first, and never past a deadline.

API calls and downloads both go through `call_with_retries`. Time comes from a `Clock`, so tests
can run the whole fault matrix without sleeping through real backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A submit is billed once the server accepts it; only these answers prove it did not.
SUBMIT_RETRYABLE_STATUSES = frozenset({429, 503})
DEFAULT_RETRIES = 4
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
RETRY_AFTER_CAP_SECONDS = 60.0

T = TypeVar("T")


class Clock:  # not a dataclass: ~0.1 ms to define instead of ~0.5, at every start-up
    """Where waiting and time come from; replaced in tests so backoff costs no wall time."""

    __slots__ = ("monotonic", "sleep")

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.monotonic = monotonic
        self.sleep = sleep


SYSTEM_CLOCK = Clock()


class RetryNotice(NamedTuple):  # not a frozen dataclass: ~0.1 ms to define instead of ~0.8, at every start-up
    """Told to the user before each wait: what failed, which attempt comes next, how long we sleep."""

    what: str
    reason: str
    attempt: int
    attempts: int
    delay: float


RetryListener = Callable[[RetryNotice], None]


class Retryable(Exception):
    """Raised by one attempt that another attempt may fix; `final` is what to raise when we give up."""

    def __init__(self, reason: str, final: BaseException, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final
        self.retry_after = retry_after


class DeadlineReached(Exception):
    """The next retry would end past the caller's deadline; `reason` is the last failure."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header, in either form (delta-seconds or HTTP-date)."""
    if not value:
        return None
    from urllib3.util import Retry

    try:
        seconds = Retry().parse_retry_after(value.strip())
    except Exception:  # urllib3 raises InvalidHeader; any unreadable value is simply ignored
        return None
    return max(0.0, min(float(seconds), RETRY_AFTER_CAP_SECONDS))


class RetryPolicy(NamedTuple):  # not a frozen dataclass: ~0.1 ms to define instead of ~0.8, at every start-up
    retries: int = DEFAULT_RETRIES
    base: float = BACKOFF_BASE_SECONDS
    cap: float = BACKOFF_CAP_SECONDS

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Wait before retry number `attempt` (1-based): Retry-After if given, else capped backoff with jitter."""
        honoured = parse_retry_after(retry_after)
        if honoured is not None:
            return honoured
        backoff = min(self.cap, self.base * (2 ** (attempt - 1)))
        return backoff * (1 - 0.25 * random.random())


def call_with_retries(
    attempt: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy,
    clock: Clock = SYSTEM_CLOCK,
    on_retry: RetryListener | None = None,
    deadline: float | None = None,
    attempts: int | None = None,
) -> T:
    """Run `attempt` until it returns, retrying each `Retryable` it raises with backoff.

    Gives up with the attempt's `final` error when the attempts run out, and with `DeadlineReached`
    as soon as the next wait would end past `deadline` (a `clock.monotonic()` time): a deadline is
    never overslept, whatever a server's Retry-After says.
    """
    total = attempts if attempts is not None else policy.retries + 1
    for number in range(1, total + 1):
        try:
            return attempt()
        except Retryable as failure:
            if number == total:
                raise failure.final from None
            delay = policy.delay(number, failure.retry_after)
            if deadline is not None and clock.monotonic() + delay > deadline:
                raise DeadlineReached(failure.reason) from None
            if on_retry:
                on_retry(RetryNotice(what=what, reason=failure.reason, attempt=number + 1, attempts=total, delay=delay))
            clock.sleep(delay)
    raise AssertionError("unreachable: the last attempt always returns or raises")
