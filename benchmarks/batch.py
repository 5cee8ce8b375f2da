"""Batch throughput: P prompts, J jobs in flight, against jobs of exactly 1 s (queue 0, run 1).

Contenders, interleaved round by round:
- the curl flow under `xargs -P J` (how a shell user parallelises it; one image per prompt);
- the requests script's `run_job` on J threads sharing one Session (baseline_requests_batch.py);
- `nanobanana batch FILE -j J`.

The ideal is ceil(P / J) x job seconds: J jobs at a time, each taking exactly its run time, no
overhead at all. A failure is a prompt without its image on disk (the exit code is kept too).
nanobanana gets a history warmed with jobs of the same length, as a user who ran jobs before would.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

from harness import (
    HERE,
    NANOBANANA,
    POLL_PATH,
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
    summary,
)
from job_flow import warm_history

CONTENDERS = ("curl flow (xargs -P)", "requests script (threads)", "nanobanana batch")


def command(contender: str, prompts: Path, out: Path, concurrency: int, poll_scale: float) -> list[str]:
    if contender == "curl flow (xargs -P)":
        script = 'xargs -d "\\n" -P "$1" -I{} bash "$2" {} 1 "$3" "$4" < "$5" > /dev/null'
        return [
            "bash",
            "-c",
            script,
            "xargs-batch",
            str(concurrency),
            str(HERE / "baseline_curl.sh"),
            str(out),
            f"{poll_scale:g}",
            str(prompts),
        ]
    if contender == "requests script (threads)":
        return [
            PYTHON,
            str(HERE / "baseline_requests_batch.py"),
            str(prompts),
            str(out),
            "-j",
            str(concurrency),
            "--poll",
            f"{0.25 * poll_scale:g}",
        ]
    if contender == "nanobanana batch":
        return [*NANOBANANA, "batch", str(prompts), "-j", str(concurrency), "-o", str(out), "-q"]
    raise ValueError(contender)


def one_config(
    prompts: int, concurrency: int, job_seconds: float, runs: int, poll_scale: float, warm_jobs: int, work: Path
) -> dict[str, Any]:
    from nanobanana_cli.sandbox import Sandbox

    work = work / f"batch-{prompts}x{concurrency}"
    work.mkdir(parents=True)
    prompt_file = work / "prompts.txt"
    prompt_file.write_text("".join(f"{PROMPT}, variation {n}\n" for n in range(1, prompts + 1)))
    ideal = math.ceil(prompts / concurrency) * job_seconds
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    with Sandbox(queue_seconds=0, run_seconds=job_seconds, image_long_side=256, port=0) as sandbox:
        template = work / "template-data"
        template.mkdir()
        if warm_jobs:
            warm_history(sandbox, work, template, [(0.0, job_seconds)] * warm_jobs)
        set_job(sandbox, 0.0, job_seconds)
        for round_no in range(1, runs + 1):
            progress(f"  batch {prompts} prompts -j {concurrency}: round {round_no}/{runs} (ideal {ideal:g} s)")
            for contender in CONTENDERS:
                out = work / f"out-{round_no}-{CONTENDERS.index(contender)}"
                data_dir = copy_tree(template, work / f"data-{round_no}")
                mark = log_mark(sandbox)
                done = run(
                    command(contender, prompt_file, out, concurrency, poll_scale),
                    environment(work, sandbox, data_dir=data_dir),
                    timeout=ideal * 10 + 120,
                )
                records = log_since(sandbox, mark)
                saved = len(image_files(out))
                polls = sum(1 for r in records if r.listener == "api" and r.method == "GET" and POLL_PATH.match(r.path))
                submits = sum(
                    1
                    for r in records
                    if r.listener == "api" and r.method == "POST" and r.path.startswith("/v1/models/")
                )
                sample = {
                    "round": round_no,
                    "exit_code": done.returncode,
                    "timed_out": done.timed_out,
                    "wall": done.wall,
                    "vs_ideal": done.wall / ideal,
                    "cpu": done.cpu,
                    "saved": saved,
                    "failures": prompts - saved,
                    "submits": submits,
                    "requests_per_job": polls / prompts,
                }
                if done.returncode != 0 or saved != prompts:
                    sample["error"] = done.describe_failure()
                    progress(f"    {contender}: exit {done.returncode}, {saved}/{prompts} saved")
                samples[contender].append(sample)
                shutil.rmtree(out, ignore_errors=True)
    contenders = {}
    for name, runs_ in samples.items():
        contenders[name] = {
            "summary": {
                metric: summary([s[metric] for s in runs_])
                for metric in ("wall", "vs_ideal", "cpu", "failures", "requests_per_job", "submits")
            },
            "failed_runs": sum(1 for s in runs_ if s["exit_code"] != 0 or s["failures"]),
            "samples": runs_,
        }
    return {
        "prompts": prompts,
        "concurrency": concurrency,
        "job_seconds": job_seconds,
        "ideal_s": ideal,
        "runs": runs,
        "contenders": contenders,
    }


def measure(
    grid: list[tuple[int, int]], job_seconds: float, runs: int, poll_scale: float, warm_jobs: int, work: Path
) -> dict[str, Any]:
    configs = []
    for prompts, concurrency in grid:
        progress(f"batch: {prompts} prompts at -j {concurrency}")
        configs.append(one_config(prompts, concurrency, job_seconds, runs, poll_scale, warm_jobs, work))
    return {"contenders": list(CONTENDERS), "configs": configs}
