"""A generation: one job (submit, wait, save, print), or a run of several jobs (a prompt matrix, or
more than four images) through the batch engine, printed as one result in order. `generate` and
`regen` call it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import InvalidInputError, NanobananaError, UsageError
from ..states import JobState
from .context import base_url_flag, download_plan, offline_estimate, open_session, show_dry_run, within_budget
from .followups import Followups
from .lines import BatchRerun, LineRun, finish_lines, run_lines, summary_of
from .models import ModelRequest, catalog_of, schemas
from .models import refused as api_refused

if TYPE_CHECKING:
    from ..api.models import GenerationInput
    from ..engine.batch import LineOutcome
    from ..engine.matrix import PlannedJob
    from ..engine.naming import NameTemplate
    from ..engine.outcome import JobOutcome
    from ..render.output import Output
    from ..stores.settings import Settings


@dataclass(frozen=True)
class RunChoices:
    """What `generate` (and `regen`) do with a validated input, from their flags."""

    sandbox: bool = False
    wait: bool = True
    download: bool = True
    dry_run: bool = False
    curl: bool = False
    max_cost: float | None = None
    name: NameTemplate | None = None
    # what to do with the saved images once the run succeeded (the command's --open); use cases import no Typer
    open_paths: Callable[[list[str]], None] | None = None
    model: ModelRequest = ModelRequest()  # --model, --resolution, --seed, --set, -i


def run_generation(output: Output, settings: Settings, generation: GenerationInput, choices: RunChoices) -> None:
    """Show the request, or submit it (within --max-cost), wait, save and print the outcome."""
    if choices.dry_run:
        dry_run(output, settings, [generation], choices)
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
    if choices.open_paths is not None and outcome.saved:
        choices.open_paths([item.path for item in outcome.saved])


def dry_run(output: Output, settings: Settings, generations: list[GenerationInput], choices: RunChoices,
            numbers: list[int | None] | None = None) -> None:
    """The requests as they would be sent, checked against the schema in effect (no account needed)."""
    if choices.model.needs_schema:
        with schemas(output, settings) as catalog:
            generations = choices.model.prepare(catalog, settings, generations)
    show_dry_run(output, settings, list(zip(numbers or [None] * len(generations), generations)), choices.curl)
    output.note(offline_estimate(settings, generations[0].model, sum(item.num_images for item in generations)))


def _summary(outcome: JobOutcome) -> str:
    """The notification's text: what happened, and to which prompt (people run several at once)."""
    prompt = outcome.input.prompt[:80] if outcome.input else ""
    if outcome.error is not None:
        return f"job {outcome.status}: {prompt}"
    return f"{len(outcome.saved or outcome.output_urls)} image(s) ready: {prompt}"


def _submit(output: Output, settings: Settings, generation: GenerationInput, choices: RunChoices) -> JobOutcome | None:
    """Submit the job and, unless told not to wait, its outcome (a failure carried in it)."""
    from ..engine.lifecycle import Jobs, resume_command

    # The job's intent (directory, names) is recorded even when this command will not save: a later
    # `watch` or `result --download` follows it.
    plan = download_plan(settings, choices.name)
    downloads = plan if choices.download else None
    with open_session(output, settings, sandbox=choices.sandbox) as session, output.progress() as progress:
        catalog = None
        entry = None
        if choices.model.needs_schema:
            catalog = catalog_of(session.client)
            entry = catalog.entry(choices.model.model_id)
            (generation,) = choices.model.prepare(catalog, settings, [generation])
        within_budget(output, session.client, generation.num_images, choices.max_cost, entry=entry)
        jobs = Jobs(
            session.client, session.history, reporter=progress, downloads=downloads, timeout=settings["timeout"],
            resume_base_url=base_url_flag(settings),
        )
        try:
            submission = jobs.submit(generation, plan.intent(plan.namer(generation)))
        except InvalidInputError as exc:
            raise api_refused(catalog, generation, exc) from None
        if not choices.wait:
            follow = resume_command([submission.request_id], plan.directory, base_url=base_url_flag(settings))
            output.submitted(jobs.describe(submission.request_id, JobState.IN_QUEUE, generation), submission, follow)
            return None
        # From the submit on, Ctrl-C anywhere names the job and how to resume it.
        with jobs.resumable([submission.request_id]):
            output.note(f"submitted {submission.request_id} ({_described(generation)})")
            return jobs.outcome_of(submission.request_id, generation, just_submitted=True)


def _described(generation: GenerationInput) -> str:
    """`2× 16:9 png`, and for another model its alias or id and its inputs."""
    from ..api.family import member_of

    parts = [f"{generation.num_images}×"]
    parts += [str(value) for value in (generation.aspect_ratio, generation.option("resolution"), generation.output_format) if value]
    if not generation.classic:
        member = member_of(generation.model)
        parts.append(f"on {member.alias if member else generation.model}")
    if generation.images:
        parts.append(f"from {len(generation.images)} image(s)")
    return " ".join(parts)


@dataclass(frozen=True)
class ManyChoices:
    """A run of several jobs: the flags every generate has, and those only such a run uses."""

    single: RunChoices
    concurrency: int = 4
    yes: bool = False
    command: str = "the same command"  # the command line that runs it again (hints name it)


def run_many(
    output: Output, settings: Settings, planned: list[PlannedJob], choices: ManyChoices
) -> None:
    """Show the run, ask if it is large, then run its jobs as batch lines and print them as one result."""
    from ..engine.batch_file import planned_lines
    from .models import mark_refusals, prepared_run

    _check_many(choices.single, len(planned))
    # every job checked against its model's schema (all before the first submit), priced model by model
    planned, cost = prepared_run(output, settings, choices.single.model, planned, sandbox=choices.single.sandbox)
    lines = planned_lines(planned, choices.single.name, datetime.now())
    _show_run(output, planned)
    estimate = cost.text() if cost is not None else offline_estimate(
        settings, lines[0].generation.model, sum(line.generation.num_images for line in lines))
    if choices.single.dry_run:
        show_dry_run(output, settings, [(line.number, line.generation) for line in lines], choices.single.curl)
        output.note(estimate)
        return
    if cost is not None and choices.single.max_cost is not None:
        cost.check(choices.single.max_cost)
    _confirm(output, len(lines), settings["matrix_confirm_above"], choices.yes, estimate)
    if cost is not None:
        within = f", within --max-cost ${choices.single.max_cost:.4f}" if choices.single.max_cost is not None else ""
        output.note(estimate + within)
    plan = download_plan(settings, choices.single.name)
    followups = Followups.of(output, settings)
    printer = InOrder(output, followups, planned)
    run = LineRun(choices.concurrency, choices.single.sandbox, max_cost=choices.single.max_cost,
                  rerun_hint=f"run the same command again to resume without paying twice: {choices.command}",
                  priced=cost is not None)
    outcomes = run_lines(output, settings, plan, lines, run, printer.add)
    mark_refusals(output, settings, [(item.line.generation, item.outcome.error) for item in outcomes])
    followups.show(printer.fresh)
    skipped = sum(item.skipped for item in outcomes)
    if skipped:
        output.note(f"{skipped} job(s) were done by an earlier run into {plan.directory} and were not submitted again "
                    "(for new images, use another --output-dir)")
    output.info(f"saved {len(printer.paths)} image(s) from {len(outcomes)} job(s) in {followups.elapsed:.1f}s")
    followups.finished(f"generate: {summary_of(outcomes, 'job')}")
    if choices.single.open_paths is not None and printer.paths:
        choices.single.open_paths(printer.paths)
    retry = f"to retry the failed jobs, run the same command again (the finished ones are not submitted again): {choices.command}"
    finish_lines(output, outcomes, "generate", "job", BatchRerun(retry))


def _show_run(output: Output, planned: list[PlannedJob]) -> None:
    """The run before it starts: `2 prompt(s) × 3 job(s) of 4 + 4 + 2 images = 6 jobs, 20 images`, and each prompt
    (with `× 2 model(s) (nano-banana, nano-banana-2)` when it compares models)."""
    starts = [job for job in planned if job.first == 1]
    models = list(dict.fromkeys(job.values["model"] for job in starts if "model" in job.values))
    prompts = [job.generation.prompt for job in starts[:: max(1, len(models))]]
    per_prompt = planned[: len(planned) // len(starts)]
    split = " + ".join(str(job.generation.num_images) for job in per_prompt)
    images = sum(job.generation.num_images for job in planned)
    on = f" × {len(models)} model(s) ({', '.join(models)})" if models else ""
    output.run_plan(
        f"generate: {len(prompts)} prompt(s){on} × {len(per_prompt)} job(s) of {split} image(s) = "
        f"{len(planned)} job(s), {images} image(s)",
        prompts,
    )


def _check_many(choices: RunChoices, jobs: int) -> None:
    for refused, flag in ((not choices.wait, "--no-wait"), (choices.wait and not choices.download, "--no-download")):
        if refused:
            raise UsageError(
                f"{flag} works on one job; this run is {jobs} jobs (a prompt matrix, several models, or more than 4 images)",
                hint=f"drop {flag}, or use --no-expand and -n 4 or fewer",
            )


def _confirm(output: Output, jobs: int, threshold: int, yes: bool, estimate: str) -> None:
    """Past the threshold, a person confirms on the terminal; a script says --yes."""
    if yes or jobs <= threshold:
        return
    if not sys.stdin.isatty():
        raise UsageError(
            f"this run submits {jobs} jobs, more than matrix_confirm_above ({threshold}); nothing was submitted",
            hint="pass --yes to submit them, or raise the threshold: nanobanana config set matrix_confirm_above N",
        )
    if not output.confirm(f"Submit {jobs} jobs ({estimate})?"):
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


