"""`nanobanana batch`: many prompts at once, resumable, never paying twice."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import AlreadyReported, JobFailedError, NanobananaError, UsageError
from ..render.output import Output
from .options import (
    AspectOpt,
    BaseUrlOpt,
    CurlOpt,
    DryRunOpt,
    FormatOpt,
    JsonOpt,
    NameOpt,
    NumImagesOpt,
    OutputDirOpt,
    QuietOpt,
    RetriesOpt,
    SandboxOpt,
    TimeoutOpt,
    TokenOpt,
    command_settings,
    download_plan,
    MetadataOpt,
    make_output,
    open_history,
    show_dry_run,
)

if TYPE_CHECKING:
    from ..engine.batch import BatchLine, LineOutcome
    from ..engine.lifecycle import DownloadPlan
    from ..stores.settings import Settings


def batch_run(
    source: Annotated[str, typer.Argument(metavar="FILE", help="Prompts file (text or JSON Lines), or '-' for stdin.", show_default=False)],
    aspect: AspectOpt = None,
    image_format: FormatOpt = None,
    num_images: NumImagesOpt = None,
    output_dir: OutputDirOpt = None,
    name: NameOpt = None,  # applied by its option callback, through download_plan
    metadata: MetadataOpt = None,
    concurrency: Annotated[int, typer.Option("-j", "--concurrency", min=1, max=32, help="Jobs in flight at once.")] = 4,
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

      nanobanana batch prompts.txt --dry-run
    """
    from ..engine.batch import parse_batch

    output = make_output(json_, quiet)
    settings = command_settings(
        token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir,
        aspect_ratio=aspect, output_format=image_format, num_images=num_images, metadata=metadata,
    )
    lines, problems = parse_batch(_read_source(source), settings.generation_defaults())
    for problem in problems:
        output.error(f"{source}:{problem.number}: {problem.message}")
    if problems and not skip_invalid:
        raise UsageError(
            f"{len(problems)} invalid line(s) in {source}; nothing was submitted",
            hint="fix them, or pass --skip-invalid to submit the rest",
        )
    if not lines:
        raise UsageError(f"no prompts in {source}", hint="write one prompt per line")
    if curl and not dry_run:
        raise UsageError("--curl goes with --dry-run", hint=f"nanobanana batch {source} --dry-run --curl")
    if dry_run:
        show_dry_run(output, settings, [(line.number, line.generation) for line in lines], curl)
        return
    plan = download_plan(settings)
    outcomes = _run(output, settings, plan, lines, concurrency, sandbox, resubmit_uncertain)
    if gallery:
        from ..render.gallery import write_gallery

        output.note(f"gallery: {write_gallery(plan.directory)}")
    _finish(output, outcomes, f"nanobanana batch {shlex.quote(source)} -o {shlex.quote(str(plan.directory))}")


def _run(
    output: Output,
    settings: Settings,
    plan: DownloadPlan,
    lines: list[BatchLine],
    concurrency: int,
    sandbox: bool,
    resubmit_uncertain: bool,
) -> list[LineOutcome]:
    from ..engine.batch import run_batch
    from ..engine.connect import open_client
    from ..engine.lifecycle import Jobs

    outcomes = []
    with (
        open_history(output) as history,
        open_client(
            settings, notices=output, sandbox=sandbox,
            max_connections=concurrency * 2,
        ) as client,
        output.batch_progress(len(lines)) as progress,
    ):
        jobs = Jobs(client, history, reporter=progress, downloads=plan, timeout=settings["timeout"])
        batch = run_batch(
            jobs, lines, concurrency=concurrency, reporter=progress, resubmit_uncertain=resubmit_uncertain, warn=output.warn
        )
        for item in batch:
            outcomes.append(item)
            output.emit(item.to_dict(), [saved.path for saved in item.outcome.saved or []], compact=True)
    return outcomes


def _read_source(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    try:
        with open(source, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise UsageError(f"cannot read {source}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{source} is not UTF-8 text") from None


def _finish(output: Output, outcomes: list[LineOutcome], rerun: str) -> None:
    from ..engine.batch import UNCERTAIN

    counts = Counter("skipped" if o.skipped else o.outcome.status for o in outcomes)
    summary = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
    output.note(f"batch: {len(outcomes)} line(s): {summary}")
    errors: list[NanobananaError] = [o.outcome.error for o in outcomes if o.outcome.error is not None]
    if not errors:
        return
    uncertain = sorted(o.line.number for o in outcomes if o.outcome.status == UNCERTAIN)
    if len(uncertain) < len(errors):
        output.note(f"to retry the failed lines: {rerun}")
    if uncertain:
        output.note(
            f"uncertain line(s) {', '.join(map(str, uncertain))}: a job may exist and be billed for each, with no id "
            "to find it by (the API has no job list); check your RunComfy dashboard and `nanobanana history`. "
            f"To submit them again anyway, which may bill twice: {rerun} --resubmit-uncertain"
        )
    systemic = [error for error in errors if not isinstance(error, JobFailedError)]
    raise AlreadyReported((systemic or errors)[0].exit_code)
