"""`nanobanana batch`: many prompts at once, resumable, never paying twice; and `--shard K/N`."""

import shlex
import sys
from pathlib import Path
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
    FitOpt,
    FormatOpt,
    HookTokenOpt,
    JsonOpt,
    ManyImagesOpt,
    MaxCostOpt,
    MetadataOpt,
    ModelOpt,
    NameOpt,
    NotifyOpt,
    OnDoneOpt,
    OutputDirOpt,
    PreviewOpt,
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

if TYPE_CHECKING:
    from ..engine.batch import LineOutcome
    from ..engine.batch_file import BatchLine, LineOptions, LineProblem
    from ..engine.catalog import Catalog
    from ..engine.sharding import Shard
    from ..runs.lines import LineFlags
    from ..stores.settings import Settings


def batch_run(
    source: Annotated[str, typer.Argument(metavar="FILE", help="Prompts file (text or JSON Lines), or '-' for stdin.", show_default=False)],
    model: ModelOpt = None,
    aspect: AspectOpt = None,
    resolution: ResolutionOpt = None,
    seed: SeedOpt = None,
    sets: SetOpt = None,
    fit: FitOpt = False,
    image_format: FormatOpt = None,
    num_images: ManyImagesOpt = None,
    no_expand: Annotated[bool, typer.Option(
        "--no-expand", help="Send each prompt as written: braces are not a matrix.",
    )] = False,
    output_dir: OutputDirOpt = None,
    name: NameOpt = None,
    metadata: MetadataOpt = None,
    concurrency: ConcurrencyOpt = 4,
    shard: Annotated[Optional[str], typer.Option(
        "--shard", metavar="K/N", show_default=False,
        help="Run only shard K of N: the lines whose key hashes to it, recorded in a manifest of its own. "
        "N machines running shards 1/N to N/N cover every line exactly once; `nanobanana merge` combines them.",
    )] = None,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Submit the valid lines even if some are invalid (each skipped one is a warning).",
    )] = False,
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

    A line that starts with "{" is a JSON object. FILE is JSON Lines when its name ends in
    .jsonl (or .ndjson) or its first line starts with "{": every line must then be an object,
    and any other JSON value ([…], "…", 42, null) is an error. In other files, any other line
    is one prompt as written, even one starting with [ or ". Blank lines and # comments are
    skipped. A JSON line has "prompt" and optionally "name" (its files'
    {slug}, checked like --name), "num_images" (above 4: several jobs, as generate -n),
    "aspect" or "aspect_ratio", "format" or "output_format", "model" (alias or model id),
    "images" (local files, relative to FILE's directory, or https URLs: the model's edit
    endpoint), "resolution", "seed", and any other field of the model's schema (as --set).
    The options are the defaults of every line; a line's own fields win. {a,b} in a prompt
    makes one job per value, as in generate ({{ and }} for literal braces, or --no-expand).
    Every line is checked, against the schema of its model, before anything is submitted.

    A manifest in the output directory records each submit before it is sent and its request id
    as soon as it is answered: running the same command again skips finished lines, re-attaches
    to running jobs and submits only the rest (the estimate counts only those). A line whose
    submit may have been billed without an answer (lost connection, 5xx, a crash) is reported
    as uncertain and never sent again unless --resubmit-uncertain is given. Exit 0 if every line
    succeeded, 5 if any failed or was cancelled, 7 if any is uncertain or the API was unavailable.

    Examples:

      nanobanana batch prompts.txt -j 8 -o out/

      nanobanana batch prompts.jsonl --json | jq -r '.outputs[].path'

      nanobanana batch edits.jsonl --model nano-banana-2 --resolution 2K

      nanobanana batch prompts.txt --shard 2/4 -o out/

      nanobanana batch prompts.txt --dry-run
    """
    from datetime import datetime

    from ..api.family import resolve
    from ..engine.batch_file import LineOptions, is_json_name
    from ..engine.sharding import parse_shard
    from ..runs.lines import LineFlags
    from ..runs.models import parse_sets

    output = make_output(json_, quiet)
    template = parse_name(name)
    part = None if shard is None else parse_shard(shard)
    if curl and not dry_run:
        raise UsageError("--curl goes with --dry-run", hint=f"nanobanana batch {source} --dry-run --curl")
    settings = command_settings(
        token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir, model=model,
        aspect_ratio=aspect, output_format=image_format, num_images=num_images, metadata=metadata,
        preview=preview, on_done=on_done, hook_token=hook_env_token, notify=notify,
    )
    if "," in (settings["model"] or ""):
        raise UsageError(
            f"batch takes one --model, not a list ({settings['model']!r})",
            hint='give lines their own "model" to use several, or compare models with `nanobanana generate --model a,b`',
        )
    resolve(settings["model"])  # one error for a bad --model (or config), not one per line that names none
    flags = LineFlags(resolution, seed, parse_sets(sets), fit)
    options = LineOptions(
        model=settings["model"], directory=None if source == "-" else Path(source).parent,
        json_lines=True if is_json_name(source) else None, expand=not no_expand, template=template, started=datetime.now(),
        notice=output.note,
    )
    lines, problems = _lines(output, source, settings, options, flags, skip_invalid, part)
    skipped = problems if skip_invalid else None  # None: a line found invalid later is refused, not skipped
    if dry_run:
        _dry_run(output, source, settings, lines, flags, skipped, curl)
        return
    if not lines:
        return
    plan = download_plan(settings, template)
    rerun = f"nanobanana batch {shlex.quote(source)} -o {shlex.quote(str(plan.directory))}" + _line_flags(
        model=model, aspect=aspect, format=image_format.value if image_format else None, num_images=num_images,
        resolution=resolution, seed=seed, name=name, sets=tuple(sets or ()), expand=not no_expand, fit=fit,
    )
    rerun += f" --shard {part}" if part else ""
    followups = Followups.of(output, settings)
    run = LineRun(concurrency, sandbox, resubmit_uncertain, max_cost, part.manifest_name if part else None,
                  rerun_hint=f"run the same batch command again to resume without paying twice: {rerun}")

    def vet(catalog: "Catalog") -> list["BatchLine"]:
        return _vetted(output, source, settings, catalog, lines, flags, skipped)

    outcomes = run_lines(output, settings, plan, lines, run, lambda item: _emit(output, followups, item), vet)
    _conclude(output, followups, outcomes, plan.directory if gallery else None, source, rerun)


def _line_flags(*, sets: tuple[str, ...], expand: bool, fit: bool, **given: object) -> str:
    """The flags that change what each line asks for (and so its key), how its images are read (--fit: without
    it a rerun refuses the images this one shrank) and named, as given: a resume must repeat them."""
    spelled = {"model": "--model", "aspect": "-a", "format": "-f", "num_images": "-n", "resolution": "--resolution", "seed": "--seed",
               "name": "--name"}
    words = [f"{spelled[name]} {shlex.quote(str(value))}" for name, value in given.items() if value is not None]
    words += [f"--set {shlex.quote(pair)}" for pair in sets] + ([] if expand else ["--no-expand"]) + (["--fit"] if fit else [])
    return "".join(f" {word}" for word in words)


def _dry_run(
    output: Output, source: str, settings: "Settings", lines: list["BatchLine"], flags: "LineFlags",
    skipped: list["LineProblem"] | None, curl: bool,
) -> None:
    """The requests as they would be sent, each line checked against its model's schema (no account
    needed: the cache or the bundled snapshot answer without a token), and what they would cost."""
    from ..runs.context import offline_estimate
    from ..runs.models import images_by_model, schemas

    with schemas(output, settings) as catalog:
        lines = _vetted(output, source, settings, catalog, lines, flags, skipped)
    show_dry_run(output, settings, [(line.number, line.generation) for line in lines], curl)
    for model, images in images_by_model([line.generation for line in lines]).items():
        output.note(offline_estimate(settings, model, images))


def _conclude(
    output: Output, followups: Followups, outcomes: list["LineOutcome"], gallery: Path | None, source: str, rerun: str
) -> None:
    """After the run: previews and hooks, the gallery when asked for, the summary and the exit code."""
    followups.show([saved.path for item in outcomes if not item.skipped for saved in item.outcome.saved or []])
    if gallery is not None:
        from ..runs.gallery import write_gallery

        output.note(f"gallery: {write_gallery(gallery, output.warn)}")
    unit = "line" if len({item.line.number for item in outcomes}) == len(outcomes) else "job"  # a line may be several jobs
    followups.finished(f"batch {source}: {summary_of(outcomes, unit)}")
    again = BatchRerun(f"to retry the failed lines: {rerun}", f"{rerun} --resubmit-uncertain")
    finish_lines(output, outcomes, "batch", unit, again)


def _lines(
    output: Output, source: str, settings: "Settings", options: "LineOptions", flags: "LineFlags", skip_invalid: bool,
    shard: "Shard | None",
) -> tuple[list["BatchLine"], list["LineProblem"]]:
    """The file's jobs whose lines are well-formed, only the shard's when there is one, and the
    problems of the others (with --skip-invalid; without, they are reported and refused here).

    Refused, the listing is complete: the lines are also checked against the schemas the cache or
    the bundled snapshot has, without asking the API (a run checks them again against the schema in
    effect, before anything is sent)."""
    from ..engine.batch_file import parse_batch
    from ..runs.lines import vet_lines
    from ..runs.models import offline_catalog

    lines, problems = parse_batch(_read_source(source), settings.generation_defaults(), options)
    if problems and not skip_invalid:
        late = vet_lines(offline_catalog(settings), settings, lines, flags)[1]
        _refuse(output, source, [*problems, *late])
    if not lines:
        _skip(output, source, problems)
        raise UsageError(f"no prompts in {source}", hint="write one prompt per line")
    if shard is None:
        return lines, problems
    mine = [line for line in lines if shard.holds(line.key)]
    output.note(f"shard {shard}: {len(mine)} of {len(lines)} line(s)" + ("; nothing to do" if not mine else ""))
    return mine, problems


def _vetted(
    output: Output, source: str, settings: "Settings", catalog: "Catalog", lines: list["BatchLine"], flags: "LineFlags",
    skipped: "list[LineProblem] | None",
) -> list["BatchLine"]:
    """The jobs checked against the schema in effect for each line's model. `skipped` (with
    --skip-invalid; None without) are the file's own problems: reported with these, in line order."""
    from ..runs.lines import vet_lines

    kept, problems = vet_lines(catalog, settings, lines, flags)
    if problems and skipped is None:
        _refuse(output, source, problems)
    _skip(output, source, [*(skipped or []), *problems])
    if lines and not kept:
        raise UsageError(f"no valid lines in {source}; nothing was submitted", hint="fix them")
    return kept


def _refuse(output: Output, source: str, problems: list["LineProblem"]) -> None:
    for problem in sorted(problems, key=lambda problem: problem.number):
        output.error(f"{source}:{problem.number}: {problem.message}")
    raise UsageError(
        f"{len(problems)} invalid line(s) in {source}; nothing was submitted",
        hint="fix them, or pass --skip-invalid to submit the rest",
    )


def _skip(output: Output, source: str, problems: list["LineProblem"]) -> None:
    """--skip-invalid: each skipped line a warning (and, with --json, a document of its own), then the count."""
    problems = sorted(problems, key=lambda problem: problem.number)
    for problem in problems:
        output.warn(f"{source}:{problem.number}: {problem.message}; skipped")
        _emit_invalid(output, problem)
    if problems:
        output.warn(f"skipped {len(problems)} invalid line(s) of {source}: {', '.join(str(p.number) for p in problems)}")


def _emit_invalid(output: Output, problem: "LineProblem") -> None:
    from ..engine.outcome import JobOutcome

    outcome = JobOutcome("", "invalid", error=UsageError(problem.message))
    output.emit({**outcome.to_dict(), "line": problem.number, "name": None, "skipped": True}, [], compact=True)


def _emit(output: Output, followups: Followups, item: "LineOutcome") -> None:
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


