"""The one place a `Client` is built from a command's settings (or pointed at a local sandbox)."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from typing import TYPE_CHECKING, Protocol

from .. import debugging

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.retry import RetryNotice
    from ..stores.history import History
    from ..stores.settings import Settings
    from ..stores.tokens import ResolvedToken

# A one-shot `--sandbox` job: short enough to try, long enough to show every state.
SANDBOX_QUEUE_SECONDS = 0.5
SANDBOX_RUN_SECONDS = 1.5
TOKEN_FLAG_WARNING = "--token is visible to other users in ps; use RUNCOMFY_API_TOKEN or nanobanana auth login --with-token"


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
    journal: History | None = None,
) -> Iterator[Client]:
    """A client with the settings' token, API, retries and debug log, closed afterwards.

    `token` and `retries` override the settings (auth checks a token before storing it; doctor
    probes once). With `sandbox`, a local API is started for the client's lifetime and
    `notices` is told its address. Every submit is journaled in the job history before its
    POST goes out (lifecycle records the job again once its id is known): in `journal`, the
    command's own history when it has one open, else a history opened for the client's lifetime.
    """
    from ..api.client import Client
    from ..api.retry import RetryPolicy
    from ..stores.history import History

    warn = notices.warn if notices else None
    with ExitStack() as stack:
        if journal is None:
            journal = stack.enter_context(History(warn=warn))
        client_for = partial(
            Client, journal=journal, retry=RetryPolicy(retries=settings["retries"] if retries is None else retries),
            on_retry=notices.retry_notice if notices else None, debug_log=debugging.log if debugging.enabled() else None,
            max_connections=max_connections,
        )
        if not sandbox:
            from ..stores.tokens import describe_source, rejected_token_hint

            source = None  # a token handed in (auth checking one before storing it) has no source yet
            if token is None:
                resolved = settings.token()
                if warn:
                    _warn_about_token(settings, resolved, warn)
                token, source = resolved.token, resolved.source
            with client_for(
                token, settings.base_url, token_label=describe_source(source), token_hint=rejected_token_hint(source),
            ) as client:
                yield client
            return
        from ..sandbox import Sandbox

        with Sandbox(queue_seconds=SANDBOX_QUEUE_SECONDS, run_seconds=SANDBOX_RUN_SECONDS) as server:
            if notices:
                notices.sandbox_notice(server.base_url)
            with client_for(server.token, server.base_url) as client:
                yield client


def _warn_about_token(settings: Settings, resolved: ResolvedToken, warn: Callable[[str], None]) -> None:
    """Where the token came from can expose it: other users see argv in `ps`, and may read a loose file."""
    if settings.token_flag:
        warn(TOKEN_FLAG_WARNING)
    if resolved.exposed and resolved.file is not None:
        path = shlex.quote(str(resolved.file))
        warn(
            f"the stored token {resolved.file} is readable by other users (mode {resolved.file_mode:03o}); "
            f"fix it with: chmod 600 {path}"
        )
