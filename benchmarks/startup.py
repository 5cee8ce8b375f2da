"""Start-up: nanobanana against a bare one-command Typer app set up the same way (bare_typer_app.py),
pair by pair, interleaved round by round, with one unmeasured warm-up round for both (page cache,
bytecode caches).

- `--help` vs the bare app's `--help` (both plain Click help, no Rich);
- `generate "x" --dry-run` vs the bare app printing a request (it imports requests, as a real
  command must);
- `status ID` vs the bare app doing one GET of /status. The job is kept queued, so nanobanana also
  makes exactly one request (a finished job would cost it a second one, for the outcome).
"""

from __future__ import annotations

import json
import statistics
import urllib.request
from pathlib import Path
from typing import Any

from harness import HERE, NANOBANANA, PYTHON, environment, progress, run, summary

BARE = [PYTHON, str(HERE / "bare_typer_app.py")]
PAIRS = {
    # key: (title, nanobanana argv, bare argv, target ratio)
    "help": ("`--help`", ["--help"], ["--help"], 1.1),
    "dry_run": ('`generate "x" --dry-run`', ["generate", "x", "--dry-run"], ["x", "--dry-run"], 1.1),
    "status": ("`status ID` (one GET)", ["status", "{id}"], ["{id}", "--status"], 1.3),
}


def queued_job(sandbox: Any) -> str:
    """Submit straight to the sandbox (urllib: this process need not import requests)."""
    request = urllib.request.Request(
        f"{sandbox.base_url}/v1/models/google/nano-banana/text-to-image",
        data=json.dumps({"prompt": "start-up probe"}).encode(),
        headers={"Authorization": f"Bearer {sandbox.token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["request_id"]


def measure(runs: int, work: Path, *, warmup: bool = True, baseline: Path | None = None) -> dict[str, Any]:
    """With `baseline` (a directory holding an older commit's `nanobanana_cli`), each command also runs
    from it and from this checkout, both as `python -m nanobanana_cli`, in the same rounds."""
    from nanobanana_cli.sandbox import Sandbox

    work = work / "startup"
    work.mkdir(parents=True)
    with Sandbox(queue_seconds=24 * 3600, run_seconds=1, image_long_side=64, port=0) as sandbox:
        request_id = queued_job(sandbox)
        env = environment(work, sandbox)
        envs = {"": env}
        commands: dict[str, list[str]] = {}
        for key, (_, ours, bare, _) in PAIRS.items():
            argv = [a.replace("{id}", request_id) for a in ours]
            commands[f"{key}:nanobanana"] = [*NANOBANANA, *argv]
            commands[f"{key}:bare"] = [*BARE, *(a.replace("{id}", request_id) for a in bare)]
            if baseline is not None:
                commands[f"{key}:this commit"] = [PYTHON, "-m", "nanobanana_cli", *argv]
                commands[f"{key}:baseline"] = [PYTHON, "-m", "nanobanana_cli", *argv]
        if baseline is not None:  # its own data directory: an older history schema is not this one's
            envs["baseline"] = {**environment(work / "baseline", sandbox), "PYTHONPATH": str(baseline)}
        times: dict[str, list[float | None]] = {name: [] for name in commands}  # None: that run failed
        failures: list[str] = []
        for round_no in range(0 if warmup else 1, runs + 1):  # round 0 warms caches and is not kept
            if round_no and (round_no == 1 or round_no % 5 == 0):
                progress(f"startup: round {round_no}/{runs}")
            for name, argv in commands.items():
                done = run(argv, envs.get(name.split(":")[1], env), timeout=60)
                if not done.ok:
                    failures.append(f"{name}: {done.describe_failure()}")
                if round_no:
                    times[name].append(done.wall if done.ok else None)
    pairs = {}
    for key, (title, ours, bare, target) in PAIRS.items():
        mine, theirs = times[f"{key}:nanobanana"], times[f"{key}:bare"]
        ratios = [a / b for a, b in zip(mine, theirs) if a is not None and b is not None]  # same-round ratios
        pairs[key] = {
            "title": title,
            "nanobanana_argv": " ".join(ours),
            "bare_argv": " ".join(bare),
            "nanobanana_s": summary(mine),
            "bare_s": summary(theirs),
            "ratio": summary(ratios),
            "ratio_of_medians": _ratio_of_medians(mine, theirs),
            "target_ratio": target,
            "samples": {"nanobanana": mine, "bare": theirs},
        }
    against = {}
    for key, (title, *_) in PAIRS.items() if baseline is not None else ():
        mine, theirs = times[f"{key}:this commit"], times[f"{key}:baseline"]
        against[key] = {
            "title": title,
            "this_commit_s": summary(mine),
            "baseline_s": summary(theirs),
            "ratio": summary([a / b for a, b in zip(mine, theirs) if a is not None and b is not None]),
        }
    return {"runs": runs, "warmup_round": warmup, "failures": failures, "pairs": pairs, "against_baseline": against}


def _ratio_of_medians(mine: list[float | None], theirs: list[float | None]) -> float | None:
    a, b = [x for x in mine if x is not None], [x for x in theirs if x is not None]
    return statistics.median(a) / statistics.median(b) if a and b else None
