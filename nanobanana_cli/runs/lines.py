"""Lines through the batch engine: `batch`'s lines, or the jobs of a generate run; the summary and
exit code once they are done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import groupby
from typing import TYPE_CHECKING

from ..api.models import CLASSIC_FIELDS
from ..errors import AlreadyReported, JobFailedError, NanobananaError, UsageError
from .context import open_session, within_budget
from .models import ModelRequest, catalog_of, mark_refusals

if TYPE_CHECKING:
    from ..api.client import Client
    from ..engine.batch import LineOutcome
    from ..engine.batch_file import BatchLine, LineProblem, LineSpec
    from ..engine.catalog import Catalog
    from ..engine.lifecycle import DownloadPlan
    from ..render.output import Output
    from ..stores.settings import Settings


@dataclass(frozen=True)
class LineFlags:
    """`batch`'s model flags: the defaults of lines that do not say otherwise (--model is the file's
    LineOptions.model: each line's generation already has its model)."""

    resolution: str | None = None
    seed: int | None = None
    sets: tuple[str, ...] = ()  # --set KEY=VALUE; a line's own KEY wins
    fit: bool = False


def line_request(spec: LineSpec, model_id: str, flags: LineFlags) -> ModelRequest:
    """A batch line's model (the id its generation has) and fields as a `ModelRequest`: the same checks and
    body as `generate`/`edit`."""
    given = dict(spec.fields)
    sets = tuple(pair for pair in flags.sets if pair.partition("=")[0].strip() not in given)
    others = tuple((key, value) for key, value in given.items() if key not in CLASSIC_FIELDS)
    request = ModelRequest(
        model_id, spec.task, None if "resolution" in given else flags.resolution,
        None if "seed" in given else flags.seed, sets, spec.images, flags.fit, given=others,
    )
    # The default model's classic fields alone are checked (and sent in full) as `generate` sends them;
    # with anything else, the line's aspect and format are fields like the rest, sent as given.
    return request._replace(given=tuple(given.items())) if request.needs_schema else request


def vet_lines(
    catalog: Catalog, settings: Settings, lines: list[BatchLine], flags: LineFlags
) -> tuple[list[BatchLine], list[LineProblem]]:
    """Each batch line checked against the schema in effect for its model, its images read (kind, size,
    count): the jobs as they will be sent, and a problem for each line that cannot be, by its number."""
    from ..engine.batch_file import LineProblem

    kept: list[BatchLine] = []
    problems: list[LineProblem] = []
    for number, jobs in groupby(lines, key=lambda line: line.number):  # a line's jobs come together
        group = list(jobs)
        spec = group[0].spec
        request = line_request(spec, group[0].generation.model, flags) if spec is not None else None
        if request is None or not request.needs_schema:
            kept += group
            continue
        try:
            if request.images:  # read (and refused) once for all the line's jobs, the error naming the field
                try:
                    found = request.read_images(catalog.entry(request.model_id))
                except UsageError as exc:
                    raise UsageError(f"\"images\": {exc}", hint=exc.hint) from None
                request = request._replace(images=(), reloaded=tuple(found))
            prepared = request.prepare(catalog, settings, [line.generation for line in group])
        except NanobananaError as exc:
            problems.append(LineProblem.of(number, exc))
            continue
        kept += [replace(line, generation=generation) for line, generation in zip(group, prepared)]
    return kept, problems


@dataclass(frozen=True)
class LineRun:
    """How `run_lines` runs: `batch`'s flags, or a generate run's."""

    concurrency: int = 4
    sandbox: bool = False
    resubmit_uncertain: bool = False
    max_cost: float | None = None
    manifest_name: str | None = None  # None: the directory's main manifest
    rerun_hint: str | None = None  # what an interrupt says to do; None: run the same batch command again
    priced: bool = False  # the caller checked --max-cost and said the cost, model by model (runs/models.RunCost)
    resume_said: bool = False  # the caller said which jobs an earlier run submitted (generate's this_run)


def run_lines(
    output: Output,
    settings: Settings,
    plan: DownloadPlan,
    lines: list[BatchLine],
    run: LineRun,
    on_outcome: Callable[[LineOutcome], None],
    vet: Callable[[Catalog], list[BatchLine]] | None = None,
) -> list[LineOutcome]:
    """Run the lines through the batch engine (within --max-cost), handing each outcome over as it comes.

    `vet` checks the lines against the schemas in effect (the session's catalog) before anything is
    sent, and returns the ones to run. The estimate counts only the jobs this run will submit: a
    resumed run does not count again what an earlier one submitted.
    """
    from ..engine.batch import RERUN_HINT, run_batch, still_to_submit
    from ..engine.lifecycle import Jobs
    from ..engine.manifest import MANIFEST_NAME, Manifest

    outcomes = []
    with open_session(output, settings, sandbox=run.sandbox, max_connections=run.concurrency * 2) as session:
        catalog = catalog_of(session.client)
        if vet is not None:
            lines = vet(catalog)
        # read once: what the estimate counts is what the run submits
        manifest = Manifest(plan.directory, run.manifest_name or MANIFEST_NAME)
        if not run.priced:
            todo = still_to_submit(manifest, lines, run.resubmit_uncertain)
            _announce_cost(output, session.client, catalog, todo, len(lines), run.max_cost, resume_said=run.resume_said)
        with output.batch_progress(len(lines)) as progress:
            jobs = Jobs(session.client, session.history, reporter=progress, downloads=plan, timeout=settings["timeout"])
            batch = run_batch(
                jobs, lines, concurrency=run.concurrency, reporter=progress, resubmit_uncertain=run.resubmit_uncertain,
                warn=output.warn, rerun_hint=run.rerun_hint or RERUN_HINT, manifest=manifest,
            )
            for item in batch:
                outcomes.append(item)
                on_outcome(item)
        mark_refusals(output, catalog, [(item.line.generation, item.outcome.error) for item in outcomes])
    return outcomes


def _announce_cost(
    output: Output, client: Client, catalog: Catalog, todo: list[BatchLine], total: int, max_cost: float | None, *,
    resume_said: bool = False,
) -> None:
    """What the jobs still to submit will cost (and --max-cost's check), by the price of each one's model;
    how many an earlier run submitted too, unless the caller said so (`resume_said`)."""
    from ..api.schema import MODEL_ID
    from .models import RunCost

    if not todo:
        output.note(f"nothing left to submit: no new cost (all {total} job(s) were submitted by an earlier run into this directory)")
        return
    if len(todo) < total and not resume_said:
        output.note(f"resuming: {len(todo)} of {total} job(s) still to submit; the others were submitted earlier")
    models = {line.generation.model for line in todo}
    if len(models) == 1:
        (model,) = models
        images = sum(line.generation.num_images for line in todo)
        within_budget(output, client, images, max_cost, announce=True, entry=None if model == MODEL_ID else catalog.entry(model))
        return
    RunCost.of(catalog, [line.generation for line in todo]).announce(output, max_cost)


@dataclass(frozen=True)
class BatchRerun:
    """What to tell the user after failures: how to retry, and (if possible) how to force uncertain ones."""

    retry: str
    resubmit: str | None = None


def summary_of(outcomes: list[LineOutcome], unit: str) -> str:
    counts = Counter("skipped" if o.skipped else o.outcome.status for o in outcomes)
    return f"{len(outcomes)} {unit}(s): " + ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def finish_lines(output: Output, outcomes: list[LineOutcome], what: str, unit: str, rerun: BatchRerun) -> None:
    """The summary on stderr; with failures, how to go on, and the exit code of the worst of them."""
    from ..states import JobState

    output.note(f"{what}: {summary_of(outcomes, unit)}")
    errors: list[NanobananaError] = [o.outcome.error for o in outcomes if o.outcome.error is not None]
    if not errors:
        return
    uncertain = sorted({o.line.number for o in outcomes if o.outcome.status == JobState.UNCERTAIN})
    if len(uncertain) < len(errors):
        output.note(rerun.retry)
    if uncertain:
        force = f" To submit them again anyway, which may bill twice: {rerun.resubmit}" if rerun.resubmit else ""
        output.note(
            f"uncertain {unit}(s) {', '.join(map(str, uncertain))}: a job may exist and be billed for each, with no id "
            f"to find it by (the API has no job list); check your RunComfy dashboard and `nanobanana history`.{force}"
        )
    systemic = [error for error in errors if not isinstance(error, JobFailedError)]
    raise AlreadyReported((systemic or errors)[0].exit_code)
