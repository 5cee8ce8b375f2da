"""The one place a `Client` is built from a command's settings (or pointed at a local sandbox)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .. import debugging

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.retry import RetryListener
    from ..stores.settings import Settings

# A one-shot `--sandbox` job: short enough to try, long enough to show every state.
SANDBOX_QUEUE_SECONDS = 0.5
SANDBOX_RUN_SECONDS = 1.5


@contextmanager
def open_client(
    settings: Settings,
    *,
    on_retry: RetryListener | None = None,
    token: str | None = None,
    retries: int | None = None,
    max_connections: int = 16,
    sandbox: bool = False,
    on_sandbox: Callable[[str], None] | None = None,
) -> Iterator[Client]:
    """A client with the settings' token, API, retries and debug log, closed afterwards.

    `token` and `retries` override the settings (auth checks a token before storing it; doctor
    probes once). With `sandbox`, a local API is started for the client's lifetime and
    `on_sandbox` is told its address.
    """
    from ..api.client import Client
    from ..api.retry import RetryPolicy

    policy = RetryPolicy(retries=settings["retries"] if retries is None else retries)
    debug_log = debugging.log if debugging.enabled() else None
    if not sandbox:
        with Client(
            token or settings.token().token, settings.base_url, retry=policy, on_retry=on_retry,
            debug_log=debug_log, max_connections=max_connections,
        ) as client:
            yield client
        return
    from ..sandbox import Sandbox

    with Sandbox(queue_seconds=SANDBOX_QUEUE_SECONDS, run_seconds=SANDBOX_RUN_SECONDS) as server:
        if on_sandbox:
            on_sandbox(server.base_url)
        with Client(
            server.token, server.base_url, retry=policy, on_retry=on_retry, debug_log=debug_log,
            max_connections=max_connections,
        ) as client:
            yield client
