"""A generation: one job (submit, wait, save, print), or a run of several jobs (a prompt matrix, or
more than four images) through the batch engine, printed as one result in order. `generate` and
`regen` call it.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import InterruptedWaitError, InvalidInputError, NanobananaError, NotFoundError, UsageError
from ..states import JobState
from .context import base_url_flag, download_plan, offline_estimate, open_session, show_dry_run, within_budget
from .followups import Followups
from .models import ModelRequest, catalog_of, schemas
from .models import refused as api_refused

if TYPE_CHECKING:
    from ..api.models import GenerationInput
    from ..engine.batch import LineAction, LineOutcome
    from ..engine.batch_file import BatchLine
    from ..engine.lifecycle import Jobs
    from ..engine.matrix import PlannedJob
    from ..engine.naming import NameTemplate
    from ..engine.outcome import JobOutcome
    from ..render.output import Output
    from ..stores.history import History
    from ..stores.settings import Settings


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class RunChoices(NamedTuple):
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
    output.job(outcome, compact=True, extra=run_fields(1, skipped=False))
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


def run_fields(line: int, *, skipped: bool) -> dict[str, Any]:
    """What every job document of a generate adds, whatever -n: one compact document per job, one per
    line (JSON Lines), each with its number in the run and whether an earlier run had done it."""
    return {"line": line, "skipped": skipped}


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
        jobs = Jobs(
            session.client, session.history, reporter=progress, downloads=downloads, timeout=settings["timeout"],
            resume_base_url=base_url_flag(settings),
        )
        earlier = _interrupted_job(session.history, session.client.base_url, generation, plan.directory) if choices.wait else None
        if earlier is not None:
            output.note(
                f"resuming job {earlier}: the same request into {plan.directory} was interrupted before its images were "
                f"saved; waiting on it instead of paying again (for a new job instead: another -o, or cancel it first "
                f"while it is queued: nanobanana cancel {earlier})"
            )
            with jobs.resumable([earlier]):
                resumed = _waited(jobs, session.history, earlier, generation, just_submitted=False)
            if not isinstance(resumed.error, NotFoundError):
                return resumed
            # the API no longer knows it (expired): nothing to wait for, and it is not offered again
            session.history.update(earlier, event=(FORGOTTEN, {"reason": str(resumed.error)}))
            output.note(f"job {earlier} is unknown to the API now (expired?); submitting a new one")
        within_budget(output, session.client, generation.num_images, choices.max_cost, entry=entry)
        try:
            submission = jobs.submit(generation, plan.intent(plan.namer(generation)))
        except InvalidInputError as exc:
            raise api_refused(catalog, generation, exc) from None
        if not choices.wait:
            follow = resume_command([submission.request_id], plan.directory, base_url=base_url_flag(settings))
            output.submitted(jobs.describe(submission.request_id, JobState.IN_QUEUE, generation), submission, follow,
                             compact=True, extra=run_fields(1, skipped=False))
            return None
        # From the submit on, Ctrl-C anywhere names the job and how to resume it.
        with jobs.resumable([submission.request_id]):
            output.note(f"submitted {submission.request_id} ({_described(generation)})")
            return _waited(jobs, session.history, submission.request_id, generation, just_submitted=True)


# A waited job whose command ended before saving its images (Ctrl-C, SIGTERM, --timeout) gets this
# event in the history: the same command run again waits on it instead of paying for another.
DETACHED = "detached"
FORGOTTEN = "unknown_to_api"  # after DETACHED: the API did not know the job when it was resumed


def _waited(jobs: Jobs, history: History, request_id: str, generation: GenerationInput, *, just_submitted: bool) -> JobOutcome:
    """The job's outcome; if this command stops waiting before its images are saved, the history says so."""
    try:
        outcome = jobs.outcome_of(request_id, generation, just_submitted=just_submitted)
    except InterruptedWaitError:
        history.update(request_id, event=(DETACHED, {"reason": "interrupted"}))
        raise
    if outcome.status == "timeout":
        history.update(request_id, event=(DETACHED, {"reason": "timeout"}))
    return outcome


def _last_word(events: list[Any]) -> str | None:
    """The last of a job's own events this module writes (a resumed wait adds `running` ones after them)."""
    ours = [event.get("event") for event in events if isinstance(event, dict) and event.get("event") in (DETACHED, FORGOTTEN)]
    return ours[-1] if ours else None


def _interrupted_job(history: History, base_url: str, generation: GenerationInput, directory: Path) -> str | None:
    """The newest job this same request into this same directory left unfinished on this API when its
    command was interrupted (`DETACHED`), as far as the history knows it still runs; else None.

    Only interrupted waits count: a --no-wait job, or one another terminal is waiting on, is not resumed."""
    import json

    from ..engine.intent import JobIntent

    wanted = json.loads(json.dumps(generation.to_payload()))  # as the history stores it
    unfinished = (JobState.IN_QUEUE, JobState.IN_PROGRESS)
    for entry in history.entries(limit=None, status=unfinished, base_url=base_url, models=[generation.model]):
        intent = JobIntent.from_record(entry.intent)
        if (
            entry.input == wanted and entry.model == generation.model and not entry.paths
            and intent is not None and intent.output_dir == directory.resolve()
            and _last_word(entry.events) == DETACHED
        ):
            return entry.request_id
    return None


def _described(generation: GenerationInput) -> str:
    """`2× 16:9 png`, and for another model its alias or id and its inputs."""
    from ..api.family import alias_or_id

    parts = [f"{generation.num_images}×"]
    parts += [str(value) for value in (generation.aspect_ratio, generation.option("resolution"), generation.output_format) if value]
    if not generation.classic:
        parts.append(f"on {alias_or_id(generation.model)}")
    if generation.images:
        parts.append(f"from {len(generation.images)} image(s)")
    return " ".join(parts)


class ManyChoices(NamedTuple):  # not a dataclass: see RunChoices
    """A run of several jobs: the flags every generate has, and those only such a run uses."""

    single: RunChoices
    concurrency: int = 4
    yes: bool = False
    command: str = "the same command"  # the command line that runs it again (hints name it)


def run_many(
    output: Output, settings: Settings, planned: list[PlannedJob], choices: ManyChoices
) -> None:
    """Show the run, ask if it is large, then run its jobs as batch lines and print them as one result.

    The rerun rule: the same command in the same directory resumes the last run while any of its
    jobs is not done (never paying twice for one), and makes a new run, with new images, once every
    job of it is done; either is said on stderr.
    """
    from ..engine.batch_file import planned_lines
    from .lines import BatchRerun, LineRun, finish_lines, run_lines, summary_of  # a run of one job does without
    from .models import prepared_run

    _check_many(choices.single, len(planned))
    # every job checked against its model's schema (all before the first submit), priced model by model
    planned, cost = prepared_run(output, settings, choices.single.model, planned, sandbox=choices.single.sandbox)
    lines = planned_lines(planned, choices.single.name, datetime.now())
    _show_run(output, planned)
    directory = Path(settings["output_dir"]).expanduser()  # a dry run creates nothing: not prepared yet
    run = this_run(lines, directory)
    run.announce(output, directory)
    sent = [line for line, action in zip(run.lines, run.actions) if action == "submit"]
    if cost is not None:
        cost = cost.over([line.generation for line in sent])
    if not sent:
        estimate = "nothing left to submit: no new cost"
    else:
        estimate = cost.text() if cost is not None else offline_estimate(
            settings, lines[0].generation.model, sum(line.generation.num_images for line in sent))
    if choices.single.dry_run:
        show_dry_run(output, settings, [(line.number, line.generation) for line in sent], choices.single.curl)
        output.note(estimate)
        return
    if cost is not None and choices.single.max_cost is not None:
        cost.check(choices.single.max_cost)
    _confirm(output, len(sent), settings["matrix_confirm_above"], choices.yes, estimate)
    _mention_manifest(output, settings, directory)
    if cost is not None:
        output.note(cost.said(choices.single.max_cost) if sent else estimate)
    plan = download_plan(settings, choices.single.name)
    followups = Followups.of(output, settings)
    printer = InOrder(output, followups, planned)
    line_run = LineRun(choices.concurrency, choices.single.sandbox, max_cost=choices.single.max_cost,
                       rerun_hint=f"run the same command again to resume without paying twice: {choices.command}",
                       priced=cost is not None, resume_said=True)
    outcomes = run_lines(output, settings, plan, run.lines, line_run, printer.add)
    followups.show(printer.fresh)
    output.info(f"saved {len(printer.paths)} image(s) from {len(outcomes)} job(s) in {followups.elapsed:.1f}s")
    followups.finished(f"generate: {summary_of(outcomes, 'job')}")
    if choices.single.open_paths is not None and printer.paths:
        choices.single.open_paths(printer.paths)
    retry = f"to retry the failed jobs, run the same command again (the finished ones are not submitted again): {choices.command}"
    finish_lines(output, outcomes, "generate", "job", BatchRerun(retry))


class ThisRun(NamedTuple):  # not a dataclass: see RunChoices
    """Which run of a command in a directory this is, and what each of its jobs will do."""

    number: int  # 1: the first run of this command into the directory; 2 once that one was done, ...
    lines: list[BatchLine]  # keyed for this run, so an earlier run's records are not this one's
    actions: list[LineAction]
    resumed: bool  # an earlier invocation left this run unfinished

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.actions)

    def announce(self, output: Output, directory: Path) -> None:
        counts, total = self.counts, len(self.lines)
        where = _named(directory)
        if self.resumed:
            parts = [f"{counts['skip']} of {total} job(s) done"]
            if counts["attach"]:
                parts.append(f"{counts['attach']} still running (waited on, not paid again)")
            if counts["uncertain"]:
                parts.append(f"{counts['uncertain']} uncertain (not sent again)")
            parts.append(f"{counts['submit']} to submit")
            output.note(f"resuming the run of this command in {where}: {', '.join(parts)}")
        elif self.number > 1:
            output.note(f"the earlier run of this command in {where} is done (every job's images are on disk): "
                        f"this is a new run of {total} job(s), with new images beside the earlier ones")


def _mention_manifest(output: Output, settings: Settings, directory: Path) -> None:
    """The manifest a run keeps in its output directory (what resumes it, what the gallery groups a matrix
    by) is named when it is about to appear in a directory nobody chose: the current one, by default."""
    from ..engine.manifest import MANIFEST_NAME

    if settings.resolved("output_dir").source == "default" and not (directory / MANIFEST_NAME).exists():
        output.note(f"this run records its jobs in {MANIFEST_NAME} beside its images, in the current directory: the "
                    "same command resumes an interrupted run from it without paying twice (-o DIR keeps runs elsewhere)")


def _named(directory: Path) -> str:
    try:
        current = directory.resolve() == Path.cwd().resolve()
    except OSError:  # the current directory was removed
        current = False
    return "the current directory" if current else str(directory)


def this_run(lines: list[BatchLine], directory: Path) -> ThisRun:
    """The run to go on with: the first run of these lines in `directory` that is not done (every job's
    images on disk), or a new one after them. Runs after the first are told apart by their manifest keys."""
    from dataclasses import replace

    from ..engine.batch import line_action
    from ..engine.manifest import read_manifests

    state = read_manifests(directory)  # its bad records are reported when the run itself reads it
    number = 1
    while True:
        keyed = lines if number == 1 else [replace(line, key=f"{line.key}.run{number}") for line in lines]
        records = [state.get(line.key, {}) for line in keyed]
        actions = [line_action(record, directory) for record in records]
        if not all(action == "skip" for action in actions):
            return ThisRun(number, keyed, actions, resumed=any(records))
        number += 1


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
            self.output.emit({**done.outcome.to_dict(), **run_fields(done.line.number, skipped=done.skipped)}, saved, compact=True)
            self.paths += saved
            if not done.skipped:
                self.fresh += saved
                self.followups.saved(done.outcome, job.first, job.total)


