"""`nanobanana batch`: many prompts at once, resumable, never paying twice; and `--shard K/N`."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import AlreadyReported, JobFailedError, NanobananaError, UsageError
from ..render.output import Output
from .generate import Followups
from .options import (
    AspectOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    CurlOpt,
    DryRunOpt,
    FormatOpt,
    HookTokenOpt,
    JsonOpt,
    MaxCostOpt,
    MetadataOpt,
    NameOpt,
    NotifyOpt,
    NumImagesOpt,
    OnDoneOpt,
    OutputDirOpt,
    PreviewOpt,
    QuietOpt,
    RetriesOpt,
    SandboxOpt,
    TimeoutOpt,
    TokenOpt,
    command_settings,
    download_plan,
    make_output,
    open_history,
    parse_name,
    show_dry_run,
    within_budget,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ..engine.batch import BatchLine, LineOutcome, LineProblem
    from ..engine.lifecycle import DownloadPlan
    from ..engine.sharding import Shard
    from ..stores.settings import Settings


def batch_run(
    source: Annotated[str, typer.Argument(metavar="FILE", help="Prompts file (text or JSON Lines), or '-' for stdin.", show_default=False)],
    aspect: AspectOpt = None,
    image_format: FormatOpt = None,
    num_images: NumImagesOpt = None,
    output_dir: OutputDirOpt = None,
    name: NameOpt = None,
    metadata: MetadataOpt = None,
    concurrency: ConcurrencyOpt = 4,
    shard: Annotated[Optional[str], typer.Option(
        "--shard", metavar="K/N", show_default=False,
        help="Run only shard K of N: the lines whose key hashes to it, recorded in a manifest of its own. "
        "N machines running shards 1/N to N/N cover every line exactly once; `nanobanana merge` combines them.",
    )] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Submit the valid lines even if some are invalid.")] = False,
    gallery: Annotated[bool, typer.Option("--gallery", help="Write an index.html contact sheet into the output directory.")] = False,
    resubmit_uncertain: Annotated[bool, typer.Option(
        "--resubmit-uncertain",
        help="Submit again the lines whose earlier submit has an unknown outcome (the answer was lost, or the run "
        "was killed mid-submit). Each of them may already be a job: this may bill them twice.",
    )] = False,
    timeout: TimeoutOpt = None,
    sandbox: SandboxOpt = False,
    dry_run: DryRunOpt = False,
    curl: CurlOpt = False,
    max_cost: MaxCostOpt = None,
    preview: PreviewOpt = None,
    on_done: OnDoneOpt = None,
    hook_env_token: HookTokenOpt = None,
    notify: NotifyOpt = None,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Generate images for every prompt in FILE, N jobs at a time, resumably.

    FILE holds one prompt per line (blank lines and # comments skipped), or JSON Lines with
    "prompt" and optional "aspect_ratio", "output_format", "num_images", "name"; the command-line
    options are the defaults. Every line is checked before anything is submitted.

    A manifest in the output directory records each submit before it is sent and its request id
    as soon as it is answered: running the same command again skips finished lines, re-attaches
    to running jobs and submits only the rest. A line whose submit may have been billed without
    an answer (lost connection, 5xx, a crash) is reported as uncertain and never sent again
    unless --resubmit-uncertain is given. Exit 0 if every line succeeded, 5 if any failed or was
    cancelled, 7 if any is uncertain or the API was unavailable.

    Examples:

      nanobanana batch prompts.txt -j 8 -o out/

      nanobanana batch prompts.jsonl --json | jq -r '.outputs[].path'

      nanobanana batch prompts.txt --shard 2/4 -o out/

      nanobanana batch prompts.txt --dry-run
    """
    from ..engine.sharding import parse_shard

    output = make_output(json_, quiet)
    template = parse_name(name)
    part = None if shard is None else parse_shard(shard)
    settings = command_settings(
        token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir,
        aspect_ratio=aspect, output_format=image_format, num_images=num_images, metadata=metadata,
        preview=preview, on_done=on_done, hook_token=hook_env_token, notify=notify,
    )
    lines = _lines(output, source, settings, skip_invalid, part)
    if curl and not dry_run:
        raise UsageError("--curl goes with --dry-run", hint=f"nanobanana batch {source} --dry-run --curl")
    if dry_run:
        show_dry_run(output, settings, [(line.number, line.generation) for line in lines], curl)
        return
    if not lines:
        return
    plan = download_plan(settings, template)
    rerun = f"nanobanana batch {shlex.quote(source)} -o {shlex.quote(str(plan.directory))}"
    rerun += f" --shard {part}" if part else ""
    followups = Followups.of(output, settings)
    run = LineRun(concurrency, sandbox, resubmit_uncertain, max_cost, part.manifest_name if part else None)
    outcomes = run_lines(output, settings, plan, lines, run, lambda item: _emit(output, followups, item))
    _conclude(output, followups, outcomes, plan.directory if gallery else None, source, rerun)


def _conclude(
    output: Output, followups: Followups, outcomes: list[LineOutcome], gallery: Path | None, source: str, rerun: str
) -> None:
    """After the run: previews and hooks, the gallery when asked for, the summary and the exit code."""
    followups.show([saved.path for item in outcomes if not item.skipped for saved in item.outcome.saved or []])
    if gallery is not None:
        from ..render.gallery import write_gallery

        output.note(f"gallery: {write_gallery(gallery, output.warn)}")
    followups.finished(f"batch {source}: {summary_of(outcomes, 'line')}")
    again = BatchRerun(f"to retry the failed lines: {rerun}", f"{rerun} --resubmit-uncertain")
    finish_lines(output, outcomes, "batch", "line", again)


def _lines(output: Output, source: str, settings: Settings, skip_invalid: bool, shard: Shard | None) -> list[BatchLine]:
    """The file's valid lines (every problem shown first), only the shard's when there is one."""
    from ..engine.batch import parse_batch

    lines, problems = parse_batch(_read_source(source), settings.generation_defaults())
    for problem in problems:
        output.error(f"{source}:{problem.number}: {problem.message}")
    if problems and not skip_invalid:
        raise UsageError(
            f"{len(problems)} invalid line(s) in {source}; nothing was submitted",
            hint="fix them, or pass --skip-invalid to submit the rest",
        )
    for problem in problems:  # skipped, and said so in the --json stream too: one document per line of the file
        _emit_invalid(output, problem)
    if not lines:
        raise UsageError(f"no prompts in {source}", hint="write one prompt per line")
    if shard is None:
        return lines
    mine = [line for line in lines if shard.holds(line.key)]
    output.note(f"shard {shard}: {len(mine)} of {len(lines)} line(s)" + ("; nothing to do" if not mine else ""))
    return mine


def _emit_invalid(output: Output, problem: LineProblem) -> None:
    from ..engine.lifecycle import JobOutcome

    outcome = JobOutcome("", "invalid", error=UsageError(problem.message))
    output.emit({**outcome.to_dict(), "line": problem.number, "name": None, "skipped": True}, [], compact=True)


def _emit(output: Output, followups: Followups, item: LineOutcome) -> None:
    output.emit(item.to_dict(), [saved.path for saved in item.outcome.saved or []], compact=True)
    if not item.skipped:
        followups.saved(item.outcome)


@dataclass(frozen=True)
class LineRun:
    """How `run_lines` runs: `batch`'s flags, or a generate run's."""

    concurrency: int = 4
    sandbox: bool = False
    resubmit_uncertain: bool = False
    max_cost: float | None = None
    manifest_name: str | None = None  # None: the directory's main manifest
    rerun_hint: str | None = None  # what an interrupt says to do; None: run the same batch command again


def run_lines(
    output: Output,
    settings: Settings,
    plan: DownloadPlan,
    lines: list[BatchLine],
    run: LineRun,
    on_outcome: Callable[[LineOutcome], None],
) -> list[LineOutcome]:
    """Run the lines through the batch engine (within --max-cost), handing each outcome over as it comes."""
    from ..engine.batch import MANIFEST_NAME, RERUN_HINT, run_batch
    from ..engine.connect import open_client
    from ..engine.lifecycle import Jobs

    outcomes = []
    with (
        open_history(output) as history,
        open_client(settings, notices=output, sandbox=run.sandbox, max_connections=run.concurrency * 2) as client,
        output.batch_progress(len(lines)) as progress,
    ):
        within_budget(output, client, sum(line.generation.num_images for line in lines), run.max_cost, announce=True)
        jobs = Jobs(client, history, reporter=progress, downloads=plan, timeout=settings["timeout"])
        batch = run_batch(
            jobs, lines, concurrency=run.concurrency, reporter=progress, resubmit_uncertain=run.resubmit_uncertain,
            warn=output.warn, manifest_name=run.manifest_name or MANIFEST_NAME, rerun_hint=run.rerun_hint or RERUN_HINT,
        )
        for item in batch:
            outcomes.append(item)
            on_outcome(item)
    return outcomes


def _read_source(source: str) -> str:
    try:
        if source == "-":
            return sys.stdin.read()
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{'stdin' if source == '-' else source} is not UTF-8 text") from None


@dataclass(frozen=True)
class BatchRerun:
    """What to tell the user after failures: how to retry, and (if possible) how to force uncertain ones."""

    retry: str
    resubmit: str | None = None


def summary_of(outcomes: list[LineOutcome], unit: str) -> str:
    counts = Counter("skipped" if o.skipped else o.outcome.status for o in outcomes)
    return f"{len(outcomes)} {unit}(s): " + ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def finish_lines(output: Output, outcomes: list[LineOutcome], what: str, unit: str, rerun: BatchRerun) -> None:
    """The summary on stderr; with failures, how to go on, and the exit code of the worst of them."""
    from ..states import JobState

    output.note(f"{what}: {summary_of(outcomes, unit)}")
    errors: list[NanobananaError] = [o.outcome.error for o in outcomes if o.outcome.error is not None]
    if not errors:
        return
    uncertain = sorted(o.line.number for o in outcomes if o.outcome.status == JobState.UNCERTAIN)
    if len(uncertain) < len(errors):
        output.note(rerun.retry)
    if uncertain:
        force = f" To submit them again anyway, which may bill twice: {rerun.resubmit}" if rerun.resubmit else ""
        output.note(
            f"uncertain {unit}(s) {', '.join(map(str, uncertain))}: a job may exist and be billed for each, with no id "
            f"to find it by (the API has no job list); check your RunComfy dashboard and `nanobanana history`.{force}"
        )
    systemic = [error for error in errors if not isinstance(error, JobFailedError)]
    raise AlreadyReported((systemic or errors)[0].exit_code)
