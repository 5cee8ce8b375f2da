"""Total deadlines for HTTP exchanges: a watchdog cuts a connection off when its time is up.

A socket read timeout bounds each `recv`, not the exchange: a server that sends one byte a
second never trips it, and neither does one that trickles its headers. So every exchange runs
inside `watching(seconds)`. The connection it uses is registered the moment its answer is
awaited (see `WatchedAdapter`), and one watchdog thread shuts that socket down at the deadline,
which wakes the blocked read at once. The exchange's own code then fails however it fails, and
`watching` turns that failure into `CallTimedOut`.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class CallTimedOut(Exception):
    """The exchange was cut off at its deadline."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within {seconds:g}s")
        self.seconds = seconds


class _Watch:  # not a dataclass: ~0.5 ms to define, at every start-up
    __slots__ = ("deadline", "expired", "sockets")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sockets: list[socket.socket] = []
        self.expired = False


def _cut(sock: socket.socket) -> None:
    # The plain socket's shutdown, even on an SSLSocket: it wakes a read blocked in another thread
    # without touching the TLS object that thread is using.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to cut


class _Watchdog:
    """One daemon thread for the whole process, sleeping until the earliest deadline."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._watches: set[_Watch] = set()
        self._thread: threading.Thread | None = None
        self._wakes_at = math.inf  # when the thread's current sleep ends

    def add(self, watch: _Watch) -> None:
        with self._condition:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="nanobanana-deadlines", daemon=True)
                self._thread.start()
            elif watch.deadline < self._wakes_at:
                # Only an earlier deadline needs the thread awake: most exchanges end later than one
                # already watched (a batch runs 32 at once), and waking it for each costs CPU.
                self._condition.notify()

    def remove(self, watch: _Watch) -> None:
        with self._condition:
            self._watches.discard(watch)

    def adopt(self, watch: _Watch, sock: socket.socket) -> None:
        with self._condition:
            if watch.expired:
                _cut(sock)
            else:
                watch.sockets.append(sock)

    def _run(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                for watch in [w for w in self._watches if w.deadline <= now]:
                    watch.expired = True
                    self._watches.discard(watch)
                    for sock in watch.sockets:
                        _cut(sock)
                earliest = min((w.deadline for w in self._watches), default=math.inf)
                self._wakes_at = earliest
                self._condition.wait(None if earliest == math.inf else max(0.0, earliest - now))


_WATCHDOG = _Watchdog()
_current = threading.local()


@contextmanager
def watching(seconds: float) -> Iterator[None]:
    """Run an exchange (request and body) that must be over within `seconds`, or `CallTimedOut`."""
    watch = _Watch(time.monotonic() + seconds)
    outer = getattr(_current, "watch", None)
    _current.watch = watch
    _WATCHDOG.add(watch)
    try:
        yield
    except Exception:
        if watch.expired:
            raise CallTimedOut(seconds) from None
        raise
    finally:
        _WATCHDOG.remove(watch)
        _current.watch = outer


def _adopt(sock: Any) -> None:
    watch = getattr(_current, "watch", None)
    if watch is not None and isinstance(sock, socket.socket):
        _WATCHDOG.adopt(watch, sock)


class _WatchedHTTPConnection(HTTPConnection):
    def getresponse(self) -> Any:
        _adopt(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:
        _adopt(self.sock)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class WatchedAdapter(HTTPAdapter):
    """requests' adapter, with connections whose socket the watchdog can cut at a deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
