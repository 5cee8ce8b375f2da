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
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import pytest

import nanobanana_cli
from nanobanana_cli import debugging
from nanobanana_cli.api.retry import SYSTEM_CLOCK
from nanobanana_cli.cli import main
from nanobanana_cli.debugging import DEBUG_ENV
from nanobanana_cli.engine.polling import POLL_INTERVAL_ENV
from nanobanana_cli.sandbox import Faults, Sandbox, TLSConfig
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


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        # A run started in the background (`pytest ... &` from a script) ignores Ctrl-C, and every
        # process it starts would too: the CLI's Ctrl-C tests would wait on children that never hear it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if "PYTEST_XDIST_WORKER" not in os.environ:
        # Byte-compile the package once, as `pip install` does for an installed one: where
        # PYTHONDONTWRITEBYTECODE is set (as on CI) a checkout has no caches, and each of the
        # suite's hundreds of CLI processes would compile its modules from source (~0.15 s).
        compileall.compile_dir(Path(nanobanana_cli.__file__).parent, quiet=1)


def xdist_run_directory(config: pytest.Config) -> Path | None:
    """The temporary directory all workers of this pytest-xdist run share; None outside xdist."""
    if "PYTEST_XDIST_WORKER" not in os.environ or not config.option.basetemp:
        return None
    return Path(config.option.basetemp).parent  # each worker's basetemp is <the run's>/popen-gwN


# -- synchronising on events, never on the machine's speed ---------------------------------------
#
# A test waits for something it can see (a job the sandbox holds until the test moves it on, a
# poll the sandbox answered, a line on a child's stderr, a manifest record), never for a sleep
# and never against a wall-clock bound: on a loaded machine any delay may be ten times longer.
# WAIT_LIMIT only turns a missing event into a failure instead of a hang.

HELD = math.inf  # as queue_seconds or run_seconds: the job stays there until the test moves it on
WAIT_LIMIT = 60.0


def wait_until(condition: Callable[[], object], what: str, limit: float = WAIT_LIMIT) -> None:
    """Return once `condition()` is true; fail naming `what` if it is not within `limit` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {limit:g}s for {what}")
        time.sleep(0.005)


def job_polls(sandbox: Sandbox, request_id: str) -> int:
    """How many status/result polls of the job the sandbox has answered so far."""
    marker = f"/v1/requests/{request_id}/"
    return sum(1 for r in list(sandbox.stats.requests) if r.listener == "api" and marker in r.path and r.method == "GET")


def step_job(sandbox: Sandbox, request_id: str, *, start: bool = True, running_polls: int = 1) -> None:
    """Move a held job on (in_queue, in_progress if `start`, then its end), each state only once a
    poll has seen the one before (`running_polls` polls for in_progress). A job's waiter polls it
    one request at a time, so of the polls answered after a move at most one read the state from
    before it: the next ones saw the new state."""
    wait_until(lambda: job_polls(sandbox, request_id) >= 1, f"a poll of {request_id} while queued")
    if start:
        seen = job_polls(sandbox, request_id)
        assert sandbox.start_job(request_id), f"{request_id} had already left the queue"
        wanted = seen + 1 + running_polls
        wait_until(lambda: job_polls(sandbox, request_id) >= wanted, f"{running_polls} poll(s) of {request_id} running")
    assert sandbox.finish_job(request_id), f"{request_id} had already ended"


def finish_all(sandbox: Sandbox) -> None:
    """End every held job now: lets a command waiting on them finish (after a failed step, too)."""
    for job in sandbox.jobs():
        if job.state in ("in_queue", "in_progress"):
            sandbox.finish_job(job.request_id)


@contextlib.contextmanager
def beside(work: Callable[[], None], sandbox: Sandbox) -> Iterator[None]:
    """Run `work` in a thread while the block runs (typically a `cli(...)` call that waits on held
    jobs `work` moves on); re-raise what `work` raised. If `work` fails, every held job is ended so
    the block is not left waiting."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failure.append(exc)
            finish_all(sandbox)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield  # if the block raises, that is the failure to report; the daemon thread is left behind
    thread.join(WAIT_LIMIT)
    if failure:
        raise failure[0]
    assert not thread.is_alive(), "the background step never ended"


def step_jobs(sandbox: Sandbox, count: int, **how: Any) -> Callable[[], None]:
    """Work for `beside`: step each of the next `count` jobs submitted, in submit order, as
    `step_job(**how)` does. For jobs waited on one after another (or all at once: each is held
    until its turn)."""
    already = len(sandbox.jobs())

    def work() -> None:
        for index in range(already, already + count):
            wait_until(lambda index=index: len(sandbox.jobs()) > index, f"job {index + 1} to be submitted")
            step_job(sandbox, sandbox.jobs()[index].request_id, **how)

    return work


class Lines:
    """A child process's stderr, read line by line as it comes: `wait_for(text)` returns the first
    line (from where the last wait stopped) that contains `text`; `seen` holds every line so far."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._read = 0
        self._closed = False
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.seen.append(line)
                self._changed.notify_all()
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_for(self, text: str, limit: float = WAIT_LIMIT) -> str:
        deadline = time.monotonic() + limit
        with self._changed:
            while True:
                for index in range(self._read, len(self.seen)):
                    if text in self.seen[index]:
                        self._read = index + 1
                        return self.seen[index]
                self._read = len(self.seen)
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise AssertionError(f"no line with {text!r} on stderr; got {''.join(self.seen)!r}")
                self._changed.wait(left)

    def rest(self, limit: float = WAIT_LIMIT) -> str:
        """Everything the child wrote, once its stderr is closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed, limit)
            return "".join(self.seen)


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


TLS_DIR = Path(__file__).parent / "tls"
CERT, KEY = TLS_DIR / "sandbox-cert.pem", TLS_DIR / "sandbox-key.pem"  # how they were made: test_sandbox.py


@pytest.fixture
def tls_sandbox(start_sandbox, monkeypatch) -> Sandbox:
    """A sandbox serving https (API and image host, with the image host's plain-http twin), trusted by requests."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(CERT))
    return start_sandbox(tls=TLSConfig(CERT, KEY))


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
