"""`nanobanana batch`: many prompts at once, resumable, never paying twice; and `--shard K/N`."""

from __future__ import annotations

import shlex
import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import UsageError
from ..render.output import Output
from ..runs.context import download_plan, parse_name, show_dry_run
from ..runs.followups import Followups
from ..runs.lines import BatchRerun, LineRun, finish_lines, run_lines, summary_of
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
    make_output,
)

if TYPE_CHECKING:
    from pathlib import Path

    from ..engine.batch import LineOutcome
    from ..engine.batch_file import BatchLine, LineProblem
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
    run = LineRun(concurrency, sandbox, resubmit_uncertain, max_cost, part.manifest_name if part else None,
                  rerun_hint=f"run the same batch command again to resume without paying twice: {rerun}")
    outcomes = run_lines(output, settings, plan, lines, run, lambda item: _emit(output, followups, item))
    _conclude(output, followups, outcomes, plan.directory if gallery else None, source, rerun)


def _conclude(
    output: Output, followups: Followups, outcomes: list[LineOutcome], gallery: Path | None, source: str, rerun: str
) -> None:
    """After the run: previews and hooks, the gallery when asked for, the summary and the exit code."""
    followups.show([saved.path for item in outcomes if not item.skipped for saved in item.outcome.saved or []])
    if gallery is not None:
        from ..runs.gallery import write_gallery

        output.note(f"gallery: {write_gallery(gallery, output.warn)}")
    followups.finished(f"batch {source}: {summary_of(outcomes, 'line')}")
    again = BatchRerun(f"to retry the failed lines: {rerun}", f"{rerun} --resubmit-uncertain")
    finish_lines(output, outcomes, "batch", "line", again)


def _lines(output: Output, source: str, settings: Settings, skip_invalid: bool, shard: Shard | None) -> list[BatchLine]:
    """The file's valid lines (every problem shown first), only the shard's when there is one."""
    from ..engine.batch_file import parse_batch

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
    from ..engine.outcome import JobOutcome

    outcome = JobOutcome("", "invalid", error=UsageError(problem.message))
    output.emit({**outcome.to_dict(), "line": problem.number, "name": None, "skipped": True}, [], compact=True)


def _emit(output: Output, followups: Followups, item: LineOutcome) -> None:
    output.emit(item.to_dict(), [saved.path for saved in item.outcome.saved or []], compact=True)
    if not item.skipped:
        followups.saved(item.outcome)


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


