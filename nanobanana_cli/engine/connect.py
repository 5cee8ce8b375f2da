"""The one place a `Client` is built from a command's settings (or pointed at a local sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from .. import debugging

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.retry import RetryNotice
    from ..stores.settings import Settings

# A one-shot `--sandbox` job: short enough to try, long enough to show every state.
SANDBOX_QUEUE_SECONDS = 0.5
SANDBOX_RUN_SECONDS = 1.5


class Notices(Protocol):
    """Who hears what happens around the client (the CLI's output object, in practice)."""

    def retry_notice(self, notice: RetryNotice) -> None: ...

    def warn(self, text: str) -> None: ...

    def sandbox_notice(self, base_url: str) -> None: ...


@contextmanager
def open_client(
    settings: Settings,
    *,
    notices: Notices | None = None,
    token: str | None = None,
    retries: int | None = None,
    max_connections: int = 16,
    sandbox: bool = False,
) -> Iterator[Client]:
    """A client with the settings' token, API, retries and debug log, closed afterwards.

    `token` and `retries` override the settings (auth checks a token before storing it; doctor
    probes once). With `sandbox`, a local API is started for the client's lifetime and
    `notices` is told its address.
    """
    on_retry = notices.retry_notice if notices else None
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
        if notices:
            notices.sandbox_notice(server.base_url)
        with Client(
            server.token, server.base_url, retry=policy, on_retry=on_retry, debug_log=debug_log,
            max_connections=max_connections,
        ) as client:
            yield client
