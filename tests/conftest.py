"""Shared fixtures: an isolated environment for every test, a real sandbox, and the CLI runner.

Every CLI run goes through `cli`, which fails the test if the sentinel token ever shows up in
stdout or stderr: the token must never be printed, whatever the path.
"""

from __future__ import annotations

import compileall
import contextlib
import fcntl
import io
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import nanobanana_cli
from nanobanana_cli import debugging
from nanobanana_cli.api.retry import SYSTEM_CLOCK
from nanobanana_cli.cli import main
from nanobanana_cli.debugging import DEBUG_ENV
from nanobanana_cli.engine.polling import POLL_INTERVAL_ENV
from nanobanana_cli.sandbox import Faults, Sandbox
from nanobanana_cli.stores.paths import CONFIG_DIR_ENV, DATA_DIR_ENV
from nanobanana_cli.stores.settings import SETTINGS
from nanobanana_cli.stores.tokens import TOKEN_ENV_VARS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))  # for `import reference`

SENTINEL_TOKEN = "nbtest-SENTINEL-token-7f3a9c2e1d"

# Derived from the settings table, so a new setting can never leak the developer's environment into a test.
ISOLATED_VARIABLES = (
    *TOKEN_ENV_VARS, *(setting.env for setting in SETTINGS.values()), CONFIG_DIR_ENV, DATA_DIR_ENV, DEBUG_ENV,
    POLL_INTERVAL_ENV, "NO_COLOR", "FORCE_COLOR",
)


# -- under pytest-xdist, tests that measure time run apart from the others ----------------------

TIMING_MARK = (
    "timing: measures wall-clock time or counts the polls of a real wait; "
    "under pytest-xdist it runs first, alongside other timing tests only"
)

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", TIMING_MARK)
    if "PYTEST_XDIST_WORKER" not in os.environ:
        # Byte-compile the package once, as `pip install` does for an installed one: where
        # PYTHONDONTWRITEBYTECODE is set (as on CI) a checkout has no caches, and each of the
        # suite's hundreds of CLI processes would compile its modules from source (~0.15 s).
        compileall.compile_dir(Path(nanobanana_cli.__file__).parent, quiet=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if xdist_run_directory(config) is not None:  # every worker sorts alike, so their collections agree
        items.sort(key=lambda item: item.get_closest_marker("timing") is None)  # stable: timing tests first


def xdist_run_directory(config: pytest.Config) -> Path | None:
    """The temporary directory all workers of this pytest-xdist run share; None outside xdist."""
    if "PYTEST_XDIST_WORKER" not in os.environ or not config.option.basetemp:
        return None
    return Path(config.option.basetemp).parent  # each worker's basetemp is <the run's>/popen-gwN


class Turnstile:
    """Across the workers' processes, on two flock()ed files: timing tests run together, other
    tests together, never one of each at once. Timing measurements need the CPU the rest takes.

    A timing test holds `timing` shared, which keeps new other tests out (they pass through it
    exclusively), then waits for `room`, which the other tests hold shared while they run, to be
    free. Under xdist the timing tests are collected first and, with README's --maxschedchunk 2,
    handed two by two to the workers: they run together at the start, with no other test to wait
    for, and the rest follows."""

    def __init__(self, directory: Path) -> None:
        self._timing = open(directory / "turnstile-timing.lock", "a")  # noqa: SIM115 - held all session
        self._room = open(directory / "turnstile-room.lock", "a")  # noqa: SIM115

    @contextlib.contextmanager
    def timing(self) -> Iterator[None]:
        fcntl.flock(self._timing, fcntl.LOCK_SH)
        try:
            fcntl.flock(self._room, fcntl.LOCK_EX)  # the other tests still running end
            fcntl.flock(self._room, fcntl.LOCK_UN)
            yield
        finally:
            fcntl.flock(self._timing, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def other(self) -> Iterator[None]:
        fcntl.flock(self._timing, fcntl.LOCK_EX)  # waits while any timing test runs
        try:
            fcntl.flock(self._room, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._timing, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._room, fcntl.LOCK_UN)


_turnstile: Turnstile | None = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    global _turnstile
    directory = xdist_run_directory(item.config)
    if directory is None:
        return (yield)
    if _turnstile is None:
        _turnstile = Turnstile(directory)
    with _turnstile.timing() if item.get_closest_marker("timing") else _turnstile.other():
        return (yield)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch) -> None:
    """No test reads the developer's token, config or history, or writes outside tmp_path."""
    for name in ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NANOBANANA_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("NANOBANANA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NANOBANANA_POLL_INTERVAL", "0.02")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(debugging, "_forced", False)
    # Backoff waits are the retry routine's own; in-process runs skip them (subprocess runs still wait).
    monkeypatch.setattr(SYSTEM_CLOCK, "sleep", lambda seconds: None)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture(scope="session")
def reference_files(request) -> dict[Path, str]:
    """What `python scripts/reference.py` would write (completions, docs/cli.md, the man page),
    generated once per run: it runs the CLI some 30 times, 3 s of CPU. Under pytest-xdist the
    workers share one generation through a file in the run's common temporary directory."""
    import reference  # scripts/reference.py

    directory = xdist_run_directory(request.config)
    if directory is None:
        return reference.expected_files()
    shared = directory / "reference-files.json"
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker generates, the others wait and read
        if not shared.exists():
            files = reference.expected_files()
            shared.write_text(json.dumps({str(path): text for path, text in files.items()}), encoding="utf-8")
        return {Path(path): text for path, text in json.loads(shared.read_text(encoding="utf-8")).items()}


@pytest.fixture
def start_sandbox(monkeypatch) -> Iterator[Callable[..., Sandbox]]:
    """Start a sandbox on 127.0.0.1:0 and point the CLI at it (instant jobs unless told otherwise)."""
    started: list[Sandbox] = []

    def start(*, queue_seconds: float = 0.0, run_seconds: float = 0.0, faults: Faults | None = None, **kwargs) -> Sandbox:
        server = Sandbox(
            token=SENTINEL_TOKEN, queue_seconds=queue_seconds, run_seconds=run_seconds,
            faults=faults, image_long_side=kwargs.pop("image_long_side", 256), **kwargs,
        ).start()
        started.append(server)
        monkeypatch.setenv("NANOBANANA_BASE_URL", server.base_url)
        monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
        return server

    yield start
    for server in started:
        stop_promptly(server)


def stop_promptly(server: Sandbox) -> None:
    """`server.stop()`, without waiting out each listener's 50 ms poll: a connection wakes it.

    A listener notices a shutdown request only when its select() returns; idle, that is at its
    next poll, so stopping a sandbox's two listeners took about 80 ms, 20 s over the suite.
    """
    urls = {server.base_url, server.asset_base_url, server.plain_asset_base_url}
    addresses = [(parts.hostname, parts.port) for parts in map(urlsplit, urls)]
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    while stopper.is_alive():
        for address in addresses:
            try:
                socket.create_connection(address, timeout=1).close()
            except OSError:
                pass  # already closed: that listener is done
        stopper.join(0.002)


@pytest.fixture
def sandbox(start_sandbox) -> Sandbox:
    return start_sandbox()


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


class _Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def cli(capsys, monkeypatch) -> Callable[..., Run]:
    """Run `nanobanana ARGS` in-process through `main()`, the real error boundary."""

    def run(*args: str, input: str | None = None, tty_stdin: bool = False) -> Run:
        capsys.readouterr()
        monkeypatch.setattr("sys.stdin", _Stdin(input or "", tty=tty_stdin and input is None))
        sigint = signal.getsignal(signal.SIGINT)
        try:
            code = main([str(arg) for arg in args])
        finally:
            signal.signal(signal.SIGINT, sigint)  # main() resets it after an interrupt
        captured = capsys.readouterr()
        debug = "--debug" in args or os.environ.get("NANOBANANA_DEBUG")
        for stream in (captured.out, captured.err):
            assert SENTINEL_TOKEN not in stream, "the API token leaked into the output"
            assert debug or "Traceback" not in stream, "a traceback was printed without --debug"
        if "--json" in args and captured.out.strip():
            from .test_contract_schema import validate_json_output  # every --json output must match docs/schema/

            validate_json_output([str(arg) for arg in args], captured.out)
        return Run(code, captured.out, captured.err)

    return run
