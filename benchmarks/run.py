"""nanobanana benchmark: the job flow (including 2.3, 2.7 and 3.7 s jobs), start-up (optionally against an
older commit), batch throughput, download memory and CPU per MB, the edit upload, the gallery and the
history's scale, each measured against other ways of doing the same thing, in the same run, on a local
sandbox of RunComfy's API (nothing leaves 127.0.0.1). Every target of issue 25 is printed with its
limit and whether it is met, in the "Targets" table at the end.

Job-flow contenders (`generate -n 4`: submit, wait, download four images):
  1. curl flow       baseline_curl.sh: RunComfy's documented curl flow, /status every 1 s, then /result
  2. requests script baseline_requests.py: one Session, /result every 0.25 s, concurrent streamed downloads
  3. RunComfy CLI    baseline_runcomfy_cli.py: the official Rust CLI's strategy (/status every 2 s,
                     sequential streamed downloads), reimplemented in Python
  4. nanobanana      nanobanana generate PROMPT -n 4 -o DIR
  and, as a reference rather than a rival, the requests script as a one-command Typer app
  (baseline_typer_requests.py): the start-up any Typer CLI pays before its first request

Every contender runs interleaved (A B C D, A B C D, ...); figures are medians with min-max.

    python benchmarks/run.py                         # everything, default runs (about an hour)
    python benchmarks/run.py --baseline-commit d3044fa   # and start-up against an older commit, same rounds
    python benchmarks/run.py --sections startup,jobs --scenarios first,learned --runs 9
    python benchmarks/run.py --quick --json /tmp/r.json  # smoke configuration (= --tiny): seconds, figures meaningless

Writes benchmarks/results.json and benchmarks/RESULTS.md unless told otherwise (--tiny writes
only where told). Exit status: 0 when every measurement ran; 3 when some run of a contender
failed to complete (see the JSON); with --strict, 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling modules, also when run from elsewhere

import batch
import downloads
import gallery
import history_scale
import job_flow
import memory
import report
import startup
import upload
from harness import NANOBANANA, ROOT, compile_package, progress

SECTIONS = ("startup", "jobs", "batch", "memory", "downloads", "upload", "gallery", "history")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--tiny", "--quick", action="store_true", help="smoke configuration: tiny jobs, one run each, a few seconds in all"
    )
    parser.add_argument(
        "--baseline-commit", metavar="COMMIT",
        help="also time --help, status ID and generate --dry-run from this older commit's package (git archive), same rounds",
    )
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, from {','.join(SECTIONS)}")
    parser.add_argument(
        "--scenarios",
        default=None,
        help=f"job-flow scenarios, from {','.join(job_flow.SCENARIO_KEYS)} (default all; --tiny: learned,varqueue)",
    )
    parser.add_argument(
        "--runs", type=int, default=7, help="interleaved runs per contender per job-flow scenario (default 7)"
    )
    parser.add_argument("--long-runs", type=int, default=3, help="runs of the long-job scenario (default 3)")
    parser.add_argument(
        "--job-seconds", type=float, default=2.5, help="typical job duration, 20%% queued (default 2.5)"
    )
    parser.add_argument("--long-seconds", type=float, default=30.0, help="duration of the long job (default 30)")
    parser.add_argument("--startup-runs", type=int, default=21, help="interleaved start-up rounds (default 21)")
    parser.add_argument(
        "--batch-runs", type=int, default=5, help="interleaved runs per batch configuration (default 5)"
    )
    parser.add_argument("--batch-sizes", default="40,200,1000", help="prompts per batch (default 40,200,1000)")
    parser.add_argument("--batch-concurrency", default="8,32", help="-j values (default 8,32)")
    parser.add_argument("--batch-job-seconds", type=float, default=1.0)
    parser.add_argument(
        "--batch-long", action="store_true", help="also run batch configurations whose ideal exceeds 40 s (1000 at -j 8)"
    )
    parser.add_argument("--memory-runs", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=50, help="size of the image in the memory section (default 50)")
    parser.add_argument("--download-runs", type=int, default=5, help="interleaved rounds of the downloads section")
    parser.add_argument("--download-mb", type=int, default=200, help="size of its big image (default 200)")
    parser.add_argument("--upload-runs", type=int, default=5, help="interleaved rounds of the edit upload section")
    parser.add_argument("--upload-images", type=int, default=10, help="images sent (default 10)")
    parser.add_argument("--upload-mib", type=float, default=4.6,
                        help="MiB per image (default 4.6: ten fit the 64 MiB request limit base64-encoded)")
    _gallery_options(parser)
    _history_options(parser)
    parser.add_argument("--seed", type=int, default=1, help="seed of the jittered and random job durations")
    parser.add_argument(
        "--json", dest="json_path", default=None, help="where to write the JSON (default benchmarks/results.json)"
    )
    parser.add_argument(
        "--markdown", dest="markdown_path", default=None, help="where to write the Markdown (default benchmarks/RESULTS.md)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--package-label",
        help="what nanobanana build is measured, for the report (e.g. a commit of an installed snapshot)",
    )
    parser.add_argument(
        "--report-only", metavar="JSON", help="measure nothing: print and write the report of a saved results JSON"
    )
    return _normalised(parser, parser.parse_args(argv))


def _gallery_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("gallery section")
    group.add_argument("--gallery-runs", type=int, default=5, help="interleaved rounds (default 5)")
    group.add_argument("--gallery-images", type=int, default=1000, help="images in its folder (default 1000)")
    group.add_argument("--gallery-rows", type=int, default=100_000, help="jobs in the big history (default 100000)")


def _history_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("history section (inspect of many files, history stats, at several history sizes)")
    group.add_argument("--history-runs", type=int, default=5, help="interleaved rounds (default 5)")
    group.add_argument("--history-images", type=int, default=1000, help="files given to inspect (default 1000)")
    group.add_argument("--history-sizes", default="250,10000,100000", help="history sizes (default 250,10000,100000)")


def _normalised(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """--tiny's configuration, default output paths, and the lists parsed and checked."""
    if args.tiny:
        # Small enough for a unit test, yet through every code path: warm history, random queues, all contenders.
        args.runs = args.long_runs = args.startup_runs = args.batch_runs = args.memory_runs = args.gallery_runs = 1
        args.gallery_images, args.gallery_rows = 8, 40
        args.history_runs, args.history_images, args.history_sizes = 1, 8, "20,60"
        args.job_seconds, args.long_seconds, args.batch_job_seconds, args.big_mb = 0.15, 0.3, 0.1, 2
        args.download_runs, args.download_mb = 1, 4
        args.upload_runs, args.upload_images, args.upload_mib = 1, 2, 0.2
        args.batch_sizes, args.batch_concurrency = "4", "2"
        args.scenarios = args.scenarios or "learned,varqueue"
    else:
        args.json_path = args.json_path or str(HERE / "results.json")
        args.markdown_path = args.markdown_path or str(HERE / "RESULTS.md")
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    args.scenarios = [s.strip() for s in (args.scenarios or ",".join(job_flow.SCENARIO_KEYS)).split(",") if s.strip()]
    for name in args.sections:
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}")
    for name in args.scenarios:
        if name not in job_flow.SCENARIO_KEYS:
            parser.error(f"unknown scenario {name!r}")
    return args


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import nanobanana_cli

    package = Path(nanobanana_cli.__file__).resolve().parent
    if package.parent == ROOT:  # this checkout (editable install): its commit, and whether it has local edits

        def git(*command: str) -> str:
            try:
                return subprocess.run(
                    ["git", "-C", str(ROOT), *command], check=False, capture_output=True, text=True, timeout=10
                ).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                return ""

        source = git("rev-parse", "--short", "HEAD") or "unknown commit"
        if git("status", "--porcelain", "--", "nanobanana_cli"):
            source += " + uncommitted changes to nanobanana_cli/"
    else:  # e.g. a snapshot of one commit installed in another venv, so others' edits cannot change it mid-run
        source = f"installed at {package}"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "nanobanana": nanobanana_cli.__version__,
        "commit": source,
        "curl": (
            subprocess.run(["curl", "--version"], check=False, capture_output=True, text=True)
            .stdout.split("\n")[0]
            .split(" ")[1:2]
            or ["?"]
        )[0],
    }


def clean(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be measured is null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def failures(results: dict[str, Any]) -> list[str]:
    """Runs that did not complete (batch failures are figures of their own, not listed here)."""
    sections = ("startup", "memory", "downloads", "upload", "gallery", "history")
    found = [failure for section in sections for failure in results.get(section, {}).get("failures", [])]
    for scenario in results.get("jobs", {}).get("scenarios", {}).values():
        for contender in scenario["contenders"].values():
            found += [s["error"] for s in contender["samples"] if s["error"]]
    return found


NOISE_NOTE = (
    "The machine is shared with other work, so figures are noisy: read medians with their min–max range, "
    "and compare contenders within one run (they are interleaved), not across runs of the benchmark."
)
READING_NOTES = [
    (
        "*Detection lag*: from the job's completion on the sandbox (the moment its timetable ends, as the "
        "sandbox records it) to the first /status or /result answer given after it."
    ),
    "*Completion -> last file*: from that completion to the last image's final write on disk.",
    "*Overhead*: the contender's wall time (process start to exit) minus the job's own duration.",
    (
        "*Spawn -> submit*: from the process's start to the sandbox creating its job (start-up, the submit); "
        "*last file -> exit*: from the last image's final write to the process's exit (records, output, shutdown)."
    ),
    "*Requests*: /status and /result requests for the job (submits and downloads excluded).",
    "*CPU*: user + system seconds of the process and its children (curl, jq).",
    (
        "The RunComfy CLI contender is a Python reimplementation of the official Rust CLI's strategy: it "
        "pays Python's start-up (~0.15 s) where the real binary would not, so its overhead and CPU are "
        "pessimistic; its detection lag and request count are the real CLI's."
    ),
    "p95 is interpolated between order statistics: with 7 runs it is close to the worst run.",
    (
        "Every Python contender runs with bytecode caches, as installed software does (pip compiles at "
        "install; the benchmark compiles nanobanana's package first and lets children write caches)."
    ),
    (
        "Every Python contender starts and exits the way nanobanana's console script does: young garbage "
        "collections every 50,000 allocations rather than 700 (none during start-up, ~10 ms saved with Typer "
        "and requests), and, once the output is flushed, an immediate exit without Python's module teardown "
        "(~8 ms saved)."
    ),
]


def markdown_document(results: dict[str, Any], tables: list[report.Table], command: str) -> str:
    meta = results["meta"]
    m = meta["machine"]
    machine_line = (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}, Python {m['python']}, curl {m['curl']}; "
        f"nanobanana {m['nanobanana']} ({m['commit']}). "
        f"Load average before/after: {meta['load_before']} / {meta['load_after']}."
    )
    lines = [
        "# nanobanana benchmark results",
        "",
        f"Generated by `{command}` on {meta['started']} (took {meta['seconds'] / 60:.1f} min).",
        "",
        machine_line,
        "",
        NOISE_NOTE,
        "",
        "How to read it:",
        *(f"- {note}" for note in READING_NOTES),
        "",
    ]
    scenarios = results.get("jobs", {}).get("scenarios", {})
    if scenarios:
        first = next(iter(scenarios.values()))
        lines += ["Job-flow contenders, run in this order in every round:", ""]
        lines += [f"{n}. **{name}**: {c['note']}" for n, (name, c) in enumerate(first["contenders"].items(), start=1)]
        lines += [""]
    skipped = results.get("batch", {}).get("skipped")
    if skipped:
        lines += [f"Batch configurations not run: {', '.join(skipped)}.", ""]
    for table in tables:
        lines += [table.markdown(), ""]
    return "\n".join(lines)


def report_only(args: argparse.Namespace) -> int:
    results = json.loads(Path(args.report_only).read_text())
    targets = report.evaluate_targets(results)
    tables = report.all_tables(results, targets)
    for table in tables:
        print(table.text() + "\n")
    if args.markdown_path:
        command = shlex.join(["python", "benchmarks/run.py", *results["meta"]["argv"]])
        Path(args.markdown_path).write_text(markdown_document(results, tables, command))
        progress(f"wrote {args.markdown_path}")
    return 0


def _baseline_package(commit: str, work: Path) -> Path:
    """An older commit's `nanobanana_cli`, extracted with `git archive` (no worktree, nothing checked out) and
    byte-compiled as an install would be: the directory to put on PYTHONPATH."""
    target = work / "baseline-package"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "nanobanana_cli"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    import compileall

    compileall.compile_dir(target / "nanobanana_cli", quiet=1)
    return target


def measure_sections(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Each section asked for, in order, under the one temporary directory `work`."""
    results: dict[str, Any] = {}
    if "startup" in args.sections:
        progress("startup")
        baseline = _baseline_package(args.baseline_commit, work) if args.baseline_commit else None
        results["startup"] = startup.measure(args.startup_runs, work, warmup=not args.tiny, baseline=baseline)
    if "jobs" in args.sections:
        settings = job_flow.Settings(
            job_seconds=args.job_seconds,
            long_seconds=args.long_seconds,
            runs=args.runs,
            long_runs=args.long_runs,
            seed=args.seed,
            **({"warm_jobs": 1, "poll_scale": 0.1, "image_long_side": 256, "padding_bytes": 0} if args.tiny else {}),
        )
        results["jobs"] = job_flow.measure(settings, args.scenarios, work)
    if "batch" in args.sections:
        grid = [(int(p), int(j)) for p in args.batch_sizes.split(",") for j in args.batch_concurrency.split(",")]
        skipped = [(p, j) for p, j in grid if math.ceil(p / j) * args.batch_job_seconds > 40 and not args.batch_long]
        grid = [g for g in grid if g not in skipped]
        results["batch"] = batch.measure(
            grid, args.batch_job_seconds, args.batch_runs, 0.1 if args.tiny else 1.0, 0 if args.tiny else 3, work
        )
        results["batch"]["skipped"] = [f"{p} prompts at -j {j} (pass --batch-long)" for p, j in skipped]
    if "memory" in args.sections:
        results["memory"] = memory.measure(args.big_mb, args.memory_runs, work)
    if "downloads" in args.sections:
        results["downloads"] = downloads.measure(args.download_mb, args.download_runs, work)
    if "upload" in args.sections:
        results["upload"] = upload.measure(
            args.upload_runs, work, count=args.upload_images, megabytes=args.upload_mib
        )
    if "gallery" in args.sections:
        results["gallery"] = gallery.measure(
            args.gallery_runs, work, images=args.gallery_images, rows=args.gallery_rows, warmup=not args.tiny
        )
    if "history" in args.sections:
        results["history"] = history_scale.measure(
            args.history_runs, work, images=args.history_images,
            sizes=tuple(int(size) for size in args.history_sizes.split(",")), warmup=not args.tiny,
        )
    return results


def print_report(results: dict[str, Any], tables: list[report.Table]) -> None:
    m = results["meta"]["machine"]
    print(
        f"nanobanana benchmark, {results['meta']['started']}: {m['cpu']}, {m['cores']} cores, Python {m['python']}; "
        f"{results['meta']['seconds'] / 60:.1f} min. Shared machine: figures are noisy.\n"
    )
    for table in tables:
        print(table.text() + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        return report_only(args)
    for tool in ("curl", "jq", "bash", "xargs"):
        if shutil.which(tool) is None:
            raise SystemExit(f"the curl contender needs {tool} on PATH")
    started = time.time()
    results: dict[str, Any] = {
        "meta": {
            "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "argv": sys.argv[1:] if argv is None else argv,
            "tiny": args.tiny,
            "machine": {**machine(), **({"commit": args.package_label} if args.package_label else {})},
            "baseline_commit": args.baseline_commit,
            "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "nanobanana_command": NANOBANANA,
        }
    }
    compile_package()
    with tempfile.TemporaryDirectory(prefix="nanobanana-bench-") as tmp:
        results.update(measure_sections(args, Path(tmp)))
    results["meta"]["seconds"] = time.time() - started
    results["meta"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())

    targets = report.evaluate_targets(results)
    results["targets"] = [t.to_dict() for t in targets]
    broken = failures(results)
    results["meta"]["failed_runs"] = broken
    tables = report.all_tables(results, targets)
    print_report(results, tables)
    for problem in broken:
        print(f"FAILED RUN: {problem}", file=sys.stderr)

    command = shlex.join(["python", "benchmarks/run.py", *results["meta"]["argv"]])
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(clean(results), indent=1, allow_nan=False) + "\n")
        progress(f"wrote {args.json_path}")
    if args.markdown_path:
        Path(args.markdown_path).write_text(markdown_document(results, tables, command))
        progress(f"wrote {args.markdown_path}")
    if broken:
        return 3
    if args.strict and any(t.passed is False and t.counts for t in targets):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
