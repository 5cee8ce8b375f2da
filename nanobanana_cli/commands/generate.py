"""`nanobanana generate`: submit, wait with progress, download, print the paths."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import UsageError
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
    OpenOpt,
    OutputDirOpt,
    QuietOpt,
    RetriesOpt,
    SandboxOpt,
    TemplateOpt,
    TimeoutOpt,
    TokenOpt,
    base_url_flag,
    command_settings,
    download_plan,
    MaxCostOpt,
    MetadataOpt,
    make_output,
    open_history,
    open_in_viewer,
    show_dry_run,
    within_budget,
)

if TYPE_CHECKING:
    from ..api.models import GenerationInput
    from ..engine.lifecycle import JobOutcome
    from ..stores.settings import Settings


def read_prompt(prompt: str | None) -> str:
    """The prompt argument, or stdin when it is `-` or omitted with input piped in."""
    if prompt is not None and prompt != "-":
        return prompt
    if prompt is None and sys.stdin.isatty():
        raise UsageError("no prompt given", hint='pass one: nanobanana generate "a red fox in the snow", or pipe it in')
    return sys.stdin.read()


def _check_combinations(sandbox: bool, no_wait: bool, dry_run: bool, curl: bool) -> None:
    if sandbox and no_wait:
        raise UsageError(
            "--no-wait cannot be used with --sandbox: the sandbox stops when this command ends",
            hint="run `nanobanana sandbox` in another terminal and use its exported settings",
        )
    if curl and not dry_run:
        raise UsageError("--curl goes with --dry-run", hint='nanobanana generate "…" --dry-run --curl')
    if dry_run and sandbox:
        raise UsageError("--dry-run shows the request for the real API; drop --sandbox")


def generate(
    prompt: Annotated[Optional[str], typer.Argument(help="What to draw; '-' (or nothing, with a pipe) reads stdin.", show_default=False)] = None,
    aspect: AspectOpt = None,
    image_format: FormatOpt = None,
    num_images: NumImagesOpt = None,
    output_dir: OutputDirOpt = None,
    name: NameOpt = None,  # applied by its option callback, through download_plan
    metadata: MetadataOpt = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Submit, print the request id, and stop.")] = False,
    no_download: Annotated[bool, typer.Option("--no-download", help="Wait, then print the image URLs instead of saving.")] = False,
    timeout: TimeoutOpt = None,
    sandbox: SandboxOpt = False,
    dry_run: DryRunOpt = False,
    curl: CurlOpt = False,
    open_: OpenOpt = False,
    max_cost: MaxCostOpt = None,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    template: TemplateOpt = None,
) -> None:
    """Generate images from a text prompt, wait for them and save them.

    Progress goes to stderr; the saved paths go to stdout, one per line.

    Examples:

      nanobanana generate "a glass greenhouse at dusk" --aspect 9:16 -n 4

      echo "a red fox" | nanobanana generate -f jpg -o out/ --json

      nanobanana generate "日本の庭" -n 4 --name '{date}-{slug}-{i}'

      ID=$(nanobanana generate "a red fox" --no-wait -q)

      nanobanana generate "a red fox" --dry-run --curl
    """
    from ..api.models import GenerationInput

    output = make_output(json_, quiet, template)
    _check_combinations(sandbox, no_wait, dry_run, curl)
    settings = command_settings(
        token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir,
        aspect_ratio=aspect, output_format=image_format, num_images=num_images, metadata=metadata,
    )
    generation = GenerationInput(read_prompt(prompt), **settings.generation_defaults())
    run_generation(
        output, settings, generation, RunChoices(sandbox, not no_wait, not (no_wait or no_download), dry_run, curl, open_, max_cost)
    )


@dataclass(frozen=True)
class RunChoices:
    """What `generate` (and `regen`) do with a validated input, from their flags."""

    sandbox: bool = False
    wait: bool = True
    download: bool = True
    dry_run: bool = False
    curl: bool = False
    open_: bool = False
    max_cost: float | None = None


def run_generation(output: Output, settings: Settings, generation: GenerationInput, choices: RunChoices) -> None:
    """Show the request, or submit it (within --max-cost), wait, save and print the outcome."""
    if choices.dry_run:
        show_dry_run(output, settings, [(None, generation)], choices.curl)
        return
    outcome = _submit(output, settings, generation, choices)
    if outcome is None:
        return
    output.job(outcome)
    if outcome.error is not None:
        raise outcome.error
    if choices.open_ and outcome.saved:
        open_in_viewer(output, [item.path for item in outcome.saved])


def _submit(output: Output, settings: Settings, generation: GenerationInput, choices: RunChoices) -> JobOutcome | None:
    """Submit the job and, unless told not to wait, its outcome (a failure carried in it)."""
    from ..engine.connect import open_client
    from ..engine.lifecycle import Jobs

    downloads = download_plan(settings) if choices.download else None
    with (
        open_history(output) as history,
        open_client(settings, notices=output, sandbox=choices.sandbox) as client,
        output.progress() as progress,
    ):
        within_budget(output, client, generation.num_images, choices.max_cost)
        jobs = Jobs(
            client, history, reporter=progress, downloads=downloads, timeout=settings["timeout"],
            resume_base_url=base_url_flag(settings),
        )
        submission = jobs.submit(generation)
        if not choices.wait:
            output.submitted(jobs.describe(submission.request_id, "in_queue", generation), submission)
            return None
        # From the submit on, Ctrl-C anywhere names the job and how to resume it.
        with jobs.resumable([submission.request_id]):
            output.note(f"submitted {submission.request_id} ({generation.num_images}× {generation.aspect_ratio} {generation.output_format})")
            return jobs.outcome_of(submission.request_id, generation, expected_seconds=jobs.expected_seconds())
