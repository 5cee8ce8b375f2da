"""Peak memory while downloading one big image (the sandbox pads the PNG to N MB).

Measured through peak_rss.py, a small launcher: a child forked straight from this process (which
holds the sandbox and its 50 MB assets) would be charged this process's high-water mark. For the
curl flow the figure is the largest of bash, curl and jq (rusage of reaped children).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from harness import HERE, NANOBANANA, PROMPT, PYTHON, environment, image_files, progress, run, summary

CONTENDERS = ("curl flow", "requests script", "RunComfy CLI strategy", "nanobanana")


# Only memory counts here, so every contender polls often: waiting would only make the section slower.
POLL = "0.05"


def command(contender: str, out: Path) -> list[str]:
    if contender == "curl flow":
        return [shutil.which("bash") or "/bin/bash", str(HERE / "baseline_curl.sh"), PROMPT, "1", str(out), POLL]
    if contender == "requests script":
        return [PYTHON, str(HERE / "baseline_requests.py"), PROMPT, "1", str(out), "--poll", POLL]
    if contender == "RunComfy CLI strategy":
        return [PYTHON, str(HERE / "baseline_runcomfy_cli.py"), PROMPT, "1", str(out), "--poll", POLL]
    if contender == "nanobanana":
        return [*NANOBANANA, "generate", PROMPT, "-o", str(out), "-q"]
    raise ValueError(contender)


def measure(megabytes: int, runs: int, work: Path) -> dict[str, Any]:
    from nanobanana_cli.sandbox import Sandbox

    work = work / "memory"
    work.mkdir(parents=True)
    peaks: dict[str, list[float | None]] = {name: [] for name in CONTENDERS}
    failures = []
    with Sandbox(
        queue_seconds=0, run_seconds=0.05, image_long_side=256, asset_padding_bytes=megabytes * 1024 * 1024, port=0
    ) as sandbox:
        env = environment(work, sandbox)
        for round_no in range(1, runs + 1):
            progress(f"memory: {megabytes} MB download, round {round_no}/{runs}")
            for contender in CONTENDERS:
                out = work / f"out-{round_no}-{CONTENDERS.index(contender)}"
                done = run([PYTHON, str(HERE / "peak_rss.py"), *command(contender, out)], env, timeout=300)
                files = image_files(out)
                ok = done.ok and len(files) == 1 and files[0].stat().st_size >= megabytes * 1024 * 1024
                if not ok:
                    failures.append(f"{contender}: {done.describe_failure()} ({len(files)} file(s))")
                peaks[contender].append(float(done.stdout.strip()) if ok else None)
                shutil.rmtree(out, ignore_errors=True)
    return {
        "megabytes": megabytes,
        "runs": runs,
        "failures": failures,
        "contenders": {name: {"peak_rss_mb": summary(values), "samples": values} for name, values in peaks.items()},
    }
