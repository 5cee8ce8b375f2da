"""The benchmark must keep running from a fresh clone: its tiny configuration, end to end.

Only that it runs and reports is asserted here: exit 0 (every contender's run completed), every
section and contender present, every figure a number. Timing targets are the benchmark's own
business; asserting them here would make the suite flaky on a loaded machine.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JOB_CONTENDERS = {"curl flow", "requests script", "RunComfy CLI strategy", "nanobanana"}
JOB_REFERENCES = {"requests script as a Typer app"}  # a reference run beside the contenders
BATCH_CONTENDERS = {"curl flow (xargs -P)", "requests script (threads)", "nanobanana batch"}


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def assert_summary(summary: dict, where: str) -> None:
    assert summary["n"] >= 1, f"{where}: no successful sample"
    for key in ("median", "min", "max", "p95"):
        assert is_number(summary[key]), f"{where}.{key} is {summary[key]!r}"


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in ("curl", "jq", "xargs")),
    reason="the curl contender needs curl, jq and xargs",
)
def test_benchmark_tiny_configuration_reports_every_section(tmp_path):
    json_path, markdown_path = tmp_path / "results.json", tmp_path / "RESULTS.md"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        "--tiny",
        # one job-flow scenario, not --tiny's two: varqueue alone has both a warm history and random queue waits
        "--scenarios",
        "varqueue",
        "--json",
        str(json_path),
        "--markdown",
        str(markdown_path),
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(command, check=False, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(json_path.read_text())

    assert {"meta", "startup", "jobs", "batch", "memory", "targets"} <= set(results)
    assert results["meta"]["failed_runs"] == []
    for key in ("cpu", "cores", "python"):
        assert results["meta"]["machine"][key]

    assert set(results["startup"]["pairs"]) == {"help", "dry_run", "status"}
    for key, pair in results["startup"]["pairs"].items():
        for figure in ("nanobanana_s", "bare_s", "ratio"):
            assert_summary(pair[figure], f"startup.{key}.{figure}")

    scenarios = results["jobs"]["scenarios"]
    assert scenarios, "no job-flow scenario ran"
    for name, scenario in scenarios.items():
        assert set(scenario["contenders"]) == JOB_CONTENDERS | JOB_REFERENCES
        for contender, figures in scenario["contenders"].items():
            assert figures["failures"] == 0, figures["samples"]
            for metric in ("lag", "to_disk", "overhead", "requests", "cpu"):
                assert_summary(figures["summary"][metric], f"{name}.{contender}.{metric}")

    assert results["batch"]["configs"]
    for config in results["batch"]["configs"]:
        assert set(config["contenders"]) == BATCH_CONTENDERS
        for contender, figures in config["contenders"].items():
            for metric in ("wall", "vs_ideal", "failures", "requests_per_job", "cpu"):
                assert_summary(figures["summary"][metric], f"batch.{contender}.{metric}")

    assert set(results["memory"]["contenders"]) == JOB_CONTENDERS
    for contender, figures in results["memory"]["contenders"].items():
        assert_summary(figures["peak_rss_mb"], f"memory.{contender}")

    assert set(results["downloads"]["contenders"]) == {"plain streamed copy", "nanobanana"}
    for contender, figures in results["downloads"]["contenders"].items():
        assert_summary(figures["cpu_ms_per_mb"], f"downloads.{contender}")
    for contender, figures in results["upload"]["contenders"].items():
        assert_summary(figures["to_submit_s"], f"upload.{contender}.to_submit_s")
        assert_summary(figures["peak_rss_mb"], f"upload.{contender}.peak_rss_mb")
    assert_summary(results["upload"]["rss_above_baseline_mb"], "upload.rss_above_baseline_mb")

    measured = [t for t in results["targets"] if t["pass"] is not None]
    assert measured and all(is_number(t["value"]) for t in measured)

    markdown = markdown_path.read_text()
    assert "Targets" in markdown and "cores" in markdown and "Python" in markdown
    assert "Targets" in proc.stdout
