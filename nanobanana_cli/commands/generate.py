"""`nanobanana generate`: submit, wait with progress, download, print the paths.

One prompt and at most four images is one job. A prompt matrix (`a {red,blue} fox`, `--var`) or
`-n` above 4 is a run of several jobs: it goes through the batch engine (a manifest in the output
directory, `-j` at once, resumed by the same command until done, never billed twice) and is printed as one
result, in order.
"""

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import UsageError
from ..runs.context import parse_name
from .options import (
    AspectOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    CurlOpt,
    DryRunOpt,
    FitOpt,
    FormatOpt,
    GenerateNameOpt,
    HookTokenOpt,
    JsonOpt,
    ManyImagesOpt,
    MaxCostOpt,
    MetadataOpt,
    ModelOpt,
    NotifyOpt,
    NoWaitOpt,
    OnDoneOpt,
    OpenOpt,
    OutputDirOpt,
    PreviewOpt,
    QuietOpt,
    ResolutionOpt,
    RetriesOpt,
    SandboxOpt,
    SeedOpt,
    SetOpt,
    TemplateOpt,
    TimeoutOpt,
    TokenOpt,
    command_settings,
    make_output,
    open_in_viewer,
)

if TYPE_CHECKING:
    pass


def read_prompt(prompt: str | None) -> str:
    """The prompt argument, or stdin when it is `-` or omitted with input piped in."""
    if prompt is not None and prompt != "-":
        return prompt
    if prompt is None and sys.stdin.isatty():
        raise UsageError("no prompt given", hint='pass one: nanobanana generate "a red fox in the snow", or pipe it in')
    try:
        return sys.stdin.read()
    except UnicodeDecodeError:  # a strict UTF-8 stdin; a lenient one hands the bytes on, for GenerationInput to refuse
        raise UsageError("the prompt on stdin is not valid UTF-8", hint="pipe in UTF-8 text") from None


def refuse_file_prompt(prompt: str) -> None:
    """A prompt that is only the path of an existing file is almost surely a file meant for `batch` or stdin:
    sent as it is, it would be billed as the text `prompts.txt`."""
    candidate = prompt.strip()
    if not candidate or any(char.isspace() for char in candidate):
        return
    try:
        is_file = Path(candidate).expanduser().is_file()
    except (OSError, ValueError):  # a name too long or with a NUL byte is no file
        return
    if is_file:
        quoted = shlex.quote(candidate)
        raise UsageError(
            f"the prompt {candidate!r} is the name of an existing file; nothing was submitted",
            hint=f"for a prompt per line: nanobanana batch {quoted}; for the file's text as one prompt: "
            f"nanobanana generate - < {quoted}; to send the name itself as the prompt, add --literal",
        )


def _check_no_wait(no_wait: bool, open_: bool, timeout: float | None, no_download: bool) -> None:
    """Flags about waiting and saving mean nothing to a command that stops after the submit: refused, not
    ignored. (-o is kept: the job's recorded intent names the directory a later `watch` saves into.)"""
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout must be above 0 seconds, not {timeout:g}", hint="leave it out to wait without a limit")
    if not no_wait:
        return
    for given, flag in ((open_, "--open"), (timeout is not None, "--timeout"), (no_download, "--no-download")):
        if given:
            raise UsageError(
                f"{flag} has no effect with --no-wait: this command stops once the job is submitted",
                hint=f"drop {flag}, or use it with `nanobanana watch ID` later",
            )


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
    prompt: Annotated[Optional[str], typer.Argument(
        help="What to draw; '-' (or nothing, with a pipe) reads stdin. {a,b} groups and {NAME} (see --var) make a "
        "prompt matrix.", show_default=False,
    )] = None,
    model: ModelOpt = None,
    aspect: AspectOpt = None,
    resolution: ResolutionOpt = None,
    seed: SeedOpt = None,
    sets: SetOpt = None,
    images: Annotated[Optional[list[str]], typer.Option(
        "-i", "--image", metavar="IMAGE", show_default=False,
        help="An input image (local file or https URL; repeatable), for models whose schema takes images.",
    )] = None,
    fit: FitOpt = False,
    image_format: FormatOpt = None,
    num_images: ManyImagesOpt = None,
    output_dir: OutputDirOpt = None,
    name: GenerateNameOpt = None,
    metadata: MetadataOpt = None,
    variables: Annotated[Optional[list[str]], typer.Option(
        "--var", metavar="NAME=A,B", show_default=False,
        help="Values for {NAME} in the prompt, one job each (repeat for more variables: every combination is made). "
        "--var model=A,B runs every prompt on each model instead (like --model A,B; not written into the prompt).",
    )] = None,
    no_expand: Annotated[bool, typer.Option(
        "--no-expand", help="Send the prompt as written: braces are not a matrix.",
    )] = False,
    literal: Annotated[bool, typer.Option(
        "--literal", help="Send the prompt even when it is the name of an existing file (refused otherwise).",
    )] = False,
    yes: Annotated[bool, typer.Option(
        "-y", "--yes", help="Submit a run of more than matrix_confirm_above jobs (config, 8) without asking.",
    )] = False,
    concurrency: ConcurrencyOpt = 4,
    no_wait: NoWaitOpt = False,
    no_download: Annotated[bool, typer.Option("--no-download", help="Wait, then print the image URLs instead of saving.")] = False,
    timeout: TimeoutOpt = None,
    sandbox: SandboxOpt = False,
    dry_run: DryRunOpt = False,
    curl: CurlOpt = False,
    open_: OpenOpt = False,
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
    template: TemplateOpt = None,
) -> None:
    """Generate images from a text prompt, wait for them and save them.

    Progress goes to stderr; the saved paths go to stdout, one per line (--json: one document
    per job, one per line).

    A prompt matrix is one job per combination: "a {red,blue} car in {fog,snow}" is four, and
    --var style=ink,oil fills {style}; write {{ and }} for literal braces. -n above 4 makes
    several jobs of at most 4. Such a run is shown first, asks before more than
    matrix_confirm_above jobs (or needs --yes without a terminal) and records every submit in the
    output directory's batch manifest.

    Run again in the same directory, the same command resumes a run that was not done (an
    interrupt, a failure, a timeout: nothing done is paid for twice) and otherwise makes a new run
    with new images; stderr says which.

    --model A,B (or --var model=A,B) compares models: every prompt on each model, each job
    checked against its model's schema and priced at its price, file names led by the model.
    `generate --model X --help` ends with X's fields, types, values and defaults (`model X`).

    Examples:

      nanobanana generate "a glass greenhouse at dusk" --aspect 9:16 -n 4

      echo "a red fox" | nanobanana generate -f jpg -o out/ --json

      nanobanana generate "a {red,blue} fox, {style}" --var style=ink,oil

      nanobanana generate "a red fox" -n 10 --preview --on-done 'upload.sh {path}'

      ID=$(nanobanana generate "a red fox" --no-wait -q)

      nanobanana generate "a red fox" --dry-run --curl

      nanobanana generate "a lighthouse" --model nano-banana-2 --resolution 2K -a auto --seed 7

      nanobanana generate "a {red,blue} lighthouse" --model nano-banana,nano-banana-pro --dry-run
    """
    from ..engine.matrix import models_of, parse_vars, plan_jobs
    from ..invocation import rerun_command
    from ..runs.generate import ManyChoices, RunChoices, run_generation, run_many
    from ..runs.models import ModelRequest, models_to_compare, parse_sets

    output = make_output(json_, quiet, template).documents_errors(per_line=True)
    _check_combinations(sandbox, no_wait, dry_run, curl)
    _check_no_wait(no_wait, open_, timeout, no_download)
    if prompt is not None and prompt != "-" and not literal:
        refuse_file_prompt(prompt)
    compared, matrix = models_of(model, parse_vars(variables or []))
    settings = command_settings(
        token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir,
        model=compared[0] if compared else model, aspect_ratio=aspect, output_format=image_format, num_images=num_images, metadata=metadata,
        preview=preview, on_done=on_done, hook_token=hook_env_token, notify=notify,
    )
    request = ModelRequest(settings["model"], "generate", resolution, seed, parse_sets(sets), tuple(images or ()), fit)
    planned = plan_jobs(
        read_prompt(prompt), matrix, settings["num_images"],
        {**settings.generation_defaults(), "model": request.model_id}, literal=no_expand, notice=output.note,
        models=models_to_compare(compared, "generate") if len(compared) > 1 else (),
    )
    names = parse_name(name, planned[0].values)  # checked for every run, whatever its size
    opening = (lambda paths: open_in_viewer(output, paths)) if open_ else None
    choices = RunChoices(sandbox, not no_wait, not (no_wait or no_download), dry_run, curl, max_cost, names, opening, request)
    if len(planned) == 1 and not planned[0].values:
        run_generation(output, settings, planned[0].generation, choices)
    else:
        command = rerun_command() + ("" if prompt not in (None, "-") else " (with the same prompt on stdin)")
        run_many(output, settings, planned, ManyChoices(choices, concurrency, yes, command))


