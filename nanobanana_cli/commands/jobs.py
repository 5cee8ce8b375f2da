"""`status`, `result`, `cancel` and `watch`: managing jobs by request id (default: the latest job)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import NanobananaError, NotFinishedError
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
    download_plan,
    job_ids_or_last,
    make_client,
    make_output,
    open_history,
    open_in_viewer,
    setting,
)
from .generate import render_outcome

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
    from ..api.models import COMPLETED

    output = make_output(json_, quiet)
    with open_history(output) as history:
        (request_id,) = job_ids_or_last([request_id] if request_id else [], last, base_url, history)
        with make_client(token, base_url, output, retries) as client:
            status = client.status(request_id)
            outcome = client.result(request_id).status if status.status == COMPLETED else None
        history.update(request_id, status=outcome or status.status)
    if output.mode.value == "json":
        output.result_json({**status.to_dict(), "outcome": outcome})
        return
    text = status.status
    if status.queue_position is not None:
        text += f" (position {status.queue_position})"
    if outcome:
        text += f": {outcome}"
    output.result_line(status.status if output.mode.value == "quiet" else text)


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
    from ..engine.downloads import download_all
    from ..engine.lifecycle import JobOutcome, failure_for

    output = make_output(json_, quiet)
    plan = download_plan(output_dir) if download else None
    with open_history(output) as history:
        (request_id,) = job_ids_or_last([request_id] if request_id else [], last, base_url, history)
        entry = history.get(request_id)
        generation = entry.generation if entry else None
        with make_client(token, base_url, output, retries) as client:
            result = client.result(request_id)
            history.update(request_id, status=result.status, output_urls=list(result.output_urls) or None)
            if not result.is_finished:
                if output.mode.value == "json":
                    output.result_json(result.to_dict())
                raise NotFinishedError(
                    f"job {request_id} is not finished yet: {result.status}",
                    hint=f"wait for it with: nanobanana watch {request_id}",
                )
            failure = failure_for(result)
            if failure:
                if output.mode.value == "json":
                    output.result_json(result.to_dict())
                raise failure
            saved = None
            if plan is not None:
                with output.progress() as progress:
                    saved = download_all(
                        client, result.output_urls, plan.directory,
                        prompt=generation.prompt if generation else None, request_id=request_id,
                        output_format=generation.output_format if generation else "png",
                        max_bytes=plan.max_bytes, on_progress=progress.download_progress,
                    )
                history.update(request_id, paths=[item.path for item in saved])
    render_outcome(
        output,
        JobOutcome(request_id=request_id, status=result.status, input=generation, output_urls=list(result.output_urls), saved=saved),
    )


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
    with open_history(output) as history:
        (request_id,) = job_ids_or_last([request_id] if request_id else [], last, base_url, history)
        with make_client(token, base_url, output, retries) as client:
            outcome = client.cancel(request_id)
        if outcome.cancelled:
            history.update(request_id, status="cancelled")
    if output.mode.value == "json":
        output.result_json(outcome.to_dict())
    elif outcome.cancelled:
        output.result_line(request_id)
        output.info(f"cancelled {request_id}")
    if not outcome.cancelled:
        raise NanobananaError(
            f"job {request_id} cannot be cancelled ({outcome.outcome}): it is already running or finished",
            hint="only queued jobs can be cancelled; a running job completes and is billed",
        )


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
    from ..engine.lifecycle import watch_jobs

    output = make_output(json_, quiet)
    downloads = None if no_download else download_plan(output_dir)
    timeout = setting("timeout", timeout)
    first_error: NanobananaError | None = None
    saved_paths: list[str] = []
    with open_history(output) as history:
        ids = job_ids_or_last(request_ids or [], last, base_url, history)
        jobs = [(request_id, entry.generation if (entry := history.get(request_id)) else None) for request_id in ids]
        with make_client(token, base_url, output, retries) as client, output.progress() as progress:
            for outcome in watch_jobs(client, jobs, downloads=downloads, reporter=progress, timeout=timeout, history=history):
                if outcome.error is None:
                    render_outcome(output, outcome, compact=len(ids) > 1)
                    saved_paths.extend(item.path for item in outcome.saved or [])
                    continue
                if output.mode.value == "json":
                    output.result_json(outcome.to_dict(), compact=len(ids) > 1)
                if len(ids) > 1:
                    output.error(str(outcome.error), outcome.error.hint)
                first_error = first_error or outcome.error
    if open_ and saved_paths:
        open_in_viewer(output, saved_paths)
    if first_error is not None:
        if len(ids) > 1:
            raise typer.Exit(int(first_error.exit_code))
        raise first_error
