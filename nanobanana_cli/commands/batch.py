"""`nanobanana batch`: many prompts at once, resumable, never paying twice."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Annotated

import typer

from ..errors import JobFailedError, NanobananaError, UsageError
from .options import (
    AspectOpt,
    BaseUrlOpt,
    CurlOpt,
    DryRunOpt,
    FormatOpt,
    JsonOpt,
    NumImagesOpt,
    OutputDirOpt,
    QuietOpt,
    RetriesOpt,
    SandboxOpt,
    TimeoutOpt,
    TokenOpt,
    api_client,
    download_plan,
    generation_defaults,
    make_output,
    open_history,
    print_dry_run,
    setting,
)


def batch_run(
    source: Annotated[str, typer.Argument(metavar="FILE", help="Prompts file (text or JSON Lines), or '-' for stdin.", show_default=False)],
    aspect: AspectOpt = None,
    image_format: FormatOpt = None,
    num_images: NumImagesOpt = None,
    output_dir: OutputDirOpt = None,
    concurrency: Annotated[int, typer.Option("-j", "--concurrency", min=1, max=32, help="Jobs in flight at once.")] = 4,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Submit the valid lines even if some are invalid.")] = False,
    gallery: Annotated[bool, typer.Option("--gallery", help="Write an index.html contact sheet into the output directory.")] = False,
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

    A manifest in the output directory records each request id as soon as it is submitted:
    running the same command again skips finished lines, re-attaches to running jobs and submits
    only the rest. Exit 0 if every line succeeded, 5 if any failed or was cancelled.

    Examples:

      nanobanana batch prompts.txt -j 8 -o out/

      nanobanana batch prompts.jsonl --json | jq -r '.outputs[].path'

      nanobanana batch prompts.txt --dry-run
    """
    from ..engine.batch import parse_batch, run_batch
    from ..render.output import BatchProgress

    output = make_output(json_, quiet)
    text = _read_source(source)
    lines, problems = parse_batch(text, generation_defaults(aspect, image_format, num_images))
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
        print_dry_run(output, [(line.number, line.generation) for line in lines], base_url, curl)
        return
    plan = download_plan(output_dir)
    outcomes = []
    with open_history(output) as history, api_client(token, base_url, output, sandbox=sandbox, retries=retries) as client:
        with BatchProgress(output, len(lines)) as progress:
            for item in run_batch(
                client, lines, downloads=plan, concurrency=concurrency, reporter=progress,
                history=history, timeout=setting("timeout", timeout),
            ):
                outcomes.append(item)
                if output.mode.value == "json":
                    output.result_json(item.to_dict(), compact=True)
                elif item.outcome.saved:
                    for saved in item.outcome.saved:
                        output.result_line(saved.path)
    if gallery:
        from ..render.gallery import write_gallery

        output.note(f"gallery: {write_gallery(plan.directory)}")
    _finish(output, outcomes, source, plan.directory)


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


def _finish(output, outcomes, source: str, directory) -> None:
    counts = Counter("skipped" if o.skipped else o.outcome.status for o in outcomes)
    summary = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
    output.note(f"batch: {len(outcomes)} line(s): {summary}")
    errors: list[NanobananaError] = [o.outcome.error for o in outcomes if o.outcome.error is not None]
    if not errors:
        return
    output.note(f"to retry the failed lines: nanobanana batch {source} -o {directory}")
    systemic = [error for error in errors if not isinstance(error, JobFailedError)]
    raise typer.Exit(int(systemic[0].exit_code if systemic else errors[0].exit_code))
