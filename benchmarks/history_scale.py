"""History scale: `nanobanana inspect` of 1,000 files, `nanobanana history stats`, `nanobanana history`
(the listing) and `nanobanana generate` (one 0.3 s job on a sandbox, whose API the history's jobs went
to, so its learned durations are read), with histories of 250, 10,000 and 100,000 recorded jobs,
interleaved round by round.

The 1,000 files are the saves of 250 jobs (4 each) that every history holds; the other rows are jobs
saved elsewhere, with the variety a long-time user's history has (states, costs, times, files).
The figures are each size's time, the same-round ratio to the 250-job history, and the peak RSS of
`history stats` (measured by a small launcher, peak_rss.py, so the benchmark's own memory is not charged).

Run alone: `python benchmarks/history_scale.py --quick` (a few minutes), or as the `history` section
of run.py.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from harness import HERE, NANOBANANA, PYTHON, compile_package, environment, progress, run, summary

SIZES = (250, 10_000, 100_000)
IMAGES_PER_JOB = 4
# issue 25's targets
RATIO_LIMIT = 1.5  # at 100,000 jobs at most 1.5x the time at 250
FLAT_LIMIT = 1.2  # `history` and `generate`: at 100,000 jobs within 1.2x their time at 250
GENERATE_JOB_SECONDS = 0.3
STATS_RSS_LIMIT_MB = 60.0  # history stats at 100,000 jobs
STATS_SECONDS_LIMIT = 1.0  # history stats at 100,000 jobs


def _request_id(number: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"nanobanana-benchmark/history/{number}"))


def _moment(number: int, seconds: float = 0.0) -> str:
    total = number * 37 + seconds  # jobs spread over about 40 days
    day, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"2026-{1 + int(day) // 28:02d}-{1 + int(day) % 28:02d}T{int(hours):02d}:{int(minutes):02d}:{secs:06.3f}Z"


def _row(number: int, paths: list[str], digests: list[str]) -> tuple[Any, ...]:
    request_id = _request_id(number)
    status = ("succeeded",) * 8 + ("failed", "cancelled")
    state = status[number % len(status)] if not digests else "succeeded"
    queued, ran = 1 + number % 7 * 0.731, 8 + number % 13 * 1.377
    generation = {"prompt": f"a fox, variation {number}", "aspect_ratio": "1:1", "output_format": "png", "num_images": 4}
    files = [{"path": p, "bytes": 1000, "sha256": d, "delivered_sha256": d, "provenance": "embedded"}
             for p, d in zip(paths, digests)]
    events = [{"at": _moment(number), "event": "submitted"}, {"at": _moment(number, queued), "event": "running"},
              {"at": _moment(number, queued + ran), "event": "downloaded", "seconds": 0.2, "bytes": 4000}]
    return (request_id, _moment(number), _moment(number, queued + ran), "google/nano-banana/text-to-image",
            "https://model-api.runcomfy.net", generation["prompt"], json.dumps(generation), state,
            json.dumps([f"https://files.example/{request_id}/{i}.png" for i in range(1, 5)]),
            json.dumps(paths), ran + queued, 0.039 * 4 if state == "succeeded" else None, json.dumps(files),
            _moment(number, 0.2), _moment(number, queued), _moment(number, queued + ran), json.dumps(events))


def _history(data_dir: Path, rows: list[tuple[Any, ...]]) -> None:
    from nanobanana_cli.stores.history import DB_NAME, History

    data_dir.mkdir(parents=True, exist_ok=True)
    with History(data_dir / DB_NAME) as history:
        history.count()  # creates and migrates it
    with sqlite3.connect(data_dir / DB_NAME) as db:
        db.executemany(
            "INSERT INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status,"
            " output_urls, paths, duration_seconds, cost, files, created_at, started_at, finished_at, events)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def build(work: Path, images: int, sizes: tuple[int, ...]) -> tuple[list[Path], dict[int, Path]]:
    """The image files (with provenance, as `generate` saves them) and one data directory per size."""
    from nanobanana_cli.engine.downloads import file_sha256
    from nanobanana_cli.engine.provenance import record
    from nanobanana_cli.sandbox.images import render_image

    folder = work / "images"
    folder.mkdir(parents=True)
    ours, files = [], []
    for job in range(images // IMAGES_PER_JOB):
        request_id = _request_id(job)
        paths, digests = [], []
        for index in range(1, IMAGES_PER_JOB + 1):
            path = folder / f"a-fox-variation-{job}-{request_id[:8]}-{index}.png"
            path.write_bytes(render_image(f"a fox {job} {index}", "1:1", "png", 1, long_side=32))
            record(path, {"request_id": request_id, "index": index, "prompt": f"a fox, variation {job}"})
            paths.append(str(path))
            digests.append(file_sha256(path))
        ours.append(_row(job, paths, digests))
        files += [Path(p) for p in paths]
    data_dirs = {}
    for size in sizes:
        progress(f"history scale: a history of {size} jobs")
        elsewhere = [
            _row(n, [f"/home/someone/elsewhere/{n}-{i}.png" for i in range(1, 5)] if n % 10 < 8 else [], [])
            for n in range(len(ours), size)
        ]
        data_dirs[size] = work / f"data-{size}"
        _history(data_dirs[size], ours + elsewhere)
    return files, data_dirs


def _ratios(times: dict[int, list[float | None]], size: int, base: int) -> list[float]:
    return [b / a for a, b in zip(times[base], times[size]) if a is not None and b is not None]


def _on_sandbox(data_dir: Path, target: Path, base_url: str) -> Path:
    """A copy of a history whose jobs all went to `base_url`, each taking GENERATE_JOB_SECONDS, for `generate`."""
    import shutil

    shutil.copytree(data_dir, target)
    with sqlite3.connect(target / "history.sqlite3") as db:
        db.execute("UPDATE jobs SET base_url = ?, duration_seconds = ?, started_at = NULL, events = '[]'",
                   (base_url, GENERATE_JOB_SECONDS))
    return target


def measure(runs: int, work: Path, *, images: int = 1000, sizes: tuple[int, ...] = SIZES, warmup: bool = True) -> dict[str, Any]:
    from nanobanana_cli.sandbox import Sandbox

    work = work / "history-scale"
    progress(f"history scale: inspect of {images} files, history stats, history, generate; "
             f"histories of {', '.join(map(str, sizes))} jobs")
    files, data_dirs = build(work, images, sizes)
    inspect_s: dict[int, list[float | None]] = {size: [] for size in sizes}
    stats_s: dict[int, list[float | None]] = {size: [] for size in sizes}
    stats_rss: dict[int, list[float | None]] = {size: [] for size in sizes}
    listing_s: dict[int, list[float | None]] = {size: [] for size in sizes}
    generate_s: dict[int, list[float | None]] = {size: [] for size in sizes}
    failures: list[str] = []
    with Sandbox(queue_seconds=0, run_seconds=GENERATE_JOB_SECONDS, image_long_side=64, port=0) as sandbox:
        generating = {size: _on_sandbox(data_dirs[size], work / f"generate-{size}", sandbox.base_url) for size in sizes}
        for round_no in range(0 if warmup else 1, runs + 1):  # round 0 warms the page cache and is not kept
            progress(f"history scale: round {round_no} of {runs}")
            for size, data_dir in data_dirs.items():
                env = environment(work, data_dir=data_dir)
                inspected = run([*NANOBANANA, "inspect", "--json", *map(str, files)], env, timeout=900)
                counted = run([*NANOBANANA, "history", "stats", "--json"], env, timeout=300)
                launched = run([PYTHON, str(HERE / "peak_rss.py"), *NANOBANANA, "history", "stats"], env, timeout=300)
                listed = run([*NANOBANANA, "history"], env, timeout=300)
                generated = run([*NANOBANANA, "generate", "a fox", "-o", str(work / "out"), "-q"],
                                environment(work, sandbox, data_dir=generating[size]), timeout=300)
                checks = (("inspect", inspected), ("history stats", counted), ("history stats (RSS)", launched),
                          ("history", listed), ("generate", generated))
                for name, done in checks:
                    if not done.ok:
                        failures.append(f"{name} ({size} jobs): {done.describe_failure()}")
                if counted.ok and json.loads(counted.stdout)["jobs"] != size:
                    failures.append(f"history stats ({size} jobs) counted {json.loads(counted.stdout)['jobs']}")
                if round_no:
                    inspect_s[size].append(inspected.wall if inspected.ok else None)
                    stats_s[size].append(counted.wall if counted.ok else None)
                    stats_rss[size].append(float(launched.stdout.split()[-1]) if launched.ok else None)
                    listing_s[size].append(listed.wall if listed.ok else None)
                    generate_s[size].append(generated.wall if generated.ok else None)
    base = sizes[0]
    return {
        "images": images,
        "sizes": list(sizes),
        "runs": runs,
        "inspect_s": {str(size): summary(inspect_s[size]) for size in sizes},
        "inspect_ratio": {str(size): summary(_ratios(inspect_s, size, base)) for size in sizes[1:]},
        "stats_s": {str(size): summary(stats_s[size]) for size in sizes},
        "stats_ratio": {str(size): summary(_ratios(stats_s, size, base)) for size in sizes[1:]},
        "stats_rss_mb": {str(size): summary(stats_rss[size]) for size in sizes},
        "history_s": {str(size): summary(listing_s[size]) for size in sizes},
        "history_ratio": {str(size): summary(_ratios(listing_s, size, base)) for size in sizes[1:]},
        "generate_s": {str(size): summary(generate_s[size]) for size in sizes},
        "generate_ratio": {str(size): summary(_ratios(generate_s, size, base)) for size in sizes[1:]},
        "failures": failures,
        "samples": {"inspect": inspect_s, "stats": stats_s, "stats_rss": stats_rss, "history": listing_s, "generate": generate_s},
    }


def targets(found: dict[str, Any]) -> list[tuple[str, str, float | None, float, str]]:
    """(target, measured, value, limit, unit) for each of issue 25's history figures."""
    top, base = str(found["sizes"][-1]), found["sizes"][0]

    def median(figure: dict[str, Any]) -> float | None:
        return figure["median"] if figure.get("n") else None

    return [
        (f"inspect of {found['images']} files: {top} jobs <= {RATIO_LIMIT:g}x {base} jobs (same-round ratio)",
         f"{_spread(found['inspect_ratio'][top], 2)}x", median(found["inspect_ratio"][top]), RATIO_LIMIT, "x"),
        (f"history stats: {top} jobs <= {RATIO_LIMIT:g}x {base} jobs (same-round ratio)",
         f"{_spread(found['stats_ratio'][top], 2)}x", median(found["stats_ratio"][top]), RATIO_LIMIT, "x"),
        (f"history stats at {top} jobs under {STATS_SECONDS_LIMIT:g} s",
         f"{_spread(found['stats_s'][top], 3)} s", median(found["stats_s"][top]), STATS_SECONDS_LIMIT, "s"),
        (f"history stats peak RSS at {top} jobs <= {STATS_RSS_LIMIT_MB:g} MB",
         f"{_spread(found['stats_rss_mb'][top], 1)} MB", median(found["stats_rss_mb"][top]), STATS_RSS_LIMIT_MB, "MB"),
        *((f"{command}: {top} jobs <= {FLAT_LIMIT:g}x {base} jobs (same-round ratio)",
           f"{_spread(found[key + '_ratio'][top], 2)}x", median(found[key + "_ratio"][top]), FLAT_LIMIT, "x")
          for command, key in (("history", "history"), (f"generate ({GENERATE_JOB_SECONDS:g} s job)", "generate"))
          if key + "_ratio" in found),
    ]


def _spread(stats: dict[str, Any], digits: int) -> str:
    if not stats.get("n"):
        return "n/a"
    if stats["n"] == 1:
        return f"{stats['median']:.{digits}f}"
    return f"{stats['median']:.{digits}f} ({stats['min']:.{digits}f}–{stats['max']:.{digits}f})"


def lines(found: dict[str, Any]) -> list[str]:
    """The figures as text: each size's medians (min–max), then each target and whether it is met."""
    keys = ("inspect", "stats", "history", "generate")
    out = [f"History scale: inspect of {found['images']} files, history stats, history, generate;"
           f" {found['runs']} interleaved round(s)",
           f"{'jobs':>8}" + "".join(f"  {key + ' s':>22}  {'ratio':>20}" for key in keys) + f"  {'stats RSS MB':>20}"]
    for size in map(str, found["sizes"]):
        cells = []
        for key in keys:
            ratio = _spread(found[f"{key}_ratio"][size], 2) if size in found[f"{key}_ratio"] else "1"
            cells.append(f"  {_spread(found[f'{key}_s'][size], 3):>22}  {ratio:>20}")
        out.append(f"{size:>8}" + "".join(cells) + f"  {_spread(found['stats_rss_mb'][size], 1):>20}")
    out.append("Targets (issue 25):")
    for target, measured, value, limit, _unit in targets(found):
        verdict = "not measured" if value is None else ("met" if value <= limit else "NOT met")
        out.append(f"  {target}: {measured} -> {verdict}")
    out += [f"FAILED RUN: {failure}" for failure in found["failures"]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 rounds (a few minutes) instead of 7")
    parser.add_argument("--runs", type=int, default=None, help="interleaved rounds (default 7, --quick 3)")
    parser.add_argument("--images", type=int, default=1000, help="files given to inspect (default 1000)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="history sizes (default 250,10000,100000)")
    parser.add_argument("--json", dest="json_path", help="also write the figures to this file")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    compile_package()
    with tempfile.TemporaryDirectory(prefix="nanobanana-bench-") as tmp:
        found = measure(runs, Path(tmp), images=args.images, sizes=tuple(int(s) for s in args.sizes.split(",")))
    print("\n".join(lines(found)))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(found, indent=1) + "\n")
    return 3 if found["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
