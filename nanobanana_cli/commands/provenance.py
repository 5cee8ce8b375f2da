"""`inspect` and `regen`: what a saved image says about itself, and making it again from that."""

from functools import partial
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import AlreadyReported, ExitCode, UsageError
from ..render.output import Output
from ..runs.context import open_history, parse_name
from ..sanitise import shown
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
    NumImagesOpt,
    OutputDirOpt,
    QuietOpt,
    ResolutionOpt,
    RetriesOpt,
    SandboxOpt,
    SeedOpt,
    SetOpt,
    TimeoutOpt,
    TokenOpt,
    command_settings,
    make_output,
)

FilesArg = Annotated[list[Path], typer.Argument(help="Images nanobanana saved (here or on another machine).", show_default=False)]


def inspect_files(files: FilesArg, json_: JsonOpt = False) -> None:
    """Show how each image was made: its embedded (or sidecar) provenance, the history record when
    this machine made it, whether the picture is intact, and whether it carries a C2PA manifest.

    Exits 1 if any image is not intact or any file is not an image; 2 if no file is an image.

    Examples:

      nanobanana inspect out/a-red-fox-3f2a9c1e-1.png

      nanobanana inspect copied.webp --json | jq -r .provenance.prompt
    """
    from ..engine.inspection import inspect_file

    output = make_output(json_, False)
    with open_history(output) as history:
        reports = [inspect_file(path, history) for path in files]
    for report in reports:
        output.emit(report, _report_lines(report), compact=len(reports) > 1)
    not_images = [report for report in reports if report["format"] is None]
    for report in not_images:
        output.error(f"{shown(report['path'])} is not an image (PNG, JPEG or WebP)", hint="pass an image nanobanana saved")
    if len(not_images) == len(reports):
        raise AlreadyReported(ExitCode.USAGE)
    if not_images or any(report["intact"] is False for report in reports):
        raise AlreadyReported(ExitCode.ERROR)


def _field(made: dict[str, Any], name: str) -> str:
    """A field the file says anything in: escaped whole, so it cannot forge a line (`intact: yes`)."""
    value = made.get(name)
    return "" if value is None or value == "" else shown(value)


def _report_lines(report: dict[str, Any]) -> list[str]:
    from ..engine.image_inputs import IMAGES_FIELD

    made = report["provenance"] or {}
    field = partial(_field, made)
    intact = {True: "yes", False: "NO: the picture changed since it was saved", None: "unknown (no hash recorded)"}
    lines = [shown(report["path"]), f"  format:     {report['format'] or 'not an image'}, {report['bytes']} bytes, sha256 {report['sha256'][:16]}…"]
    if made:
        lines += [
            f"  prompt:     {field('prompt')}",
            *[f"  {label:<11} {text}" for label, text in (("model:", _model_text(made.get("model"))), ("input:", _input_text(made))) if text],
            *_images_in(made.get(IMAGES_FIELD)),
            f"  job:        {field('request_id')}" + (f" on {field('api_host')}" if field("api_host") else ""),
        ]
        when = ", ".join(f"{word} {field(name)}" for word, name in (("submitted", "submitted_at"), ("finished", "finished_at")) if field(name))
        lines += [f"  made:       {when}"] if when else []
        lines.append(f"  by:         {field('tool') + '; ' if field('tool') else ''}provenance {report['provenance_source']}")
    else:
        lines.append("  provenance: none found (not embedded, no sidecar beside it: the image's name plus .json)")
    lines.append(f"  intact:     {intact[report['intact']]}")
    lines.append(f"  c2pa:       {'yes: a Content Credentials manifest (left untouched)' if report['c2pa'] else 'no'}")
    job = report["history"]
    if job:
        cost = f", cost ${job['cost']:.4f}" if job.get("cost") is not None else ""
        lines.append(f"  history:    {shown(job['status'])}, submitted {shown(job['submitted_at'])}{cost}")
    return lines


def _model_text(model: object) -> str:
    """The alias and the id for a model of the family, the id alone otherwise (escaped: it is the file's word)."""
    from ..api.family import member_of

    if not isinstance(model, str) or not model:
        return "" if model is None else shown(model)
    member = member_of(model)
    return f"{member.alias} ({model})" if member is not None else shown(model)


def _input_text(made: dict[str, Any]) -> str:
    """`4× 16:9 png 2K, seed 5, safety_tolerance=5; image 1 of 4`: only what the file says, each escaped."""
    from ..runs.models import FLAG_FIELDS, PROVENANCE_KEYS

    value = partial(_field, made)
    shape = [f"{value('num_images')}×"] if value("num_images") else []
    shape += [text for text in map(value, ("aspect_ratio", "output_format", "resolution")) if text]
    parts = [" ".join(shape)] if shape else []
    if value("seed"):
        parts.append(f"seed {value('seed')}")
    # the request's own fields are named above, or elsewhere (prompt, images); any other one the file
    # records (a --set field such as safety_tolerance) follows as key=value
    skipped = {*FLAG_FIELDS, *PROVENANCE_KEYS}
    parts += [f"{shown(key)}={shown(found)}" for key, found in made.items() if key not in skipped and found is not None]
    where = f"image {value('index')} of {value('count')}" if value("index") and value("count") else ""
    return "; ".join(part for part in (", ".join(parts), where) if part)


def _images_in(records: object) -> list[str]:
    """An edit's input images as the file records them: a URL as given (user:password@ masked), a
    local file as its name, size and sha256; never image data, whatever the file holds."""
    from ..api.urls import redacted
    from ..engine.image_inputs import recorded_inputs

    lines = []
    for number, record in enumerate(recorded_inputs(records), 1):
        if isinstance(record.get("url"), str):
            text = redacted(record["url"])
        elif record.get("file") is not None:
            digest = record.get("sha256")
            details = [
                *([f"{shown(record['bytes'])} bytes"] if record.get("bytes") is not None else []),
                *([f"sha256 {shown(digest[:16])}…"] if isinstance(digest, str) and digest else []),
            ]
            text = shown(record["file"]) + (f" ({', '.join(details)})" if details else "")
        else:
            text = "(not recorded)"
        if text.startswith("data:"):
            text = text.split(",", 1)[0] + ",… (image data, not shown)"
        lines.append(f"  {'images in:' if number == 1 else '':<11} {number}. {text}")
    return lines


def _recorded_job(output: Output, file: Path) -> dict[str, Any] | None:
    """What the history recorded of the job that saved this file (found by its hash), as provenance says it."""
    from ..engine.downloads import file_sha256

    try:
        digest = file_sha256(file)
    except OSError:
        return None
    with open_history(output) as history:
        found = history.find_file(digest)
    if found is None:
        return None
    entry, _ = found
    return {**entry.input, "model": entry.model, "request_id": entry.request_id}


def regen(
    file: Annotated[Path, typer.Argument(help="An image nanobanana saved: its provenance is the starting point.", show_default=False)],
    prompt_append: Annotated[Optional[str], typer.Option("--prompt-append", help="Text added to the end of the prompt.", show_default=False)] = None,
    model: ModelOpt = None,
    aspect: AspectOpt = None,
    resolution: ResolutionOpt = None,
    seed: SeedOpt = None,
    sets: SetOpt = None,
    images: Annotated[Optional[list[str]], typer.Option(
        "-i", "--image", metavar="IMAGE", show_default=False,
        help="Input images to send instead of the recorded ones (an edit's local input that moved or changed).",
    )] = None,
    fit: FitOpt = False,
    image_format: FormatOpt = None,
    num_images: NumImagesOpt = None,
    output_dir: OutputDirOpt = None,
    name: NameOpt = None,
    metadata: MetadataOpt = None,
    timeout: TimeoutOpt = None,
    sandbox: SandboxOpt = False,
    dry_run: DryRunOpt = False,
    curl: CurlOpt = False,
    max_cost: MaxCostOpt = None,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Submit again from an image's provenance; any generate option overrides what the file says.

    Examples:

      nanobanana regen out/a-red-fox-3f2a9c1e-1.png --aspect 1:1 -n 4

      nanobanana regen old.png --prompt-append ", at night" --dry-run

      nanobanana regen edited.png --model nano-banana-pro --resolution 4K
    """
    from ..engine import provenance
    from ..runs.generate import RunChoices, run_generation
    from ..runs.models import parse_sets, regenerated

    output = make_output(json_, quiet).documents_errors(per_line=True)
    template = parse_name(name)
    try:
        made, _ = provenance.read(file)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}", hint="pass an image nanobanana saved") from None
    if not made or not isinstance(made.get("prompt"), str):
        made = _recorded_job(output, file)  # saved without provenance (--metadata none): the history may know it
    if not made or not isinstance(made.get("prompt"), str):
        raise UsageError(
            f"{file} carries no nanobanana provenance and no job in this machine's history saved it",
            hint="pass an image saved with --metadata embed or sidecar",
        )
    settings = command_settings(
        token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir, metadata=metadata,
        aspect_ratio=aspect or made.get("aspect_ratio"), output_format=image_format or made.get("output_format"),
        # one file made again is one image, whatever its job made: -n asks for more
        num_images=num_images or 1,
        model=model or (made["model"] if isinstance(made.get("model"), str) else None),
    )
    generation, request = regenerated(
        made, settings, prompt_append or "", resolution=resolution, seed=seed, sets=parse_sets(sets), images=tuple(images or ()), fit=fit,
    )
    choices = RunChoices(sandbox=sandbox, dry_run=dry_run, curl=curl, max_cost=max_cost, name=template, model=request)
    run_generation(output, settings, generation, choices)


