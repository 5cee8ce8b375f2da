"""Targets (pass/fail, with the miss in the target's own unit) and the tables, as text and Markdown.

Figures are printed whatever the verdict: a missed target shows its measured value and by how much
it was missed, never just "MISSED".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from job_flow import FIXED_KEYS, TYPER_REFERENCE

LAG_LIMIT_LEARNED, LAG_P95_LIMIT_LEARNED, LONG_REQUESTS_RATIO = 0.15, 0.4, 0.5
LAG_LIMIT_UNLEARNED, REQUESTS_RATIO_UNLEARNED = 0.35, 1.5
OVERHEAD_LIMIT_LEARNED, FIRST_JOB_SLACK = 0.25, 0.15
BATCH_RATIO_LIMIT = 1.06
BATCH_PROMPTS, BATCH_CONCURRENCY = 1000, 32
THREADED_SCRIPT = "requests script (threads)"
FIXED_SLACK = 0.02  # within this of the requests script's overhead
DOWNLOAD_CPU_RATIO = 2.0
BASELINE_RATIO = 1.02  # "no slower than the older commit": a 2 % allowance for noise
CPU_PER_JOB_LIMIT_MS, GALLERY_RATIO_LIMIT = 10.0, 1.2
ONE_SECOND_POLLER = "curl flow"


# -- number formatting ---------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def fmt(value: Any, digits: int = 3) -> str:
    if not is_number(value):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def spread(stats: dict[str, Any] | None, digits: int = 3, scale: float = 1.0) -> str:
    """`median (min–max)`, the way every figure is shown."""
    if not stats or not stats.get("n"):
        return "n/a"
    m, lo, hi = (stats[k] * scale for k in ("median", "min", "max"))
    if stats["n"] == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ({lo:.{digits}f}–{hi:.{digits}f})"


# -- targets -------------------------------------------------------------------------------------


@dataclass
class Target:
    key: str
    target: str  # what the issue asks, in words
    limit: float
    unit: str  # "s", "x" (ratio) or "" (a count)
    value: float | None = None  # the measured figure the verdict is made on
    measured: str = "not measured"  # the figure and its context, in words
    higher_is_worse: bool = True
    # an earlier issue's target that a later one replaced: still measured and shown, never a miss
    superseded_by: str = ""

    @property
    def counts(self) -> bool:
        """Whether the verdict is one the run is judged on (`--strict`, "missed by")."""
        return not self.superseded_by

    @property
    def passed(self) -> bool | None:
        if not is_number(self.value):
            return None
        return self.value <= self.limit if self.higher_is_worse else self.value >= self.limit

    @property
    def miss(self) -> str:
        if self.passed is not False or not self.counts:
            return ""
        over = self.value - self.limit
        if self.unit == "x":
            return f"+{over:.2f}x over ({self.value / self.limit - 1:+.0%})"
        if self.unit == "s":
            return f"+{over:.3f} s over"
        if self.unit == " ms":
            return f"+{over:.1f} ms over"
        return f"{over:+g}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "target": self.target,
            "limit": self.limit,
            "unit": self.unit,
            "value": self.value,
            "measured": self.measured,
            "pass": self.passed,
            "miss": self.miss,
            "superseded_by": self.superseded_by or None,
        }


def _contender(results: dict[str, Any], scenario: str, name: str) -> dict[str, Any] | None:
    found = results.get("jobs", {}).get("scenarios", {}).get(scenario)
    return found["contenders"].get(name) if found else None


def _paired(results: dict[str, Any], scenario: str, a: str, b: str, metric: str, combine) -> list[float]:
    """`combine(a's figure, b's figure)` for every round where both runs succeeded: same-run comparisons."""
    first, second = _contender(results, scenario, a), _contender(results, scenario, b)
    if not first or not second:
        return []
    out = []
    for x, y in zip(first["samples"], second["samples"]):
        if x["ok"] and y["ok"] and is_number(x[metric]) and is_number(y[metric]):
            out.append(combine(x[metric], y[metric]))
    return out


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


NB = "nanobanana"


def evaluate_targets(results: dict[str, Any]) -> list[Target]:
    """Every target of the issue, in its order, each measured in this run or marked "not measured"."""
    return [
        *_polling_targets(results),
        *_end_to_end_targets(results),
        *_fixed_duration_targets(results),
        *_startup_targets(results),
        *_baseline_targets(results),
        *_batch_targets(results),
        *_download_targets(results),
        *_upload_targets(results),
        _gallery_target(results),
        *_history_targets(results),
    ]


def _fixed_duration_targets(results: dict[str, Any]) -> list[Target]:
    """Issue 25: overhead at most the Typer twin's and within 0.02 s of the requests script's, with fewer
    polls than either, on jobs of 2.3, 2.7 and 3.7 s (same-round differences)."""
    rows = []
    for key in FIXED_KEYS:
        label = f"{key[2:]} s jobs (learned)"
        twin = Target(f"{key}.vs_typer", f"{label}: overhead <= the Typer twin's (median same-round difference)", 0.0, "s")
        script = Target(f"{key}.vs_requests", f"{label}: overhead within {FIXED_SLACK:g} s of the requests script's",
                        FIXED_SLACK, "s")
        polls = Target(f"{key}.polls", f"{label}: polls at least 1 fewer than the requests script's and its Typer twin's"
                       " (median difference)", -1, "")
        for row, rival in ((twin, TYPER_REFERENCE), (script, "requests script")):
            gaps = _paired(results, key, NB, rival, "overhead", lambda a, b: a - b)
            if gaps:
                ours = _contender(results, key, NB)["summary"]["overhead"]
                theirs = _contender(results, key, rival)["summary"]["overhead"]
                row.value = _median(gaps)
                row.measured = (f"{row.value:+.3f} s ({min(gaps):+.3f} to {max(gaps):+.3f}); overhead {spread(ours)} s"
                                f" vs {spread(theirs)} s")
        counts = {name: _contender(results, key, name) for name in (NB, "requests script", TYPER_REFERENCE)}
        if all(c and c["summary"]["requests"]["n"] for c in counts.values()):
            medians = {name: c["summary"]["requests"]["median"] for name, c in counts.items()}
            polls.value = medians[NB] - min(medians["requests script"], medians[TYPER_REFERENCE])
            polls.measured = ", ".join(f"{name} {value:g}" for name, value in medians.items()) + " (medians)"
        rows += [twin, script, polls]
    return rows


def _baseline_targets(results: dict[str, Any]) -> list[Target]:
    against = results.get("startup", {}).get("against_baseline") or {}
    commit = results.get("meta", {}).get("baseline_commit")
    rows = []
    for key, found in against.items():
        row = Target(f"startup.{key}.baseline", f"{found['title']}: no slower than {commit} (same-round ratio <= "
                     f"{BASELINE_RATIO:g}x, both as python -m)", BASELINE_RATIO, "x")
        if found["ratio"]["n"]:
            row.value = found["ratio"]["median"]
            row.measured = (f"{spread(found['ratio'], 2)}x ({found['this_commit_s']['median'] * 1000:.0f} ms vs "
                            f"{found['baseline_s']['median'] * 1000:.0f} ms)")
        rows.append(row)
    return rows


def _download_targets(results: dict[str, Any]) -> list[Target]:
    found = results.get("downloads")
    row = Target("downloads.cpu", f"downloads: CPU per MB <= {DOWNLOAD_CPU_RATIO:g}x a plain streamed copy's (same round)",
                 DOWNLOAD_CPU_RATIO, "x")
    if found and found["ratio"]["n"]:
        row.value = found["ratio"]["median"]
        ours, plain = (found["contenders"][name]["cpu_ms_per_mb"] for name in ("nanobanana", "plain streamed copy"))
        row.measured = f"{spread(found['ratio'], 2)}x ({spread(ours, 2)} vs {spread(plain, 2)} ms per MB)"
        hashing = found.get("sha256_ms_per_mb")
        if hashing and hashing["n"] and plain["n"]:
            passes = found["hash_passes"]
            floor = plain["median"] + passes * hashing["median"]
            row.measured += (f"; its {passes} sha256 passes alone take {passes * hashing['median']:.2f} ms per MB, so"
                             f" copy + hashes is {floor / plain['median']:.2f}x the copy")
    return [row]


def _upload_targets(results: dict[str, Any]) -> list[Target]:
    from upload import RSS_ABOVE_BASELINE_MB, SUBMIT_RATIO_LIMIT

    found = results.get("upload")
    label = f"edit upload of {found['images']} images ({found['total_mib']:.1f} MiB)" if found else "edit upload"
    rss = Target("upload.rss", f"{label}: peak RSS <= {RSS_ABOVE_BASELINE_MB:g} MB above the same command's with one"
                 " tiny image", RSS_ABOVE_BASELINE_MB, " MB")
    submit = Target("upload.to_submit", f"{label}: spawn -> submit <= {SUBMIT_RATIO_LIMIT:g}x the plain script's"
                    " (same round)", SUBMIT_RATIO_LIMIT, "x")
    if found and found["rss_above_baseline_mb"]["n"]:
        peaks = {name: c["peak_rss_mb"] for name, c in found["contenders"].items()}
        rss.value = found["rss_above_baseline_mb"]["median"]
        rss.measured = (f"+{spread(found['rss_above_baseline_mb'], 1)} MB ({spread(peaks['nanobanana'], 1)} vs "
                        f"{spread(peaks['nanobanana, one tiny image'], 1)} MB; the plain script {spread(peaks['plain script'], 1)} MB)")
    if found and found["submit_ratio"]["n"]:
        times = {name: c["to_submit_s"] for name, c in found["contenders"].items()}
        submit.value = found["submit_ratio"]["median"]
        submit.measured = f"{spread(found['submit_ratio'], 2)}x ({spread(times['nanobanana'])} vs {spread(times['plain script'])} s)"
    return [rss, submit]


def _lag_targets(results: dict[str, Any], scenario: str, label: str, limit: float, p95: float | None = None) -> list[Target]:
    mine = _contender(results, scenario, NB)
    lag = mine["summary"]["lag"] if mine else None
    rows = [Target(f"{scenario}.lag", f"{label}: median detection lag <= {limit:g} s", limit, "s")]
    if lag and lag["n"]:
        rows[0].value, rows[0].measured = lag["median"], f"{spread(lag)} s over {lag['n']} runs"
    if p95 is not None:
        rows.append(Target(f"{scenario}.lag_p95", f"{label}: p95 detection lag <= {p95:g} s", p95, "s"))
        if lag and lag["n"]:
            rows[1].value = lag["p95"]
            rows[1].measured = f"p95 {lag['p95']:.3f} s (max {lag['max']:.3f} s) over {lag['n']} runs"
    return rows


def _request_ratio(results: dict[str, Any], scenario: str, label: str, limit: float) -> Target:
    ratios = _paired(results, scenario, NB, ONE_SECOND_POLLER, "requests", lambda a, b: a / b)
    row = Target(
        f"{scenario}.requests", f"{label}: status/result requests <= {limit:g}x a 1 s poller's (same run)", limit, "x"
    )
    if ratios:
        ours = _contender(results, scenario, NB)["summary"]["requests"]
        theirs = _contender(results, scenario, ONE_SECOND_POLLER)["summary"]["requests"]
        row.value = _median(ratios)
        counts = f"nanobanana {fmt(ours['median'], 1)} vs curl flow {fmt(theirs['median'], 1)} per job"
        row.measured = f"{row.value:.2f}x ({counts})"
    return row


def _polling_targets(results: dict[str, Any]) -> list[Target]:
    rows = _lag_targets(results, "varqueue", "learned run time, variable queue wait", LAG_LIMIT_LEARNED, LAG_P95_LIMIT_LEARNED)
    rows.append(_request_ratio(results, "long", "same, over a 30 s job", LONG_REQUESTS_RATIO))
    for scenario, label in (
        ("first", "first job"),
        ("faster", "job 3x faster than learned"),
        ("slower", "job 3x slower than learned"),
    ):
        rows += _lag_targets(results, scenario, label, LAG_LIMIT_UNLEARNED)
        rows.append(_request_ratio(results, scenario, label, REQUESTS_RATIO_UNLEARNED))
    return rows


def _end_to_end_targets(results: dict[str, Any]) -> list[Target]:
    mine = _contender(results, "learned", NB)
    overhead = mine["summary"]["overhead"] if mine and mine["summary"]["overhead"]["n"] else None
    limit = Target(
        "learned.overhead",
        f"learned duration: end-to-end overhead (wall - job) <= {OVERHEAD_LIMIT_LEARNED:g} s",
        OVERHEAD_LIMIT_LEARNED,
        "s",
    )
    if overhead:
        limit.value, limit.measured = overhead["median"], f"{spread(overhead)} s"
    best = Target(
        "learned.overhead_best", "learned duration: overhead below every contender's (median - best other median)", 0.0, "s"
    )
    scenario = results.get("jobs", {}).get("scenarios", {}).get("learned")
    medians = {
        name: c["summary"]["overhead"]["median"]
        for name, c in (scenario["contenders"].items() if scenario else ())
        if c["summary"]["overhead"]["n"]
    }
    others = {name: value for name, value in medians.items() if name not in (NB, TYPER_REFERENCE)}
    if overhead and others:
        rival = min(others, key=others.get)
        best.value = overhead["median"] - others[rival]
        best.limit = -1e-9  # strictly below: a tie is not "below"
        best.measured = f"nanobanana {overhead['median']:.3f} s vs best other ({rival}) {others[rival]:.3f} s"
        if TYPER_REFERENCE in medians:  # how much of the difference any Typer CLI would have
            best.measured += f"; the {TYPER_REFERENCE} {medians[TYPER_REFERENCE]:.3f} s"
    gaps = _paired(results, "first", NB, "requests script", "overhead", lambda a, b: a - b)
    first = Target(
        "first.vs_requests",
        f"first job: overhead within {FIRST_JOB_SLACK:g} s of the requests script's (same run)",
        FIRST_JOB_SLACK,
        "s",
    )
    if gaps:
        first.value = _median(gaps)
        first.measured = f"{first.value:+.3f} s (same-run differences {min(gaps):+.3f} to {max(gaps):+.3f})"
    # Issue 25 replaced these with the 2.3, 2.7 and 3.7 s targets: a job whose length is a multiple of
    # the script's 0.25 s poll let the script win or lose by chance.
    for target in (limit, best):
        target.superseded_by = "the 2.3/2.7/3.7 s targets"
    return [limit, best, first]


def _startup_targets(results: dict[str, Any]) -> list[Target]:
    rows = []
    for key, label in (("help", "`--help`"), ("dry_run", '`generate "x" --dry-run`'), ("status", "`status ID`")):
        pair = results.get("startup", {}).get("pairs", {}).get(key)
        limit = pair["target_ratio"] if pair else {"help": 1.1}.get(key, 1.3)
        bare = "the bare Typer app's --help" if key == "help" else "the bare Typer+requests command"
        row = Target(f"startup.{key}", f"{label} <= {limit:g}x {bare} (same-round ratio)", limit, "x")
        if pair and pair["ratio"]["n"]:
            row.value = pair["ratio"]["median"]
            row.measured = (
                f"{spread(pair['ratio'], 2)}x ({pair['nanobanana_s']['median'] * 1000:.0f} ms vs "
                f"{pair['bare_s']['median'] * 1000:.0f} ms)"
            )
        rows.append(row)
    return rows


def _batch_targets(results: dict[str, Any]) -> list[Target]:
    configs = results.get("batch", {}).get("configs", [])
    config = next((c for c in configs if c["prompts"] == BATCH_PROMPTS and c["concurrency"] == BATCH_CONCURRENCY), None)
    label = f"batch {BATCH_PROMPTS} x 1 s jobs at -j {BATCH_CONCURRENCY}"
    key = f"batch.{BATCH_PROMPTS}x{BATCH_CONCURRENCY}"
    wall = Target(key, f"{label}: wall <= {BATCH_RATIO_LIMIT:g}x ideal", BATCH_RATIO_LIMIT, "x")
    failures = Target(f"{key}.failures", f"{label}: 0 failures", 0, "")
    cpu = Target(f"{key}.cpu", f"{label}: CLI CPU per job below the threaded script's (same run)", CPU_PER_JOB_LIMIT_MS, " ms")
    threaded = config["contenders"].get(THREADED_SCRIPT) if config else None
    if threaded and threaded["samples"]:
        cpu.limit = _median([s["cpu"] / config["prompts"] * 1000 for s in threaded["samples"]]) or cpu.limit
    if config:
        ours = config["contenders"]["nanobanana batch"]
        wall.value = ours["summary"]["vs_ideal"]["median"]
        ratio, seconds = spread(ours["summary"]["vs_ideal"], 2), spread(ours["summary"]["wall"], 2)
        wall.measured = f"{ratio}x of ideal {config['ideal_s']:g} s ({seconds} s)"
        failed_prompts = sum(s["failures"] for s in ours["samples"])
        failures.value = failed_prompts + sum(1 for s in ours["samples"] if s["exit_code"] != 0)
        failures.measured = f"{failed_prompts} missing image(s), {ours['failed_runs']} of {config['runs']} run(s) failed"
        per_job = [s["cpu"] / config["prompts"] * 1000 for s in ours["samples"]]
        cpu.value = _median(per_job)
        cpu.measured = (f"{cpu.value:.1f} ms ({min(per_job):.1f}–{max(per_job):.1f}) vs the threaded script's {cpu.limit:.1f} ms:"
                        " user + system of the run / prompts")
    return [wall, failures, cpu]


def _history_targets(results: dict[str, Any]) -> list[Target]:
    from history_scale import targets

    found = results.get("history")
    rows = []
    for number, (target, measured, value, limit, unit) in enumerate(targets(found) if found else []):
        rows.append(Target(f"history.{number}", target, limit, unit, value, measured))
    return rows


def _gallery_target(results: dict[str, Any]) -> Target:
    found = results.get("gallery")
    row = Target(
        "gallery.ratio",
        f"gallery of 1,000 images: 100k-row history <= {GALLERY_RATIO_LIMIT:g}x an empty one (same-round ratio)",
        GALLERY_RATIO_LIMIT,
        "x",
    )
    if found and found["ratio"]["n"]:
        row.value = found["ratio"]["median"]
        row.measured = (
            f"{spread(found['ratio'], 2)}x ({found['full_s']['median'] * 1000:.0f} ms vs "
            f"{found['empty_s']['median'] * 1000:.0f} ms; {found['images']} images, {found['history_rows']} rows)"
        )
    return row


# -- tables ----------------------------------------------------------------------------------------


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        widths = [max(len(str(row[i])) for row in (self.headers, *self.rows)) for i in range(len(self.headers))]
        lines = [self.title, "-" * len(self.title)]
        for row in (self.headers, *self.rows):
            lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        def cell(value: str) -> str:
            return str(value).replace("|", "\\|")

        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines)


def job_tables(jobs: dict[str, Any]) -> list[Table]:
    tables = []
    for scenario in jobs.get("scenarios", {}).values():
        table = Table(
            f"Job flow, {scenario['title']}: generate -n 4, {scenario['runs']} interleaved run(s)",
            [
                "contender",
                "detection lag s",
                "lag p95 s",
                "completion -> last file s",
                "overhead (wall - job) s",
                "spawn -> submit s",
                "last file -> exit s",
                "status+result requests",
                "CPU s",
                "failed runs",
            ],
            notes=[scenario["note"]]
            + (
                [f"nanobanana's history median: {scenario['history_median_s']:.2f} s"]
                if scenario.get("history_median_s")
                else []
            ),
        )
        for name, c in scenario["contenders"].items():
            s = c["summary"]
            table.rows.append(
                [
                    name,
                    spread(s["lag"]),
                    fmt(s["lag"]["p95"]),
                    spread(s["to_disk"]),
                    spread(s["overhead"]),
                    spread(s.get("to_submit")),
                    spread(s.get("after_files")),
                    spread(s["requests"], 1),
                    spread(s["cpu"], 2),
                    str(c["failures"]),
                ]
            )
        tables.append(table)
    return tables


def startup_table(startup: dict[str, Any]) -> Table:
    warmup = " (after one unmeasured warm-up round)" if startup.get("warmup_round") else ""
    table = Table(
        f"Start-up: {startup['runs']} interleaved round(s){warmup}",
        ["command", "nanobanana ms", "bare Typer app ms", "same-round ratio", "target"],
        notes=[
            (
                "bare app: benchmarks/bare_typer_app.py, one command, rich_markup_mode=None like nanobanana; "
                "requests imported in the command"
            )
        ],
    )
    for pair in startup["pairs"].values():
        table.rows.append(
            [
                pair["title"],
                spread(pair["nanobanana_s"], 0, 1000),
                spread(pair["bare_s"], 0, 1000),
                spread(pair["ratio"], 2) + "x",
                f"<= {pair['target_ratio']:g}x",
            ]
        )
    return table


def batch_table(batch: dict[str, Any]) -> Table:
    table = Table(
        "Batch: 1 s jobs (queue 0, run 1 s), one image per prompt",
        [
            "prompts x -j",
            "ideal s",
            "contender",
            "wall s",
            "x ideal",
            "failed prompts (runs)",
            "requests/job",
            "submits",
            "CPU s",
        ],
        notes=[
            (
                "ideal = ceil(prompts / j) x job seconds; "
                "failed prompts = prompts without an image on disk, summed over runs; "
                "submits = submits the sandbox received (median)"
            )
        ],
    )
    table.notes.append("nanobanana batch starts with a history of three earlier 1 s jobs, as a returning user's would")
    resets = [
        f"{config['prompts']} x {config['concurrency']} {name}"
        for config in batch.get("configs", [])
        for name, c in config["contenders"].items()
        for sample in c["samples"]
        if "reset" in (sample.get("error") or "").lower() or "connection failed" in (sample.get("error") or "").lower()
    ]
    if resets:
        table.notes.append(
            f"{len(resets)} run(s) lost prompts to connections reset at submit ({', '.join(sorted(set(resets)))}): "
            "the sandbox's listen backlog overflows when many clients connect at once; see the errors in the JSON"
        )
    for config in batch.get("configs", []):
        for name, c in config["contenders"].items():
            s = c["summary"]
            failed = sum(x["failures"] for x in c["samples"])
            table.rows.append(
                [
                    f"{config['prompts']} x {config['concurrency']}",
                    f"{config['ideal_s']:g}",
                    name,
                    spread(s["wall"], 2),
                    spread(s["vs_ideal"], 2),
                    f"{failed} ({c['failed_runs']}/{config['runs']})",
                    spread(s["requests_per_job"], 1),
                    fmt(s["submits"]["median"], 0),
                    spread(s["cpu"], 2),
                ]
            )
    return table


def memory_table(memory: dict[str, Any]) -> Table:
    table = Table(
        f"Peak RSS downloading one {memory['megabytes']} MB image ({memory['runs']} run(s))",
        ["contender", "peak RSS MB"],
    )
    for name, c in memory["contenders"].items():
        table.rows.append([name, spread(c["peak_rss_mb"], 1)])
    return table


def gallery_table(found: dict[str, Any]) -> Table:
    table = Table(
        f"Gallery: {found['images']} images, {found['runs']} interleaved round(s)",
        ["history", "nanobanana gallery ms"],
        notes=[f"the big history holds the folder's {found['images'] // 4} jobs among {found['history_rows']} in all"],
    )
    table.rows.append(["empty", spread(found["empty_s"], 0, 1000)])
    table.rows.append([f"{found['history_rows']} jobs", spread(found["full_s"], 0, 1000)])
    table.rows.append(["same-round ratio", spread(found["ratio"], 2) + "x"])
    return table


def history_table(found: dict[str, Any]) -> Table:
    table = Table(
        f"History scale: inspect of {found['images']} files, history stats; {found['runs']} interleaved round(s)",
        ["jobs recorded", "inspect s", "ratio", "history stats s", "ratio", "stats peak RSS MB", "history s", "ratio",
         "generate s", "ratio"],
        notes=[f"ratios are to the {found['sizes'][0]}-job history in the same round"],
    )
    keys = ("inspect", "stats", "history", "generate")
    for size in map(str, found["sizes"]):
        ratios = [spread(found[f"{key}_ratio"][size], 2) + "x" if size in found.get(f"{key}_ratio", {}) else "1x"
                  for key in keys]
        table.rows.append([size, spread(found["inspect_s"][size]), ratios[0], spread(found["stats_s"][size]), ratios[1],
                           spread(found["stats_rss_mb"][size], 1), spread(found.get("history_s", {}).get(size)),
                           ratios[2], spread(found.get("generate_s", {}).get(size)), ratios[3]])
    return table


def downloads_table(found: dict[str, Any]) -> Table:
    table = Table(
        f"Downloads: CPU per MB of a {found['megabytes']} MB image, {found['runs']} interleaved round(s)",
        ["contender", "CPU ms per MB"],
        notes=["(CPU of the big download - CPU of a small one) / their size difference, each contender in the same round",
               "the big PNG is padded with image data (IDAT), as a real image of its size is",
               "the plain copy hashes nothing; nanobanana hashes every byte twice as it streams: the file's sha256"
               " (history, manifest, `inspect`) and the image data's (provenance); sealing reads headers only"],
    )
    for name, c in found["contenders"].items():
        table.rows.append([name, spread(c["cpu_ms_per_mb"], 2)])
    hashing = found.get("sha256_ms_per_mb")
    if hashing and hashing["n"]:
        table.rows.append(["one sha256 pass alone (in the benchmark's process)", spread(hashing, 2)])
    table.rows.append(["same-round ratio", spread(found["ratio"], 2) + "x"])
    return table


def upload_table(found: dict[str, Any]) -> Table:
    table = Table(
        f"Edit upload: {found['images']} noise PNGs, {found['total_mib']:.1f} MiB, {found['runs']} interleaved round(s)",
        ["contender", "spawn -> submit s", "peak RSS MB"],
        notes=["nanobanana: `edit PROMPT -i ... --no-wait`; plain script: benchmarks/baseline_edit_requests.py"],
    )
    for name, c in found["contenders"].items():
        table.rows.append([name, spread(c["to_submit_s"]), spread(c["peak_rss_mb"], 1)])
    table.rows.append(["same-round ratio (nanobanana / script)", spread(found["submit_ratio"], 2) + "x", ""])
    table.rows.append(["nanobanana above its one-image baseline", "", "+" + spread(found["rss_above_baseline_mb"], 1)])
    return table


def baseline_table(startup: dict[str, Any], commit: str | None) -> Table:
    table = Table(
        f"Start-up against {commit}: both as `python -m nanobanana_cli`, {startup['runs']} interleaved round(s)",
        ["command", "this commit ms", f"{commit} ms", "same-round ratio"],
    )
    for found in startup["against_baseline"].values():
        table.rows.append([found["title"], spread(found["this_commit_s"], 0, 1000), spread(found["baseline_s"], 0, 1000),
                           spread(found["ratio"], 2) + "x"])
    return table


def target_table(targets: list[Target]) -> Table:
    table = Table("Targets", ["target", "measured", "limit", "result", "missed by"])
    for t in targets:
        verdict = {True: "pass", False: "FAIL", None: "not measured"}[t.passed]
        if t.superseded_by:
            verdict = f"({verdict}) superseded by {t.superseded_by}"
        limit = (
            "< best other"
            if t.key == "learned.overhead_best"
            else f"{t.limit:g}{' ' + t.unit if t.unit == 's' else t.unit}"
        )
        table.rows.append([t.target, t.measured, limit, verdict, t.miss])
    return table


def all_tables(results: dict[str, Any], targets: list[Target]) -> list[Table]:
    tables = []
    if "startup" in results:
        tables.append(startup_table(results["startup"]))
        if results["startup"].get("against_baseline"):
            tables.append(baseline_table(results["startup"], results["meta"].get("baseline_commit")))
    if "jobs" in results:
        tables += job_tables(results["jobs"])
    if "batch" in results:
        tables.append(batch_table(results["batch"]))
    if "memory" in results:
        tables.append(memory_table(results["memory"]))
    if "downloads" in results:
        tables.append(downloads_table(results["downloads"]))
    if "upload" in results:
        tables.append(upload_table(results["upload"]))
    if "gallery" in results:
        tables.append(gallery_table(results["gallery"]))
    if "history" in results:
        tables.append(history_table(results["history"]))
    tables.append(target_table(targets))
    return tables
