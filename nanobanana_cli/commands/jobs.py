"""`status`, `result`, `cancel` and `watch`: managing jobs by request id (default: the latest job)."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import NanobananaError, NotFoundError
from ..render.output import Output
from ..runs.context import base_url_flag, download_plan, open_history, parse_name
from ..sanitise import shown
from ..states import JobState
from .options import (
    DASHBOARD_HINT,
    UNCERTAIN_SUBMIT,
    BaseUrlOpt,
    JsonOpt,
    LastOpt,
    MetadataOpt,
    NameOpt,
    OpenOpt,
    OutputDirOpt,
    QuietOpt,
    RetriesOpt,
    TemplateOpt,
    TimeoutOpt,
    TokenOpt,
    check_recorded_api,
    command_settings,
    fail_with_first,
    job_ids_or_last,
    make_output,
    open_in_viewer,
    resolve_request_id,
)

if TYPE_CHECKING:
    from ..engine.lifecycle import Jobs
    from ..engine.outcome import JobOutcome

RECENT_IDS = 20


def complete_request_id(incomplete: str) -> list[tuple[str, str]]:
    """Tab completion: the most recent request ids in the history, each with its state and prompt."""
    from ..stores.history import History

    history = History()
    if not history.path.exists():
        return []  # completing must not create the history
    with history:
        entries = history.entries(limit=RECENT_IDS)
    return [
        # The help is plain words: zsh reads it inside an `_arguments` spec, where quotes and brackets count.
        (entry.request_id, re.sub(r"[^\w ]+", " ", f"{entry.status} {str(entry.input.get('prompt', ''))[:50]}"))
        for entry in entries
        if entry.request_id.startswith(incomplete)
    ]


@contextmanager
def job_session(
    output: Output, request_ids: list[str] | None, last: bool, token: str | None, flags: dict[str, Any], *,
    download: bool = False, name: str | None = None,
) -> Iterator[tuple["Jobs", list[str]]]:
    """The jobs to act on (given, or the latest) and a `Jobs` over the history and one client.

    With `download`, each job's images go where it was submitted to save them (its recorded
    intent), unless -o says otherwise; --name names them anew.
    """
    from ..engine.connect import open_client
    from ..engine.lifecycle import Jobs

    with open_history(output) as history:
        settings = command_settings(token, **flags)
        ids = job_ids_or_last(output, request_ids, last, settings, history)
        check_recorded_api(ids, settings, history)
        plan = download_plan(settings, parse_name(name), fetching=True) if download else None
        with open_client(settings, notices=output, max_connections=len(ids) * 4, journal=history) as client, output.progress() as progress:
            jobs = Jobs(
                client, history, reporter=progress, downloads=plan, timeout=settings["timeout"],
                resume_base_url=base_url_flag(settings),
            )
            if plan is not None and not plan.explicit_directory:
                for directory in sorted({jobs.destination(request_id) for request_id in ids}):
                    if directory.resolve() != Path.cwd().resolve():
                        output.note(f"saving into {directory}, where the job was submitted to save its images (-o to change)")
            yield jobs, ids


RequestIdArg = Annotated[
    Optional[str],
    typer.Argument(
        help="The request id that `generate` printed, or a unique prefix of it (8 characters at least, like the short "
        "ids printed); default: the most recent job.", show_default=False,
        autocompletion=complete_request_id,
    ),
]


def _status_line(outcome: "JobOutcome") -> str:
    text = f"completed: {outcome.status}" if outcome.status in (JobState.SUCCEEDED, JobState.FAILED) else outcome.status
    if outcome.status == JobState.FAILED and outcome.job_error:
        text += f": {shown(outcome.job_error)}"  # the server's words
    if outcome.queue_position is not None:
        text += f" (position {outcome.queue_position})"
    return text


def job_status(
    request_id: RequestIdArg = None,
    last: LastOpt = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    template: TemplateOpt = None,
) -> None:
    """Show a job's state: in_queue (with its position), in_progress, or, once completed, succeeded or failed.

    "completed" alone does not mean success, so for a completed job the outcome is looked up too.

    Examples:

      nanobanana status 3f2a9c1e-...

      nanobanana status --last -q

      nanobanana status "$ID" --template '{status} {queue_position}'
    """
    from ..stores.history import LOCAL_KEY_PREFIX

    output = make_output(json_, quiet, template).documents_errors()
    if request_id is not None and request_id.strip().startswith(LOCAL_KEY_PREFIX):
        outcome = _uncertain_submit(output, request_id)
    else:
        flags = {"base_url": base_url, "retries": retries}
        with job_session(output, None if request_id is None else [request_id], last, token, flags) as (jobs, (only,)):
            outcome = jobs.status(only)
    output.emit(outcome.to_dict(), [_status_line(outcome)], quiet=[outcome.status])


def _uncertain_submit(output: Output, key: str) -> "JobOutcome":
    """A `local:` key from `history`: what the history knows of a submit never answered; nothing is sent."""
    from ..engine.outcome import JobOutcome

    with open_history(output) as history:
        resolved = resolve_request_id(history, key)
        entry = history.get(resolved)
    if entry is None:
        raise NotFoundError(f"{resolved} is not in this machine's history", hint="list recorded jobs with `nanobanana history`")
    output.note(f"{resolved}: {UNCERTAIN_SUBMIT}; {DASHBOARD_HINT}")
    # no request id is known, so the document has none; the history's state (uncertain, or submitting) is the status
    return JobOutcome("", entry.status, entry.generation, submitted_at=entry.submitted_at, job_error=entry.error)


def job_result(
    request_id: RequestIdArg = None,
    last: LastOpt = False,
    download: Annotated[bool, typer.Option("--download", help="Save the images instead of printing their URLs.")] = False,
    output_dir: OutputDirOpt = None,
    name: NameOpt = None,
    metadata: MetadataOpt = None,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    template: TemplateOpt = None,
) -> None:
    """Print a finished job's image URLs, or save the images with --download.

    An unfinished job prints its current state and exits 8; a failed one exits 5. --download saves
    where the job's images were saved before, unless -o says otherwise.

    Examples:

      nanobanana result 3f2a9c1e-...

      nanobanana result --last --download -o out/
    """
    output = make_output(json_, quiet, template).documents_errors()
    flags = {"base_url": base_url, "retries": retries, "output_dir": output_dir, "metadata": metadata}
    ids = None if request_id is None else [request_id]
    with job_session(output, ids, last, token, flags, download=download, name=name) as (jobs, (only,)):
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
    output = make_output(json_, quiet).documents_errors()
    flags = {"base_url": base_url, "retries": retries}
    with job_session(output, None if request_id is None else [request_id], last, token, flags) as (jobs, (only,)):
        answer = jobs.cancel(only)
        # "not cancellable" covers a job cancelled before: its own state tells that apart from a running one
        state = JobState.CANCELLED if answer.cancelled else jobs.status(only).status
        already = not answer.cancelled and state == JobState.CANCELLED
        refused = None if state == JobState.CANCELLED else NanobananaError(
            f"job {only} cannot be cancelled ({answer.outcome}): it is {_not_cancellable_because(state)}",
            hint="only queued jobs can be cancelled; a running job completes and is billed",
        )
        outcome = jobs.describe(only, state, error=refused)
    output.emit({**outcome.to_dict(), "outcome": answer.outcome}, [only] if refused is None else [])
    if refused is not None:
        raise refused
    output.info(f"{only} was already cancelled" if already else f"cancelled {only}")


def _not_cancellable_because(state: str) -> str:
    if state == JobState.IN_PROGRESS:
        return "already running"
    if state in (JobState.SUCCEEDED, JobState.FAILED):
        return f"already finished ({state})"
    return f"{shown(state)}, not queued"


def job_watch(
    request_ids: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="One or more request ids, or unique prefixes of them (8 characters at least); default: the most "
            "recent job.", show_default=False,
            autocompletion=complete_request_id,
        ),
    ] = None,
    last: LastOpt = False,
    output_dir: OutputDirOpt = None,
    name: NameOpt = None,
    metadata: MetadataOpt = None,
    no_download: Annotated[bool, typer.Option("--no-download", help="Print the image URLs instead of saving.")] = False,
    timeout: TimeoutOpt = None,
    open_: OpenOpt = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    template: TemplateOpt = None,
) -> None:
    """Wait for jobs with live progress, saving each job's images as soon as it finishes.

    Images go where the jobs' images were saved before, unless -o says otherwise. With several
    ids and --json (or --template), one line is printed per job, as each finishes.

    Examples:

      nanobanana watch 3f2a9c1e-...

      nanobanana watch "$ID1" "$ID2" --json | jq -r '.outputs[].path'
    """
    output = make_output(json_, quiet, template).documents_errors(per_line=len(request_ids or []) > 1)
    flags = {"base_url": base_url, "retries": retries, "timeout": timeout, "output_dir": output_dir, "metadata": metadata}
    failures: list[NanobananaError] = []
    saved_paths: list[str] = []
    with job_session(output, request_ids, last, token, flags, download=not no_download, name=name) as (jobs, ids):
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
