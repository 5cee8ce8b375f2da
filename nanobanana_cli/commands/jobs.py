"""`status`, `result`, `cancel` and `watch`: managing jobs by request id (default: the latest job)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import NanobananaError
from ..render.output import Output
from .options import (
    BaseUrlOpt,
    JsonOpt,
    LastOpt,
    OpenOpt,
    OutputDirOpt,
    QuietOpt,
    RetriesOpt,
    TimeoutOpt,
    TokenOpt,
    command_settings,
    download_plan,
    fail_with_first,
    job_ids_or_last,
    make_output,
    open_history,
    open_in_viewer,
)

if TYPE_CHECKING:
    from ..engine.lifecycle import DownloadPlan, Jobs
    from ..stores.settings import Settings

@contextmanager
def job_session(
    output: Output, settings: Settings, request_ids: list[str], last: bool, *, downloads: DownloadPlan | None = None
) -> Iterator[tuple[Jobs, list[str]]]:
    """The jobs to act on (given, or the latest) and a `Jobs` over the history and one client."""
    from ..engine.connect import open_client
    from ..engine.lifecycle import Jobs

    with open_history(output) as history:
        ids = job_ids_or_last(request_ids, last, settings, history)
        with open_client(settings, notices=output, max_connections=len(ids) * 4) as client, output.progress() as progress:
            yield Jobs(client, history, reporter=progress, downloads=downloads, timeout=settings["timeout"]), ids


RequestIdArg = Annotated[
    Optional[str],
    typer.Argument(help="The request id that `generate` printed (default: the most recent job).", show_default=False),
]


def job_status(
    request_id: RequestIdArg = None,
    last: LastOpt = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Show a job's state: in_queue (with its position), in_progress, completed or cancelled.

    For a completed job the outcome (succeeded or failed) is looked up too, since
    "completed" alone does not mean success.

    Examples:

      nanobanana status 3f2a9c1e-...

      nanobanana status --last -q
    """
    output = make_output(json_, quiet)
    settings = command_settings(token, base_url=base_url, retries=retries)
    with job_session(output, settings, [request_id] if request_id else [], last) as (jobs, (only,)):
        status, outcome = jobs.status(only)
    text = status.status
    if status.queue_position is not None:
        text += f" (position {status.queue_position})"
    if outcome:
        text += f": {outcome}"
    output.emit({**status.to_dict(), "outcome": outcome}, [text], quiet=[status.status])



def job_result(
    request_id: RequestIdArg = None,
    last: LastOpt = False,
    download: Annotated[bool, typer.Option("--download", help="Save the images instead of printing their URLs.")] = False,
    output_dir: OutputDirOpt = None,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Print a finished job's image URLs, or save the images with --download.

    An unfinished job prints its current state and exits 8; a failed one exits 5.

    Examples:

      nanobanana result 3f2a9c1e-...

      nanobanana result --last --download -o out/
    """
    output = make_output(json_, quiet)
    settings = command_settings(token, base_url=base_url, retries=retries, output_dir=output_dir)
    plan = download_plan(settings) if download else None
    with job_session(output, settings, [request_id] if request_id else [], last, downloads=plan) as (jobs, (only,)):
        outcome = jobs.fetch(only)
    output.job(outcome)
    fail_with_first([outcome.error] if outcome.error else [], already_shown=False)



def job_cancel(
    request_id: RequestIdArg = None,
    last: LastOpt = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Cancel a queued job. A job already in progress cannot be cancelled: it completes and is billed.

    Examples:

      nanobanana cancel 3f2a9c1e-...

      nanobanana cancel --last
    """
    output = make_output(json_, quiet)
    settings = command_settings(token, base_url=base_url, retries=retries)
    with job_session(output, settings, [request_id] if request_id else [], last) as (jobs, (only,)):
        outcome = jobs.cancel(only)
    output.emit(outcome.to_dict(), [only] if outcome.cancelled else [])
    if not outcome.cancelled:
        raise NanobananaError(
            f"job {only} cannot be cancelled ({outcome.outcome}): it is already running or finished",
            hint="only queued jobs can be cancelled; a running job completes and is billed",
        )
    output.info(f"cancelled {only}")



def job_watch(
    request_ids: Annotated[
        Optional[list[str]], typer.Argument(help="One or more request ids (default: the most recent job).", show_default=False)
    ] = None,
    last: LastOpt = False,
    output_dir: OutputDirOpt = None,
    no_download: Annotated[bool, typer.Option("--no-download", help="Print the image URLs instead of saving.")] = False,
    timeout: TimeoutOpt = None,
    open_: OpenOpt = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Wait for jobs with live progress, saving each job's images as soon as it finishes.

    With several ids and --json, one JSON line is printed per job, as each finishes.

    Examples:

      nanobanana watch 3f2a9c1e-...

      nanobanana watch "$ID1" "$ID2" --json | jq -r '.outputs[].path'
    """
    output = make_output(json_, quiet)
    settings = command_settings(token, base_url=base_url, retries=retries, timeout=timeout, output_dir=output_dir)
    downloads = None if no_download else download_plan(settings)
    failures: list[NanobananaError] = []
    saved_paths: list[str] = []
    with job_session(output, settings, request_ids or [], last, downloads=downloads) as (jobs, ids):
        several = len(ids) > 1
        for outcome in jobs.watch([(request_id, jobs.generation_of(request_id)) for request_id in ids]):
            output.job(outcome, compact=several)
            saved_paths.extend(item.path for item in outcome.saved or [])
            if outcome.error is not None:
                failures.append(outcome.error)
                if several:
                    output.error(str(outcome.error), outcome.error.hint)
    if open_ and saved_paths:
        open_in_viewer(output, saved_paths)
    fail_with_first(failures, already_shown=several)
