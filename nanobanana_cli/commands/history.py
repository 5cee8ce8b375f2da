"""`nanobanana history`: find yesterday's job again, bring unfinished ones up to date, forget old ones."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import NotFoundError, UsageError
from ..sanitise import shown
from .options import BaseUrlOpt, JsonOpt, RetriesOpt, TokenOpt, command_settings, make_output, open_history

if TYPE_CHECKING:
    from ..render.output import Output
    from ..stores.history import History, HistoryEntry
    from ..stores.settings import Settings

# Its help is `history_list`'s docstring: listing is what `nanobanana history` alone does.
history_app = typer.Typer(invoke_without_command=True)


@history_app.callback(invoke_without_command=True)
def history_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, help="How many jobs to show.")] = 20,
    status: Annotated[Optional[str], typer.Option(
        "--status", show_default=False,
        help="Only jobs in this state: submitting, uncertain, in_queue, in_progress, succeeded, failed or cancelled.",
    )] = None,
    search: Annotated[Optional[str], typer.Option("--search", help="Only jobs whose prompt contains this text.", show_default=False)] = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ask the API for the state of the listed unfinished jobs first.")] = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List recorded jobs, newest first; `history rm` and `history clear` forget some.

    Every submit is recorded before it is sent.
    A job whose submit was sent but never answered (lost connection, 5xx, a crash) is listed as
    uncertain, under a local key instead of a request id: it may exist and be billed, and only
    your RunComfy dashboard can tell.

    Examples:

      nanobanana history -n 5

      nanobanana history --status failed --json | jq -r '.[].request_id'

      nanobanana history --refresh

      nanobanana history rm 3f2a9c1e-...

      nanobanana history clear --before 2026-01-01
    """
    if ctx.invoked_subcommand is not None:
        return
    output = make_output(json_, False)
    wanted = _checked_status(status)
    with open_history(output) as history:
        entries = history.entries(limit=limit, status=wanted, search=search)
        if refresh:
            _refresh(output, command_settings(token, base_url=base_url, retries=retries), history, entries)
            entries = history.entries(limit=limit, status=wanted, search=search)
        if not entries:
            output.info("no jobs match" if history.count() else "no jobs recorded yet")
    output.emit([entry.to_dict() for entry in entries], [_row(entry) for entry in entries])


def _checked_status(status: str | None) -> str | None:
    from ..api.models import normalise_status
    from ..states import RECORDED_STATES

    if status is None:
        return None
    wanted = normalise_status(status)
    if wanted not in RECORDED_STATES:
        raise UsageError(f"unknown status {status!r}: choose one of {', '.join(RECORDED_STATES)}")
    return wanted


def _refresh(output: Output, settings: Settings, history: History, entries: list[HistoryEntry]) -> None:
    """Bring unfinished jobs up to date through the job lifecycle, which records what it learns.

    Only jobs sent to this API are asked about: another API (a past sandbox, say) does not know them.
    """
    from ..engine.connect import open_client
    from ..engine.lifecycle import Jobs
    from ..states import FINISHED_STATES, JobState

    unfinished = [e for e in entries if e.status not in FINISHED_STATES | {JobState.SUBMITTING, JobState.UNCERTAIN}]
    here = [e for e in unfinished if e.base_url == settings.base_url]
    if len(here) < len(unfinished):
        output.note(f"{len(unfinished) - len(here)} unfinished job(s) were sent to another API; not refreshed (see --base-url)")
    if not here:
        return
    with open_client(settings, notices=output) as client:
        jobs = Jobs(client, history)
        for entry in here:
            try:
                jobs.status(entry.request_id)
            except NotFoundError as exc:  # expired on the server: the rest can still be refreshed
                output.warn(f"{entry.request_id}: {exc}")


def _row(entry: HistoryEntry) -> str:
    """One job, one row: every recorded value escaped (a prompt may hold a newline, or come from a crafted file)."""
    when = shown(entry.submitted_at.replace("T", " ")[:19])
    number, aspect, image_format = (shown(entry.input.get(key, "?")) for key in ("num_images", "aspect_ratio", "output_format"))
    shape = f"{number}× {aspect} {image_format}"
    prompt = str(entry.input.get("prompt", ""))
    prompt = shown(prompt if len(prompt) <= 60 else prompt[:59] + "…")
    return f"{when}  {shown(entry.request_id)}  {shown(entry.status):<11}  {shape:<13}  {prompt}"


@history_app.command("rm")
def history_rm(
    request_ids: Annotated[list[str], typer.Argument(
        metavar="ID", help="Request ids (or the local keys of uncertain submits) to forget.", show_default=False,
    )],
) -> None:
    """Forget jobs in the local history. The jobs themselves are not touched.

    Example: nanobanana history rm 3f2a9c1e-... local:9b1c2d3e4f50
    """
    output = make_output(False, False)
    with open_history(output) as history:
        removed = history.remove(request_ids)
    missing = [request_id for request_id in dict.fromkeys(request_ids) if request_id not in removed]
    if removed:
        output.info(f"removed {len(removed)} job(s) from the history")
    if missing:
        raise NotFoundError(f"not in the history: {', '.join(missing)}", hint="list the recorded ids with `nanobanana history`")


@history_app.command("clear")
def history_clear(
    before: Annotated[str, typer.Option(
        "--before", metavar="DATE", show_default=False,
        help="Forget the jobs submitted before this date or time (YYYY-MM-DD or ISO 8601; local time unless it says otherwise).",
    )],
) -> None:
    """Forget old jobs in the local history. The jobs themselves are not touched.

    Example: nanobanana history clear --before 2026-01-01
    """
    moment = _parse_moment(before)
    output = make_output(False, False)
    with open_history(output) as history:
        removed = history.remove_before(moment)
    output.info(f"removed {removed} job(s) submitted before {moment.isoformat(timespec='seconds')}")


def _parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"invalid date {text!r}: expected YYYY-MM-DD or an ISO 8601 time", hint="e.g. --before 2026-01-31"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()  # a bare date or time is the user's local one



@history_app.command("stats")
def history_stats(
    since: Annotated[Optional[str], typer.Option(
        "--since", metavar="DATE", show_default=False, help="Only jobs submitted on or after this date (YYYY-MM-DD or ISO 8601).",
    )] = None,
    json_: JsonOpt = False,
) -> None:
    """What the recorded jobs add up to: counts, failure and cancel rates, queue wait and run time
    (p50/p95), images per day, and spend per day where the API reported costs.

    Examples:

      nanobanana history stats

      nanobanana history stats --since 2026-11-01 --json | jq .spend_usd
    """
    output = make_output(json_, False)
    with open_history(output) as history:
        stats = history.stats(since=_parse_moment(since) if since else None)
    output.emit(stats, _stats_lines(stats))


def _stats_lines(stats: dict[str, Any]) -> list[str]:
    def seconds(figure: dict) -> str:
        return "no data" if figure["p50"] is None else f"p50 {figure['p50']:.1f}s, p95 {figure['p95']:.1f}s ({figure['count']} jobs)"

    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    spend = "unknown (no costs reported)" if stats["spend_usd"] is None else f"${stats['spend_usd']:.4f}"
    lines = [
        f"jobs:        {stats['jobs']} ({', '.join(f'{n} {s}' for s, n in stats['by_status'].items()) or 'none'})",
        f"images:      {stats['images']}",
        f"failed:      {rate(stats['failure_rate'])} of finished jobs; cancelled: {rate(stats['cancel_rate'])}",
        f"queue wait:  {seconds(stats['queue_wait_seconds'])}",
        f"run time:    {seconds(stats['run_seconds'])}",
        f"spend:       {spend}",
    ]
    lines += [f"  {day}  {count} image(s)" + (f", ${stats['spend_usd_per_day'][day]:.4f}" if day in stats["spend_usd_per_day"] else "")
              for day, count in stats["images_per_day"].items()]
    return lines
