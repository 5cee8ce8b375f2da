"""`nanobanana generate`: submit, wait with progress, download, print the paths.

One prompt and at most four images is one job. A prompt matrix (`a {red,blue} fox`, `--var`) or
`-n` above 4 is a run of several jobs: it goes through the batch engine (a manifest in the output
directory, `-j` at once, resumable, never billed twice) and is printed as one result, in order.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import NanobananaError, UsageError
from ..render.output import Output
from .options import (
    AspectOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    CurlOpt,
    DryRunOpt,
    FormatOpt,
    GenerateNameOpt,
    HookTokenOpt,
    JsonOpt,
    ManyImagesOpt,
    MaxCostOpt,
    MetadataOpt,
    NotifyOpt,
    OnDoneOpt,
    OpenOpt,
    OutputDirOpt,
    PreviewOpt,
    QuietOpt,
    RetriesOpt,
    SandboxOpt,
    TemplateOpt,
    TimeoutOpt,
    TokenOpt,
    base_url_flag,
    command_settings,
    download_plan,
    make_output,
    open_history,
    open_in_viewer,
    parse_name,
    show_dry_run,
    within_budget,
)

if TYPE_CHECKING:
    from ..api.models import GenerationInput
    from ..engine.batch import LineOutcome
    from ..engine.hooks import Hook
    from ..engine.lifecycle import JobOutcome
    from ..engine.matrix import PlannedJob
    from ..engine.naming import NameTemplate
    from ..stores.settings import Settings


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
    aspect: AspectOpt = None,
    image_format: FormatOpt = None,
    num_images: ManyImagesOpt = None,
    output_dir: OutputDirOpt = None,
    name: GenerateNameOpt = None,
    metadata: MetadataOpt = None,
    variables: Annotated[Optional[list[str]], typer.Option(
        "--var", metavar="NAME=A,B", show_default=False,
        help="Values for {NAME} in the prompt, one job each (repeat for more variables: every combination is made).",
    )] = None,
    no_expand: Annotated[bool, typer.Option(
        "--no-expand", help="Send the prompt as written: braces are not a matrix.",
    )] = False,
    yes: Annotated[bool, typer.Option(
        "-y", "--yes", help="Submit a run of more than matrix_confirm_above jobs (config, 8) without asking.",
    )] = False,
    concurrency: ConcurrencyOpt = 4,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Submit, print the request id, and stop.")] = False,
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

    Progress goes to stderr; the saved paths go to stdout, one per line.

    A prompt matrix is one job per combination: "a {red,blue} car in {fog,snow}" is four, and
    --var style=ink,oil fills {style}; write {{ and }} for literal braces. -n above 4 makes
    several jobs of at most 4. Such a run is shown first, asks before more than
    matrix_confirm_above jobs (or needs --yes without a terminal), records every submit in the
    output directory's batch manifest and, run again, submits only what is not done yet.

    Examples:

      nanobanana generate "a glass greenhouse at dusk" --aspect 9:16 -n 4

      echo "a red fox" | nanobanana generate -f jpg -o out/ --json

      nanobanana generate "a {red,blue} fox, {style}" --var style=ink,oil

      nanobanana generate "a red fox" -n 10 --preview --on-done 'upload.sh {path}'

      ID=$(nanobanana generate "a red fox" --no-wait -q)

      nanobanana generate "a red fox" --dry-run --curl
    """
    from ..engine.matrix import parse_vars, plan_jobs

    output = make_output(json_, quiet, template)
    _check_combinations(sandbox, no_wait, dry_run, curl)
    settings = command_settings(
        token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir,
        aspect_ratio=aspect, output_format=image_format, num_images=num_images, metadata=metadata,
        preview=preview, on_done=on_done, hook_token=hook_env_token, notify=notify,
    )
    planned = plan_jobs(
        read_prompt(prompt), parse_vars(variables or []), settings["num_images"], settings.generation_defaults(),
        literal=no_expand,
    )
    names = parse_name(name, planned[0].values)  # checked for every run, whatever its size
    choices = RunChoices(sandbox, not no_wait, not (no_wait or no_download), dry_run, curl, open_, max_cost, names)
    if len(planned) == 1 and not planned[0].values:
        run_generation(output, settings, planned[0].generation, choices)
    else:
        _run_many(output, settings, planned, ManyChoices(choices, concurrency, yes))


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
    name: NameTemplate | None = None


def run_generation(output: Output, settings: Settings, generation: GenerationInput, choices: RunChoices) -> None:
    """Show the request, or submit it (within --max-cost), wait, save and print the outcome."""
    if choices.dry_run:
        show_dry_run(output, settings, [(None, generation)], choices.curl)
        return
    followups = Followups.of(output, settings)
    outcome = _submit(output, settings, generation, choices)
    if outcome is None:
        return
    output.job(outcome)
    followups.saved(outcome)
    followups.show([item.path for item in outcome.saved or []])
    followups.finished(_summary(outcome))
    if outcome.error is not None:
        raise outcome.error
    if choices.open_ and outcome.saved:
        open_in_viewer(output, [item.path for item in outcome.saved])


def _summary(outcome: JobOutcome) -> str:
    """The notification's text: what happened, and to which prompt (people run several at once)."""
    prompt = outcome.input.prompt[:80] if outcome.input else ""
    if outcome.error is not None:
        return f"job {outcome.status}: {prompt}"
    return f"{len(outcome.saved or outcome.output_urls)} image(s) ready: {prompt}"


def _submit(output: Output, settings: Settings, generation: GenerationInput, choices: RunChoices) -> JobOutcome | None:
    """Submit the job and, unless told not to wait, its outcome (a failure carried in it)."""
    from ..engine.connect import open_client
    from ..engine.lifecycle import Jobs, resume_command

    # The job's intent (directory, names) is recorded even when this command will not save: a later
    # `watch` or `result --download` follows it.
    plan = download_plan(settings, choices.name)
    downloads = plan if choices.download else None
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
        submission = jobs.submit(generation, plan.intent(plan.namer(generation)))
        if not choices.wait:
            follow = resume_command([submission.request_id], plan.directory, base_url=base_url_flag(settings))
            output.submitted(jobs.describe(submission.request_id, "in_queue", generation), submission, follow)
            return None
        # From the submit on, Ctrl-C anywhere names the job and how to resume it.
        with jobs.resumable([submission.request_id]):
            output.note(f"submitted {submission.request_id} ({generation.num_images}× {generation.aspect_ratio} {generation.output_format})")
            return jobs.outcome_of(submission.request_id, generation, just_submitted=True)


# -- a run of several jobs: a prompt matrix, or more than four images ---------------------------------


@dataclass(frozen=True)
class ManyChoices:
    """A run of several jobs: the flags every generate has, and those only such a run uses."""

    single: RunChoices
    concurrency: int = 4
    yes: bool = False


def _run_many(
    output: Output, settings: Settings, planned: list[PlannedJob], choices: ManyChoices
) -> None:
    """Show the run, ask if it is large, then run its jobs as batch lines and print them as one result."""
    from ..engine.batch import planned_lines
    from .batch import BatchRerun, LineRun, finish_lines, run_lines, summary_of

    lines = planned_lines(planned, choices.single.name, datetime.now())
    _check_many(choices.single, len(lines))
    _show_run(output, planned)
    if choices.single.dry_run:
        show_dry_run(output, settings, [(line.number, line.generation) for line in lines], choices.single.curl)
        return
    _confirm(output, len(lines), settings["matrix_confirm_above"], choices.yes)
    plan = download_plan(settings, choices.single.name)
    followups = Followups.of(output, settings)
    printer = InOrder(output, followups, planned)
    run = LineRun(choices.concurrency, choices.single.sandbox, max_cost=choices.single.max_cost,
                  rerun_hint="run the same command again to resume without paying twice")
    outcomes = run_lines(output, settings, plan, lines, run, printer.add)
    followups.show(printer.fresh)
    skipped = sum(item.skipped for item in outcomes)
    if skipped:
        output.note(f"{skipped} job(s) were done by an earlier run into {plan.directory} and were not submitted again "
                    "(for new images, use another --output-dir)")
    output.info(f"saved {len(printer.paths)} image(s) from {len(outcomes)} job(s) in {followups.elapsed:.1f}s")
    followups.finished(f"generate: {summary_of(outcomes, 'job')}")
    if choices.single.open_ and printer.paths:
        open_in_viewer(output, printer.paths)
    retry = "to retry the failed jobs, run the same command again: the finished ones are not submitted again"
    finish_lines(output, outcomes, "generate", "job", BatchRerun(retry))


def _show_run(output: Output, planned: list[PlannedJob]) -> None:
    """The run before it starts: `2 prompt(s) × 3 job(s) of 4 + 4 + 2 images = 6 jobs, 20 images`, and each prompt."""
    prompts = [job.generation.prompt for job in planned if job.first == 1]
    per_prompt = planned[: len(planned) // len(prompts)]
    split = " + ".join(str(job.generation.num_images) for job in per_prompt)
    images = sum(job.generation.num_images for job in planned)
    output.run_plan(
        f"generate: {len(prompts)} prompt(s) × {len(per_prompt)} job(s) of {split} image(s) = "
        f"{len(planned)} job(s), {images} image(s)",
        prompts,
    )


def _check_many(choices: RunChoices, jobs: int) -> None:
    for refused, flag in ((not choices.wait, "--no-wait"), (choices.wait and not choices.download, "--no-download")):
        if refused:
            raise UsageError(
                f"{flag} works on one job; this run is {jobs} jobs (a prompt matrix, or more than 4 images)",
                hint=f"drop {flag}, or use --no-expand and -n 4 or fewer",
            )


def _confirm(output: Output, jobs: int, threshold: int, yes: bool) -> None:
    """Past the threshold, a person confirms on the terminal; a script says --yes."""
    if yes or jobs <= threshold:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"this run submits {jobs} jobs, more than matrix_confirm_above ({threshold}); nothing was submitted",
            hint="pass --yes to submit them, or raise the threshold: nanobanana config set matrix_confirm_above N",
        )
    if not output.confirm(f"Submit {jobs} jobs?"):
        raise NanobananaError("not confirmed; nothing was submitted", hint="pass --yes to skip the question")


class InOrder:
    """A run's jobs printed in plan order, as one result: each as soon as every job before it is done."""

    def __init__(self, output: Output, followups: Followups, planned: list[PlannedJob]) -> None:
        self.output = output
        self.followups = followups
        self.planned = planned
        self.waiting: dict[int, LineOutcome] = {}
        self.next = 1
        self.paths: list[str] = []
        self.fresh: list[str] = []  # saved by this run, not an earlier one: these get previews

    def add(self, item: LineOutcome) -> None:
        self.waiting[item.line.number] = item
        while self.next in self.waiting:
            done = self.waiting.pop(self.next)
            job = self.planned[self.next - 1]
            self.next += 1
            saved = [file.path for file in done.outcome.saved or []]
            self.output.emit(done.to_dict(), saved, compact=True)
            self.paths += saved
            if not done.skipped:
                self.fresh += saved
                self.followups.saved(done.outcome, job.first, job.total)


# -- after the images: previews, --on-done, --notify ------------------------------------------------


@dataclass
class Followups:
    """What follows saved images: the --on-done command for each, a preview of each once the
    progress display has gone, and a notification when the wait was long enough to look away."""

    output: Output
    preview: bool
    hook: Hook | None
    notify_after: float | None  # None: --notify is off
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def of(cls, output: Output, settings: Settings) -> Followups:
        """From the settings; a bad --on-done template is refused here, before anything is paid for."""
        template = settings["on_done"]
        notify_after = settings["notify_after"] if settings["notify"] else None
        hook = None
        if template:
            from ..engine.hooks import Hook

            hook = Hook(template, pass_token=bool(settings["hook_token"]))
        return cls(output, bool(settings["preview"]), hook, notify_after)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def saved(self, outcome: JobOutcome, first: int = 1, total: int | None = None) -> None:
        """Run the hook for each file of a finished job, numbered from `first` of `total` (a run's numbering)."""
        if self.hook is None or not outcome.saved:
            return
        made = outcome.input.to_payload() if outcome.input else {}
        for offset, item in enumerate(outcome.saved):
            values = {
                "path": item.path, "id": outcome.request_id, "i": first + offset, "n": total or len(outcome.saved),
                "prompt": made.get("prompt", ""), "aspect": made.get("aspect_ratio", ""), "format": made.get("output_format", ""),
            }
            result = self.hook.run(values)
            if result.problem is not None:
                self.output.warn(f"--on-done {result.argv[0]}: {result.problem} (for {item.path})")

    def show(self, paths: list[str]) -> None:
        if self.preview:
            for path in paths:
                self.output.preview(path)

    def finished(self, summary: str) -> None:
        """Ring and notify, if asked to and the wait was longer than notify_after."""
        from ..engine.hooks import notify_desktop

        if self.notify_after is None or self.elapsed < self.notify_after:
            return
        self.output.bell()
        notify_desktop("nanobanana", summary)
