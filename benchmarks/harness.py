"""What every section shares: running a contender as a child process, reading the sandbox's request
log, and summarising samples.

Timing sources, and why:
- wall time: `time.perf_counter()` around the child, from spawn to exit (what a user waits);
- CPU: the child's rusage from `os.wait4` (user + system, including its own reaped children, so the
  curl flow's curl/jq/sleep processes count too);
- detection lag and completion-to-disk: wall-clock `time.time()` stamps, because the sandbox stamps
  each answer with `time.time()` and files carry wall-clock mtimes.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
try:  # the installed package: an editable install of this checkout, or a pinned snapshot in another venv
    import nanobanana_cli  # noqa: F401
except ImportError:  # a fresh clone without `pip install -e .`
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
# The console script is what users run; `python -m` is a fallback for an uninstalled checkout.
_CONSOLE_SCRIPT = Path(sys.executable).parent / "nanobanana"
NANOBANANA = [str(_CONSOLE_SCRIPT)] if _CONSOLE_SCRIPT.exists() else [PYTHON, "-m", "nanobanana_cli"]
PROMPT = "a glass greenhouse at dusk"
POLL_PATH = re.compile(r"^/v1/requests/(?P<id>[^/?]+)/(?P<action>status|result)(?:\?.*)?$")


# -- child processes -------------------------------------------------------------------------------


@dataclass
class Finished:
    argv: list[str]
    returncode: int
    wall: float  # seconds, spawn to exit
    cpu: float  # seconds, user + system, the child and its reaped descendants
    stdout: str
    stderr: str
    timed_out: bool = False
    spawned_at: float = 0.0  # wall clock (time.time()), to set against the sandbox's own times
    exited_at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe_failure(self) -> str:
        what = "timed out" if self.timed_out else f"exit {self.returncode}"
        return f"{' '.join(self.argv[:4])}…: {what}: {self.stderr.strip()[-500:]}"


def run(argv: Sequence[str], env: dict[str, str], *, timeout: float = 600.0) -> Finished:
    """Run a child to completion with stdio in temp files (pipes could block a chatty child)."""
    argv = [str(part) for part in argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started, spawned_at = time.perf_counter(), time.time()
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
        )
        expired = threading.Event()

        def kill() -> None:  # only this child's own process group, which start_new_session gave it
            expired.set()
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
        wall, exited_at = time.perf_counter() - started, time.time()
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; tell Popen
        out.seek(0)
        err.seek(0)
        return Finished(
            argv,
            process.returncode,
            wall,
            usage.ru_utime + usage.ru_stime,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            expired.is_set(),
            spawned_at,
            exited_at,
        )


def environment(work: Path, sandbox: Any | None = None, *, data_dir: Path | None = None) -> dict[str, str]:
    """The caller's environment without anything that could steer nanobanana (a pytest run sets a
    fast poll interval, a developer may have a real token), plus temp config/data directories.

    PYTHONDONTWRITEBYTECODE is dropped too: installed software runs from bytecode caches (pip writes
    them at install, see `compile_package`), and without them every run of nanobanana would compile
    its modules from source, a cost (~25 ms) no user pays and the contenders (stdlib, site-packages)
    do not pay either."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("NANOBANANA_", "RUNCOMFY", "YOUR_API")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(NANOBANANA_CONFIG_DIR=str(work / "config"), NANOBANANA_DATA_DIR=str(data_dir or work / "data"))
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    if sandbox is not None:
        env.update(NANOBANANA_BASE_URL=sandbox.base_url, RUNCOMFY_API_TOKEN=sandbox.token)
    return env


def compile_package() -> None:
    """Byte-compile the measured nanobanana package, as `pip install` does (a checkout has no caches)."""
    import compileall

    import nanobanana_cli

    compileall.compile_dir(Path(nanobanana_cli.__file__).parent, quiet=1)


def image_files(directory: Path) -> list[Path]:
    """Saved images only: no temp `.part` files, manifests or galleries."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix in (".png", ".jpg", ".webp")
    )


def copy_tree(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target


# -- the sandbox's request log -----------------------------------------------------------------------


def set_job(sandbox: Any, queue_seconds: float, run_seconds: float) -> None:
    """Durations for the *next* submit: each job keeps the values it was submitted with."""
    sandbox.queue_seconds, sandbox.run_seconds = queue_seconds, run_seconds


def log_mark(sandbox: Any) -> int:
    return len(sandbox.stats.requests)


def log_since(sandbox: Any, mark: int) -> list[Any]:
    return list(sandbox.stats.requests[mark:])


@dataclass
class JobTrace:
    """One job as the sandbox saw it, from the requests one contender made."""

    request_id: str
    submitted_at: float  # when the submit was answered
    finished_at: float  # submitted_at + queue + run: when the job completed on the server
    poll_times: list[float] = field(default_factory=list)  # every /status and /result answer
    status_requests: int = 0
    result_requests: int = 0

    @property
    def requests(self) -> int:
        return self.status_requests + self.result_requests

    @property
    def detection_lag(self) -> float:
        """From completion to the first answer given after it: the first poll that could see it done."""
        seen = [t for t in self.poll_times if t >= self.finished_at]
        return seen[0] - self.finished_at if seen else math.nan


def trace_jobs(records: Sequence[Any], job_seconds: float) -> list[JobTrace]:
    """Pair each submit (POST) with the request id polled after it, in order.

    The POST record carries no id, so this pairing is exact only for one job per process; for a
    batch, where several submits race, use the traces' request counts, not their timings.
    """
    posts = [
        r
        for r in records
        if r.listener == "api" and r.method == "POST" and r.path.startswith("/v1/models/") and r.status == 200
    ]
    first_seen: dict[str, float] = {}
    traces: dict[str, JobTrace] = {}
    for record in records:
        match = POLL_PATH.match(record.path) if record.listener == "api" and record.method == "GET" else None
        if not match:
            continue
        first_seen.setdefault(match["id"], record.at)
    ordered_ids = sorted(first_seen, key=first_seen.get)
    for post, request_id in zip(posts, ordered_ids):
        traces[request_id] = JobTrace(request_id, post.at, post.at + job_seconds)
    for record in records:
        match = POLL_PATH.match(record.path) if record.listener == "api" and record.method == "GET" else None
        if not match or match["id"] not in traces or record.status != 200:
            continue
        trace = traces[match["id"]]
        trace.poll_times.append(record.at)
        if match["action"] == "status":
            trace.status_requests += 1
        else:
            trace.result_requests += 1
    return list(traces.values())


def single_job(records: Sequence[Any], job_seconds: float) -> JobTrace:
    """The one job a `generate -n 4`-like run made; anything else means the run is not comparable."""
    posts = [r for r in records if r.listener == "api" and r.method == "POST" and r.path.startswith("/v1/models/")]
    if len(posts) != 1:
        raise RuntimeError(f"expected exactly one submit, saw {len(posts)}")
    traces = trace_jobs(records, job_seconds)
    if len(traces) != 1:
        raise RuntimeError(f"expected one polled job, saw {len(traces)}")
    return traces[0]


# -- statistics --------------------------------------------------------------------------------------


def finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default). With 7 samples p95 is
    0.4 of the way from the 6th to the 7th (largest) value: read it as "about the worst run"."""
    data = sorted(finite(values))
    if not data:
        return math.nan
    position = (len(data) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return data[low] + (data[high] - data[low]) * (position - low)


def summary(values: Sequence[float | None]) -> dict[str, float | int]:
    data = finite(values)
    if not data:
        return {"n": 0, "median": math.nan, "min": math.nan, "max": math.nan, "p95": math.nan}
    return {
        "n": len(data),
        "median": statistics.median(data),
        "min": min(data),
        "max": max(data),
        "p95": percentile(data, 0.95),
    }


def progress(message: str) -> None:
    """Progress goes to stderr so stdout carries only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
