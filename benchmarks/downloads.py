"""CPU per MB of a download: nanobanana (streamed, hashed, provenance embedded) against a plain streamed copy
(the requests script: `handle.writelines(response.iter_content(256 KiB))`, nothing hashed).

The sandbox pads the big PNG with image data (IDAT), as a real image of that size is: nanobanana then
hashes its bytes twice, once for the file's sha256 and once for the image data's (provenance). Each
round also times one sha256 pass over 64 MiB in this process, so the report can say how much of
nanobanana's figure the two hashes alone account for.

Each contender downloads one small and one big image in the same round (the sandbox pads the PNG to N MB);
CPU per MB is the difference of the two runs' CPU over the difference of their sizes, so start-up, the
submit and the polls cancel out. Rounds interleave the contenders; the ratio is taken within each round.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Any

from harness import HERE, NANOBANANA, PROMPT, PYTHON, environment, image_files, progress, run, summary

CONTENDERS = ("plain streamed copy", "nanobanana")
POLL = "0.05"


def command(contender: str, out: Path) -> list[str]:
    if contender == "plain streamed copy":
        return [PYTHON, str(HERE / "baseline_requests.py"), PROMPT, "1", str(out), "--poll", POLL]
    return [*NANOBANANA, "generate", PROMPT, "-o", str(out), "-q"]


def _cpu(sandbox: Any, padding: int, contender: str, env: dict[str, str], out: Path, failures: list[str]) -> float | None:
    sandbox.asset_padding_bytes = padding
    done = run(command(contender, out), env, timeout=600)
    files = image_files(out)
    ok = done.ok and len(files) == 1 and files[0].stat().st_size >= padding
    shutil.rmtree(out, ignore_errors=True)
    if not ok:
        failures.append(f"{contender}: {done.describe_failure()} ({len(files)} file(s))")
        return None
    return done.cpu


def sha256_ms_per_mb(megabytes: int = 64) -> float:
    """CPU of one sha256 pass over a MB here, the cost nanobanana pays per hash of a download."""
    block = bytes(range(256)) * 4096  # a MiB
    digest = hashlib.sha256()
    started = time.process_time()
    for _ in range(megabytes):
        digest.update(block)
    return (time.process_time() - started) / megabytes * 1000


def measure(megabytes: int, runs: int, work: Path) -> dict[str, Any]:
    from nanobanana_cli.sandbox import Sandbox

    work = work / "downloads"
    work.mkdir(parents=True)
    per_mb: dict[str, list[float | None]] = {name: [] for name in CONTENDERS}
    ratios: list[float | None] = []
    hashing: list[float | None] = []
    failures: list[str] = []
    small = 64 * 1024
    with Sandbox(queue_seconds=0, run_seconds=0.05, image_long_side=256, asset_padding_bytes=small, port=0) as sandbox:
        env = environment(work, sandbox)
        for round_no in range(1, runs + 1):
            progress(f"downloads: CPU per MB of a {megabytes} MB image, round {round_no}/{runs}")
            for contender in CONTENDERS:
                out = work / f"out-{round_no}-{CONTENDERS.index(contender)}"
                low = _cpu(sandbox, small, contender, env, out, failures)
                high = _cpu(sandbox, megabytes * 1024 * 1024, contender, env, out, failures)
                mb = megabytes - small / (1024 * 1024)
                per_mb[contender].append(None if low is None or high is None else max(0.0, high - low) / mb * 1000)
            hashing.append(sha256_ms_per_mb())
            mine, plain = per_mb["nanobanana"][-1], per_mb["plain streamed copy"][-1]
            ratios.append(mine / plain if mine is not None and plain else None)
    return {
        "megabytes": megabytes,
        "runs": runs,
        "failures": failures,
        "contenders": {name: {"cpu_ms_per_mb": summary(values), "samples": values} for name, values in per_mb.items()},
        "ratio": summary(ratios),
        "sha256_ms_per_mb": summary(hashing),
        "hash_passes": 2,
    }
