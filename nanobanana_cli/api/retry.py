"""When to try an HTTP call again, and how long to wait first."""

from __future__ import annotations

import random
from dataclasses import dataclass

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# A submit is billed once the server accepts it; only these answers prove it did not.
SUBMIT_RETRYABLE_STATUSES = frozenset({429, 503})
DEFAULT_RETRIES = 4
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 8.0
RETRY_AFTER_CAP_SECONDS = 60.0


@dataclass(frozen=True)
class RetryNotice:
    """Told to the user before each wait: what failed, which attempt comes next, how long we sleep."""

    what: str
    reason: str
    attempt: int
    attempts: int
    delay: float


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


@dataclass(frozen=True)
class RetryPolicy:
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
