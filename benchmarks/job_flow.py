"""The job flow: `generate -n 4` (submit, wait, download four images) by four contenders and a
reference (the requests script as a Typer app), in several scenarios, interleaved run by run
(A B C D E, A B C D E, ...) so that a busy moment on the machine hits every contender alike.

Each scenario gets its own sandbox (so its image cache is freed afterwards) and, where nanobanana
should have a history, a template data directory warmed by real `nanobanana generate` runs against
that same sandbox (the CLI learns durations per API base URL). Every nanobanana run then starts
from a fresh copy of that template, so its own runs do not drift what it has learned.
"""

from __future__ import annotations

import contextlib
import math
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    HERE,
    NANOBANANA,
    PROMPT,
    PYTHON,
    copy_tree,
    environment,
    image_files,
    log_mark,
    log_since,
    progress,
    run,
    set_job,
    single_job,
    summary,
)

# A reference, not a rival: the requests script started as a Typer CLI starts (see its docstring).
TYPER_REFERENCE = "requests script as a Typer app"
CONTENDERS = ("curl flow", "requests script", TYPER_REFERENCE, "RunComfy CLI strategy", "nanobanana")
CONTENDER_NOTES = {
    "curl flow": "RunComfy's documented flow: curl + jq, /status every 1 s, /result, images in one curl --parallel",
    "requests script": "one requests Session, /result every 0.25 s, 4 images streamed concurrently",
    TYPER_REFERENCE: (
        "a reference, not a rival: the same script as a one-command Typer app configured like nanobanana "
        "(what any Typer CLI pays before its first request)"
    ),
    "RunComfy CLI strategy": (
        "the official `runcomfy run` strategy, in Python: /status at once and every 2 s, /result, "
        "images streamed one by one"
    ),
    "nanobanana": "`nanobanana generate PROMPT -n 4 -o DIR`",
}
NUM_IMAGES = 4
METRICS = ("lag", "to_disk", "overhead", "to_submit", "after_files", "wall", "requests", "status_requests", "result_requests", "cpu")
# Jobs of exactly these lengths with a history of the same: the requests script polls every 0.25 s, so a
# length that is a multiple of that interval favours it by chance; these sit at different phases of it.
FIXED_SECONDS = (2.3, 2.7, 3.7)
FIXED_KEYS = tuple(f"at{seconds:g}" for seconds in FIXED_SECONDS)
SCENARIO_KEYS = ("first", "learned", "faster", "slower", "varqueue", "long", *FIXED_KEYS)


@dataclass(frozen=True)
class Settings:
    job_seconds: float = 2.5  # the typical job: 20 % queued, 80 % running
    long_seconds: float = 30.0  # the long job of the request-count comparison
    runs: int = 7
    long_runs: int = 3
    warm_jobs: int = 5
    seed: int = 1
    poll_scale: float = 1.0  # multiplies the baselines' poll intervals (only --tiny changes it)
    image_long_side: int = 1024
    padding_bytes: int = 1024 * 1024  # ~1 MB more per PNG: nano-banana's real PNGs are ~1-2 MB


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    note: str
    jobs: list[tuple[float, float]]  # (queue seconds, run seconds) per round, the same for every contender
    warm: list[tuple[float, float]] | None  # jobs that fill nanobanana's history first; None: empty history


def _jittered(rng: random.Random, count: int, queue: float, running: float) -> list[tuple[float, float]]:
    """+-10 %, so that fixed-interval pollers meet completion at varied phases of their period."""
    factors = [rng.uniform(0.9, 1.1) for _ in range(count)]
    return [(queue * f, running * f) for f in factors]


def _random_queue(rng: random.Random, count: int, max_queue: float, running: float) -> list[tuple[float, float]]:
    return [(rng.uniform(0.0, max_queue), running) for _ in range(count)]


def build_scenario(key: str, settings: Settings) -> Scenario:
    """Seeded job durations (a scenario's values do not depend on which other scenarios run)."""
    rng = random.Random(f"{settings.seed}-{key}")
    runs = settings.long_runs if key == "long" else settings.runs
    j = settings.job_seconds
    queue, running = 0.2 * j, 0.8 * j
    learned = [(queue, running)] * settings.warm_jobs
    if key == "first":
        note = f"jobs of {j:g} s +-10 %, a fresh data directory per run"
        return Scenario(key, "first job (empty history)", note, _jittered(rng, runs, queue, running), None)
    if key == "learned":
        note = f"history holds {settings.warm_jobs} jobs of {j:g} s; every job is exactly {j:g} s"
        return Scenario(key, "learned duration right", note, [(queue, running)] * runs, learned)
    if key == "faster":
        note = f"history says {j:g} s; jobs of {j / 3:.3g} s +-10 %"
        return Scenario(key, "job 3x faster than learned", note, _jittered(rng, runs, queue / 3, running / 3), learned)
    if key == "slower":
        note = f"history says {j:g} s; jobs of {3 * j:g} s +-10 %"
        return Scenario(key, "job 3x slower than learned", note, _jittered(rng, runs, queue * 3, running * 3), learned)
    if key == "varqueue":
        warm = _random_queue(rng, settings.warm_jobs, running, running)
        note = f"run {running:g} s, queue uniform 0-{running:g} s (seeded), history from the same distribution"
        return Scenario(
            key, "learned run time, variable queue wait", note, _random_queue(rng, runs, running, running), warm
        )
    if key in FIXED_KEYS:
        seconds = float(key[2:])
        job = (0.2 * seconds, 0.8 * seconds)
        note = f"history holds {settings.warm_jobs} jobs of {seconds:g} s; every job is exactly {seconds:g} s"
        return Scenario(key, f"{seconds:g} s jobs, learned", note, [job] * runs, [job] * settings.warm_jobs)
    if key == "long":
        long_run, long_queue = 0.9 * settings.long_seconds, 0.2 * settings.long_seconds
        warm = _random_queue(rng, settings.warm_jobs, long_queue, long_run)
        note = f"run {long_run:g} s, queue uniform 0-{long_queue:g} s (seeded), history from the same distribution"
        title = f"{settings.long_seconds:g} s job, variable queue wait"
        return Scenario(key, title, note, _random_queue(rng, runs, long_queue, long_run), warm)
    raise ValueError(f"unknown scenario {key!r}")


def command(contender: str, out: Path, settings: Settings) -> list[str]:
    def seconds(value: float) -> str:
        return f"{value * settings.poll_scale:g}"

    if contender == "curl flow":
        return ["bash", str(HERE / "baseline_curl.sh"), PROMPT, str(NUM_IMAGES), str(out), seconds(1.0)]
    if contender == "requests script":
        return [PYTHON, str(HERE / "baseline_requests.py"), PROMPT, str(NUM_IMAGES), str(out), "--poll", seconds(0.25)]
    if contender == TYPER_REFERENCE:
        return [
            PYTHON,
            str(HERE / "baseline_typer_requests.py"),
            PROMPT,
            str(NUM_IMAGES),
            str(out),
            "--poll",
            seconds(0.25),
        ]
    if contender == "RunComfy CLI strategy":
        return [
            PYTHON,
            str(HERE / "baseline_runcomfy_cli.py"),
            PROMPT,
            str(NUM_IMAGES),
            str(out),
            "--poll",
            seconds(2.0),
        ]
    if contender == "nanobanana":
        return [*NANOBANANA, "generate", PROMPT, "-n", str(NUM_IMAGES), "-o", str(out)]
    raise ValueError(contender)


def warm_history(sandbox: Any, work: Path, data_dir: Path, jobs: list[tuple[float, float]]) -> None:
    """Fill `data_dir`'s history with real runs of the given durations, as a user's would be.

    The runs overlap (so warming costs about one job's time), but each is launched only after the
    previous one's submit has reached the sandbox: the sandbox's durations apply at submit time.
    """
    env = environment(work, sandbox, data_dir=data_dir)
    with contextlib.ExitStack() as stack:
        running = []
        for index, (queue, run_seconds) in enumerate(jobs):
            set_job(sandbox, queue, run_seconds)
            before = sandbox.stats.submits
            errors = stack.enter_context(tempfile.TemporaryFile())
            process = subprocess.Popen(
                [*NANOBANANA, "generate", f"warm-up {index}", "-n", "1", "-o", str(work / "warm-out"), "-q"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            running.append((process, errors))
            deadline = time.monotonic() + 60
            while sandbox.stats.submits == before and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
        for process, errors in running:
            code = process.wait(timeout=max(q + r for q, r in jobs) + 120)
            if code != 0:
                errors.seek(0)
                message = errors.read().decode(errors="replace")
                raise RuntimeError(f"warming the history failed (exit {code}): {message[-500:]}")
    shutil.rmtree(work / "warm-out", ignore_errors=True)


def one_run(
    sandbox: Any, contender: str, job: tuple[float, float], out: Path, data_dir: Path, work: Path, settings: Settings
) -> dict[str, Any]:
    queue, run_seconds = job
    job_seconds = queue + run_seconds
    set_job(sandbox, queue, run_seconds)
    mark = log_mark(sandbox)
    done = run(
        command(contender, out, settings), environment(work, sandbox, data_dir=data_dir), timeout=job_seconds + 120
    )
    records = log_since(sandbox, mark)
    sample: dict[str, Any] = {
        "queue_s": queue,
        "run_s": run_seconds,
        "job_s": job_seconds,
        "ok": False,
        "error": None,
        "wall": done.wall,
        "overhead": done.wall - job_seconds,
        "cpu": done.cpu,
        **{
            metric: math.nan
            for metric in ("lag", "to_disk", "to_submit", "after_files", "requests", "status_requests", "result_requests")
        },
    }
    try:
        if not done.ok:
            raise RuntimeError(done.describe_failure())
        files = image_files(out)
        if len(files) != NUM_IMAGES:
            raise RuntimeError(f"saved {len(files)} of {NUM_IMAGES} images")
        trace = single_job(records, job_seconds)
        # The sandbox's own finish time: the submit answer leaves a moment after the job is created, so
        # answer + duration runs a millisecond or two late, and a poll right at the finish looked early.
        finished = sandbox.job(trace.request_id)
        if finished is not None:
            trace.finished_at = finished.finished_at
        # mtime = the last byte written; renaming into place afterwards takes microseconds
        last_file = max(path.stat().st_mtime for path in files)
        sample.update(
            ok=True,
            lag=trace.detection_lag,
            to_disk=last_file - trace.finished_at,
            # where the rest of the overhead goes: start-up before the submit, and work after the last file
            to_submit=finished.created_at - done.spawned_at if finished is not None else math.nan,
            after_files=done.exited_at - last_file,
            requests=trace.requests,
            status_requests=trace.status_requests,
            result_requests=trace.result_requests,
            # every poll's answer time relative to completion (negative: before it), to check the figures by hand
            polls_vs_completion=[round(t - trace.finished_at, 4) for t in trace.poll_times],
        )
    except RuntimeError as exc:
        sample["error"] = f"{contender}: {exc}"
    finally:
        shutil.rmtree(out, ignore_errors=True)  # ~4 MB per run: do not let a long benchmark fill the disk
    return sample


def run_scenario(scenario: Scenario, settings: Settings, work: Path) -> dict[str, Any]:
    from nanobanana_cli.sandbox import Sandbox

    work = work / f"jobs-{scenario.key}"
    work.mkdir(parents=True)
    first_queue, first_run = scenario.jobs[0]
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    with Sandbox(
        queue_seconds=first_queue,
        run_seconds=first_run,
        image_long_side=settings.image_long_side,
        asset_padding_bytes=settings.padding_bytes,
        port=0,
    ) as sandbox:
        template = work / "template-data"
        if scenario.warm:
            progress(f"  {scenario.key}: warming nanobanana's history with {len(scenario.warm)} jobs")
            warm_history(sandbox, work, template, scenario.warm)
        for round_no, job in enumerate(scenario.jobs, start=1):
            progress(
                f"  {scenario.key}: round {round_no}/{len(scenario.jobs)}"
                f" (job {job[0]:.2f} s queued + {job[1]:.2f} s running)"
            )
            for contender in CONTENDERS:
                data_dir = work / f"data-{round_no}"
                if contender == "nanobanana":
                    if scenario.warm:
                        copy_tree(template, data_dir)
                    else:
                        shutil.rmtree(data_dir, ignore_errors=True)  # empty history: a first job
                sample = one_run(
                    sandbox,
                    contender,
                    job,
                    work / f"out-{round_no}-{CONTENDERS.index(contender)}",
                    data_dir,
                    work,
                    settings,
                )
                sample["round"] = round_no
                if sample["error"]:
                    progress(f"    FAILED {sample['error'][:300]}")
                samples[contender].append(sample)
    contenders = {}
    for name, runs in samples.items():
        good = [s for s in runs if s["ok"]]
        contenders[name] = {
            "note": CONTENDER_NOTES[name],
            "failures": len(runs) - len(good),
            "summary": {metric: summary([s[metric] for s in good]) for metric in METRICS},
            "samples": runs,
        }
    warm_totals = [q + r for q, r in scenario.warm] if scenario.warm else []
    return {
        "title": scenario.title,
        "note": scenario.note,
        "runs": len(scenario.jobs),
        "jobs": [{"queue_s": q, "run_s": r} for q, r in scenario.jobs],
        "history_median_s": statistics.median(warm_totals) if warm_totals else None,
        "contenders": contenders,
    }


def measure(settings: Settings, keys: list[str], work: Path) -> dict[str, Any]:
    results = {}
    for scenario in (build_scenario(key, settings) for key in keys):
        progress(f"job flow: {scenario.title}")
        results[scenario.key] = run_scenario(scenario, settings, work)
    return {
        "contenders": list(CONTENDERS),
        "num_images": NUM_IMAGES,
        "settings": settings.__dict__,
        "scenarios": results,
    }
