"""Lines through the batch engine: `batch`'s lines, or the jobs of a generate run; the summary and
exit code once they are done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AlreadyReported, JobFailedError, NanobananaError
from .context import images_to_submit, open_session, within_budget

if TYPE_CHECKING:
    from ..engine.batch import LineOutcome
    from ..engine.batch_file import BatchLine
    from ..engine.lifecycle import DownloadPlan
    from ..render.output import Output
    from ..stores.settings import Settings


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


def run_lines(
    output: Output,
    settings: Settings,
    plan: DownloadPlan,
    lines: list[BatchLine],
    run: LineRun,
    on_outcome: Callable[[LineOutcome], None],
) -> list[LineOutcome]:
    """Run the lines through the batch engine (within --max-cost), handing each outcome over as it comes."""
    from ..engine.batch import RERUN_HINT, run_batch
    from ..engine.lifecycle import Jobs
    from ..engine.manifest import MANIFEST_NAME

    outcomes = []
    with (
        open_session(output, settings, sandbox=run.sandbox, max_connections=run.concurrency * 2) as session,
        output.batch_progress(len(lines)) as progress,
    ):
        if not run.priced:
            images = images_to_submit(lines, plan.directory, resubmit_uncertain=run.resubmit_uncertain)
            within_budget(output, session.client, images, run.max_cost, announce=True)
        jobs = Jobs(session.client, session.history, reporter=progress, downloads=plan, timeout=settings["timeout"])
        batch = run_batch(
            jobs, lines, concurrency=run.concurrency, reporter=progress, resubmit_uncertain=run.resubmit_uncertain,
            warn=output.warn, manifest_name=run.manifest_name or MANIFEST_NAME, rerun_hint=run.rerun_hint or RERUN_HINT,
        )
        for item in batch:
            outcomes.append(item)
            on_outcome(item)
    return outcomes


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
    uncertain = sorted(o.line.number for o in outcomes if o.outcome.status == JobState.UNCERTAIN)
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
