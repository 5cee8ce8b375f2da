"""`nanobanana edit PROMPT -i IMAGE [-i IMAGE …]`: a model's edit endpoint, from local files or URLs.

Thin: the images, the model and its options are checked and sent by the same use case as
`generate` (runs/generate.py, runs/models.py), through the same journaled submit.
"""

from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ..runs.context import parse_name
from .options import (
    AspectOpt,
    BaseUrlOpt,
    CurlOpt,
    DryRunOpt,
    FitOpt,
    FormatOpt,
    JsonOpt,
    MaxCostOpt,
    MetadataOpt,
    ModelOpt,
    NameOpt,
    NoWaitOpt,
    NumImagesOpt,
    OpenOpt,
    OutputDirOpt,
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
    from ..render.output import Output
    from ..runs.generate import RunChoices
    from ..stores.settings import Settings


def edit(
    prompt: Annotated[str, typer.Argument(help="What to change, or what to make from the images.", show_default=False)],
    images: Annotated[list[str], typer.Option(
        "-i", "--image", metavar="IMAGE", show_default=False,
        help="An input image: a local PNG, JPEG or WebP file (sent inline) or an https URL. Repeat for several; "
        "the model's schema says how many it takes.",
    )],
    fit: FitOpt = False,
    model: ModelOpt = None,
    aspect: AspectOpt = None,
    resolution: ResolutionOpt = None,
    seed: SeedOpt = None,
    sets: SetOpt = None,
    image_format: FormatOpt = None,
    num_images: NumImagesOpt = None,
    output_dir: OutputDirOpt = None,
    name: NameOpt = None,
    metadata: MetadataOpt = None,
    no_wait: NoWaitOpt = False,
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
    """Edit images with a prompt: the model's edit endpoint, from local files or https URLs.

    A local file is sent inline as a data URI, checked first: a real PNG, JPEG or WebP, at most
    the model's per-image limit (6 MiB unless its schema says otherwise; --fit shrinks a larger
    one) and 64 MiB in all. Records keep each file's name, size and sha256, never its data, and
    `regen` of the result sends the same files again. --model A,B makes the same edit on each
    model, files named by model; `edit --model X --help` ends with X's fields (`model X --edit`).

    Examples:

      nanobanana edit "make it night, with stars" -i photo.jpg

      nanobanana edit "the cat from the first image in the room of the second" -i cat.png -i room.png --model nano-banana-2

      nanobanana edit "as a watercolour" -i big.jpg --fit --dry-run

      nanobanana edit "make it dusk" -i photo.jpg --model nano-banana,nano-banana-2
    """
    from ..engine.matrix import models_of
    from ..runs.generate import RunChoices, run_generation
    from ..runs.models import ModelRequest, parse_sets, plain_request

    output = make_output(json_, quiet, template).documents_errors(per_line=True)
    if sandbox and no_wait:
        raise UsageError("--no-wait cannot be used with --sandbox: the sandbox stops when this command ends")
    if curl and not dry_run:
        raise UsageError("--curl goes with --dry-run")
    compared, _ = models_of(model, {})  # --model a,b: the same edit on each model, files named by model
    settings = command_settings(
        token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir,
        model=compared[0] if compared else model,
        aspect_ratio=aspect, output_format=image_format, num_images=num_images, metadata=metadata,
    )
    request = ModelRequest(settings["model"], "edit", resolution, seed, parse_sets(sets), tuple(images), fit)
    opening = (lambda paths: open_in_viewer(output, paths)) if open_ else None
    if len(compared) > 1:
        _compare(output, settings, prompt, compared, RunChoices(
            sandbox, not no_wait, not no_wait, dry_run, curl, max_cost, None, opening, request), name)
        return
    choices = RunChoices(sandbox, not no_wait, not no_wait, dry_run, curl, max_cost, parse_name(name), opening, request)
    run_generation(output, settings, plain_request(prompt, settings, request), choices)


def _compare(output: "Output", settings: "Settings", prompt: str, models: list[str], choices: "RunChoices", name: str | None) -> None:
    """One edit per model, run (and resumed) like a generate run of several jobs."""

    from ..engine.matrix import plan_jobs
    from ..invocation import rerun_command
    from ..runs.generate import ManyChoices, run_many
    from ..runs.models import models_to_compare

    planned = plan_jobs(
        prompt, {}, settings["num_images"], {**settings.generation_defaults(), "model": choices.model.model_id},
        literal=True, models=models_to_compare(models, "edit"),
    )
    choices = choices._replace(name=parse_name(name, planned[0].values))
    run_many(output, settings, planned, ManyChoices(choices, command=rerun_command()))
