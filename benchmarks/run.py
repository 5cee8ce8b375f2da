"""nanobanana benchmark: startup, completion to disk, end to end, downloads and batch throughput,
each measured in the same run against two baselines shipped beside this file:

  (a) baseline_curl.sh      the documented curl flow, polling /status every second, with jq
  (b) baseline_requests.py  a plain sequential requests script, also polling every second

Everything runs against a sandbox started by this script on 127.0.0.1; nothing leaves the machine.

    python benchmarks/run.py                    # job = 0.5 s queued + 1.5 s running, 5 runs each
    python benchmarks/run.py --job-seconds 4 --runs 7 --markdown
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from nanobanana_cli.sandbox import Sandbox  # noqa: E402

CONSOLE_SCRIPT = Path(sys.executable).parent / "nanobanana"
NANOBANANA = [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "nanobanana_cli"]
BASELINES = {
    "curl flow": ["bash", str(HERE / "baseline_curl.sh")],
    "requests script": [sys.executable, str(HERE / "baseline_requests.py")],
}
PROMPT = "a glass greenhouse at dusk"


@dataclass
class Run:
    seconds: float
    stdout: str
    stderr: str
    returncode: int
    max_rss_mb: float


def run(command: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> Run:
    """Run a command to completion and time it."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate()
    return Run(time.perf_counter() - started, stdout, stderr, process.returncode, 0.0)


def run_rss(command: Sequence[str], env: dict[str, str]) -> Run:
    """Like `run`, through the small launcher in peak_rss.py, which reports the command's own peak RSS."""
    executable = shutil.which(command[0]) or command[0]
    result = run([sys.executable, str(HERE / "peak_rss.py"), executable, *command[1:]], env)
    return Run(result.seconds, "", result.stderr, result.returncode, float(result.stdout or "nan"))


def check(result: Run, what: str) -> Run:
    if result.returncode != 0:
        raise SystemExit(f"{what} failed with exit {result.returncode}:\n{result.stderr[-2000:]}")
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Bench:
    work: Path
    env: dict[str, str] = field(default_factory=dict)

    def environment(self, sandbox: Sandbox | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NANOBANANA_", "RUNCOMFY", "YOUR_API"))}
        env.update(NANOBANANA_CONFIG_DIR=str(self.work / "config"), NANOBANANA_DATA_DIR=str(self.work / "data"))
        if sandbox is not None:
            env.update(NANOBANANA_BASE_URL=sandbox.base_url, RUNCOMFY_API_TOKEN=sandbox.token)
        return env


# -- measurements --------------------------------------------------------------------------------


def startup(bench: Bench, repeats: int) -> dict[str, float]:
    env = bench.environment()
    bare = [sys.executable, str(HERE / "bare_typer_app.py")]
    commands = {
        "bare --help": [*bare, "--help"],
        "bare command": bare,
        "--version": [*NANOBANANA, "--version"],
        "--help": [*NANOBANANA, "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):  # interleaved, so drift on a busy machine hits all alike
        for name, command in commands.items():
            times[name].append(check(run(command, env), name).seconds)
    return {name: median(values) for name, values in times.items()}


def job_figures(sandbox: Sandbox, request_id: str, files: list[Path], job_seconds: float) -> dict[str, float]:
    job = sandbox._jobs[request_id]
    finished = sandbox.finished_wall(job)
    on_disk = max(path.stat().st_mtime for path in files)
    polls = [r for r in sandbox.stats.requests if r.listener == "api" and r.method == "GET" and request_id in r.path]
    assets = [r for r in sandbox.stats.requests if r.listener == "assets" and request_id in r.path]
    return {
        "to_disk": on_disk - finished,
        "polls_per_second": len(polls) / job_seconds,
        "asset_connections": len({r.client_port for r in assets}),
        "transfer": pure_transfer(sandbox, [r.path for r in assets]),
    }


def pure_transfer(sandbox: Sandbox, paths: list[str]) -> float:
    """The same bytes over one warm keep-alive connection, no polling, no file writes: the floor."""
    import http.client

    host = urlsplit(sandbox.asset_base_url)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    connection.request("GET", paths[0])
    connection.getresponse().read()
    started = time.perf_counter()
    for path in paths:
        connection.request("GET", path)
        connection.getresponse().read()
    connection.close()
    return time.perf_counter() - started


def one_job(bench: Bench, sandbox: Sandbox, tool: str, out: Path, num_images: int, job_seconds: float) -> dict[str, float]:
    env = bench.environment(sandbox)
    if tool == "nanobanana":
        result = check(run([*NANOBANANA, "generate", PROMPT, "-n", str(num_images), "-o", str(out), "--json"], env), tool)
        document = json.loads(result.stdout)
        request_id, files = document["request_id"], [Path(o["path"]) for o in document["outputs"]]
    else:
        result = check(run([*BASELINES[tool], PROMPT, str(num_images), str(out)], env), tool)
        request_id = result.stdout.split()[-1]
        files = sorted(out.glob(f"{request_id}-*.png"))
    assert len(files) == num_images, f"{tool} saved {len(files)} of {num_images} files"
    return {"wall": result.seconds, **job_figures(sandbox, request_id, files, job_seconds)}


def set_job_seconds(sandbox: Sandbox, seconds: float) -> None:
    sandbox.queue_seconds, sandbox.run_seconds = seconds * 0.25, seconds * 0.75


def end_to_end(bench: Bench, job_seconds: float, runs: int) -> dict[str, dict[str, float]]:
    """Each tool runs jobs lasting J, J + 1/runs, …, J + (runs-1)/runs seconds.

    Spreading durations over one second gives the 1-second pollers every phase: with jobs of
    exactly J seconds they would always (or never) poll just after completion.
    """
    durations = [job_seconds + k / runs for k in range(runs)]
    # a fixed shuffle: ascending durations would be the worst case for a learned median
    random.Random(7).shuffle(durations)
    figures: dict[str, dict[str, float]] = {}
    with Sandbox() as sandbox:
        set_job_seconds(sandbox, job_seconds)
        cold = one_job(bench, sandbox, "nanobanana", bench.work / "e2e-cold", 4, job_seconds)
        for tool in ("nanobanana", *BASELINES):
            samples = []
            for index, seconds in enumerate(durations):
                set_job_seconds(sandbox, seconds)
                sample = one_job(bench, sandbox, tool, bench.work / f"e2e-{tool}-{index}", 4, seconds)
                samples.append({**sample, "over_job": sample["wall"] - seconds})
            figures[tool] = {key: median([s[key] for s in samples]) for key in samples[0]}
        figures["nanobanana (first job, nothing learned)"] = {**cold, "over_job": cold["wall"] - job_seconds}
    return figures


def big_download(bench: Bench, megabytes: int) -> dict[str, float]:
    """Peak RSS of a whole process that downloads one asset of `megabytes` MB."""
    peaks = {}
    with Sandbox(queue_seconds=0, run_seconds=0.2, image_long_side=256, asset_padding_bytes=megabytes * 1024 * 1024) as sandbox:
        env = bench.environment(sandbox)
        commands = {
            "nanobanana": [*NANOBANANA, "generate", PROMPT, "-o", str(bench.work / "big"), "-q"],
            "requests script": [*BASELINES["requests script"], PROMPT, "1", str(bench.work / "big-requests")],
            "nanobanana --version": [*NANOBANANA, "--version"],
        }
        for name, command in commands.items():
            peaks[name] = check(run_rss(command, env), name).max_rss_mb
    return peaks


def batch(bench: Bench, prompts: int, concurrency: int, job_seconds: float) -> dict[str, float]:
    prompt_file = bench.work / "prompts.txt"
    prompt_file.write_text("".join(f"{PROMPT}, variation {n}\n" for n in range(prompts)))
    with Sandbox() as sandbox:
        set_job_seconds(sandbox, job_seconds)
        env = bench.environment(sandbox)
        warm = one_job(bench, sandbox, "nanobanana", bench.work / "batch-warmup", 1, job_seconds)  # as a user's history would
        result = check(run([*NANOBANANA, "batch", str(prompt_file), "-j", str(concurrency), "-o", str(bench.work / "batch"), "-q"], env), "batch")
        singles = {tool: one_job(bench, sandbox, tool, bench.work / f"batch-{tool}", 1, job_seconds)["wall"] for tool in BASELINES}
        return {
            "wall": result.seconds,
            "ideal": math.ceil(prompts / concurrency) * job_seconds,
            "peak_in_flight": sandbox.stats.peak_in_flight,
            "warmup": warm["wall"],
            **{tool: seconds * prompts for tool, seconds in singles.items()},
        }


# -- report ----------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--job-seconds", type=float, default=2.0, help="sandbox job duration for the end-to-end runs")
    parser.add_argument("--runs", type=int, default=5, help="runs per tool for the end-to-end medians")
    parser.add_argument("--startup-repeats", type=int, default=21)
    parser.add_argument("--batch-prompts", type=int, default=40)
    parser.add_argument("--batch-concurrency", type=int, default=8)
    parser.add_argument("--batch-job-seconds", type=float, default=1.0)
    parser.add_argument("--big-mb", type=int, default=50)
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    for tool in ("curl", "jq", "bash"):
        if shutil.which(tool) is None:
            raise SystemExit(f"the curl baseline needs {tool} on PATH")

    with tempfile.TemporaryDirectory(prefix="nanobanana-bench-") as tmp:
        bench = Bench(Path(tmp))
        print("measuring startup…", file=sys.stderr)
        boot = startup(bench, args.startup_repeats)
        print("measuring end to end…", file=sys.stderr)
        e2e = end_to_end(bench, args.job_seconds, args.runs)
        print("measuring batch…", file=sys.stderr)
        many = batch(bench, args.batch_prompts, args.batch_concurrency, args.batch_job_seconds)
        print("measuring a big download…", file=sys.stderr)  # last: its 50 MB assets churn this process's memory
        rss = big_download(bench, args.big_mb)

    ours, curl, plain = e2e["nanobanana"], e2e["curl flow"], e2e["requests script"]
    cold = e2e["nanobanana (first job, nothing learned)"]
    job = args.job_seconds
    rows = [
        ("startup: `--version`", f"{boot['--version'] * 1000:.0f} ms", f"bare Typer app {boot['bare command'] * 1000:.0f} ms",
         f"{boot['--version'] / boot['bare command']:.2f}×", "≤ 1.2×", verdict(boot["--version"] <= 1.2 * boot["bare command"])),
        ("startup: `--help`", f"{boot['--help'] * 1000:.0f} ms", f"bare Typer app `--help` {boot['bare --help'] * 1000:.0f} ms",
         f"{boot['--help'] / boot['bare --help']:.2f}×", "≤ 1.2×", verdict(boot["--help"] <= 1.2 * boot["bare --help"])),
        ("completion → last file on disk (median)", f"{ours['to_disk']:.3f} s", f"curl {curl['to_disk']:.3f} s · requests {plain['to_disk']:.3f} s",
         f"transfer alone {ours['transfer']:.3f} s", "≤ 0.3 s + transfer", verdict(ours["to_disk"] <= 0.3 + ours["transfer"])),
        ("  same, first job (no learned duration)", f"{cold['to_disk']:.3f} s", "", "", "", ""),
        ("status/result requests per second of job", f"{ours['polls_per_second']:.2f}/s", f"curl {curl['polls_per_second']:.2f}/s · requests {plain['polls_per_second']:.2f}/s",
         "", "≤ 1.5/s", verdict(ours["polls_per_second"] <= 1.5)),
        ("  same, first job (no learned duration)", f"{cold['polls_per_second']:.2f}/s", "", "", "", ""),
        ("end to end `generate -n 4`: wall − job (median)", f"+{ours['over_job']:.2f} s",
         f"curl +{curl['over_job']:.2f} s · requests +{plain['over_job']:.2f} s",
         f"{(job + ours['over_job']) / (job + curl['over_job']):.2f}× curl at {job:g} s", "≤ job + 0.5 s and < curl",
         verdict(ours["over_job"] <= 0.5 and ours["over_job"] < curl["over_job"])),
        ("  same, first job (no learned duration)", f"+{cold['over_job']:.2f} s", "", "", "", ""),
        ("downloads: connections for 4 files", f"{ours['asset_connections']:.0f}", f"curl {curl['asset_connections']:.0f} · requests {plain['asset_connections']:.0f}",
         "concurrent, kept alive", "", ""),
        (f"peak RSS downloading a {args.big_mb} MB asset", f"{rss['nanobanana']:.0f} MB", f"requests script {rss['requests script']:.0f} MB",
         f"`--version` alone {rss['nanobanana --version']:.0f} MB", "≤ 60 MB", verdict(rss["nanobanana"] <= 60)),
        (f"batch: {args.batch_prompts} prompts, -j {args.batch_concurrency}, {args.batch_job_seconds:g} s jobs", f"{many['wall']:.2f} s",
         f"curl ≈{many['curl flow']:.0f} s · requests ≈{many['requests script']:.0f} s (sequential, {args.batch_prompts} × one run)",
         f"{many['wall'] / many['ideal']:.2f}× ideal {many['ideal']:g} s; peak {many['peak_in_flight']} in flight", "≤ 1.25× ideal",
         verdict(many["wall"] <= 1.25 * many["ideal"])),
    ]
    header = ("figure", "nanobanana", "baselines (same run)", "ratio", "target", "verdict")
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"nanobanana benchmark: {machine}; jobs of {job:g} to {job + 1 - 1 / args.runs:g} s (a quarter queued), {args.runs} runs per tool")
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
        for row in (header, *rows):
            print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0 if all(row[5] != "MISSED" for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
