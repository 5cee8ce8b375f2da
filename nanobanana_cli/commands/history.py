"""`nanobanana history`: find yesterday's job again, bring unfinished ones up to date, forget old ones."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import NanobananaError, NotFoundError, UsageError
from ..runs.context import check_readable, read_history
from ..sanitise import shown
from .options import BaseUrlOpt, JsonOpt, RetriesOpt, TokenOpt, command_settings, make_output, resolve_request_id

ApiFilterOpt = Annotated[Optional[str], typer.Option(
    "--api", metavar="URL", show_default=False, help="Only the jobs sent to this API (its base URL, as the API column shows it).",
)]

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
    api: ApiFilterOpt = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", metavar="MODEL", show_default=False,
        help="Only the jobs of this model: an alias (its text-to-image and edit jobs, as the MODEL column shows it) or a full model id.",
    )] = None,
    refresh: Annotated[bool, typer.Option(
        "--refresh", help="First ask the API (--base-url) for the state of every unfinished job sent to it, and say what changed.",
    )] = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List recorded jobs, newest first; `history rm` and `history clear` forget some.

    Every submit is recorded before it is sent, with the model (the MODEL column; --model to list
    one model's jobs only) and the API it went to (the API column; --api to list one API's jobs only).
    A job whose submit was sent but never answered (lost connection, 5xx, a crash) is listed as
    uncertain, under a local key instead of a request id: it may exist and be billed, and only
    your RunComfy dashboard can tell.

    Examples:

      nanobanana history -n 5

      nanobanana history --status failed --json | jq -r '.[].request_id'

      nanobanana history --refresh

      nanobanana history --api https://model-api.runcomfy.net

      nanobanana history --model nano-banana-2

      nanobanana history rm 3f2a9c1e-...

      nanobanana history clear --before 2026-01-01
    """
    if ctx.invoked_subcommand is not None:
        return
    output = make_output(json_, False)
    wanted = _checked_status(status)
    only_api = _api_url(api)
    models = _model_ids(model)
    with read_history() as history:
        if refresh:
            _refresh(output, command_settings(token, base_url=base_url, retries=retries), history)
        entries = history.entries(limit=limit, status=wanted, search=search, base_url=only_api, models=models)
        check_readable(history)
        if not entries:
            output.info("no jobs match" if history.count() else "no jobs recorded yet")
    output.emit([entry.to_dict() for entry in entries], _table(entries))


def _checked_status(status: str | None) -> str | None:
    from ..api.models import normalise_status
    from ..states import RECORDED_STATES

    if status is None:
        return None
    wanted = normalise_status(status)
    if wanted not in RECORDED_STATES:
        raise UsageError(f"unknown status {status!r}: choose one of {', '.join(RECORDED_STATES)}")
    return wanted


def _refresh(output: "Output", settings: "Settings", history: "History") -> None:
    """Bring every unfinished job up to date through the job lifecycle, which records what it learns,
    and say what changed: a filtered listing may show none of them afterwards.

    Only jobs sent to this API are asked about: another API (a past sandbox, say) does not know them.
    """
    from collections import Counter

    from ..engine.connect import open_client
    from ..engine.lifecycle import Jobs
    from ..states import FINISHED_STATES, JobState

    settled = FINISHED_STATES | {JobState.SUBMITTING, JobState.UNCERTAIN}
    unfinished = [e for e in history.entries(limit=None) if e.status not in settled]
    here = [e for e in unfinished if e.base_url == settings.base_url]
    if len(here) < len(unfinished):
        output.note(f"{len(unfinished) - len(here)} unfinished job(s) were sent to another API; not refreshed (see --base-url)")
    if not here:
        output.note(f"no unfinished job on {settings.base_url} to refresh")
        return
    changes: Counter[str] = Counter()
    with open_client(settings, notices=output, journal=history) as client:
        jobs = Jobs(client, history)
        for entry in here:
            try:
                now = jobs.status(entry.request_id).status
            except NotFoundError as exc:  # expired on the server: the rest can still be refreshed
                output.warn(f"{entry.request_id}: {exc}")
                continue
            changes["unchanged" if now == entry.status else f"{shown(entry.status)} → {shown(now)}"] += 1
    told = ", ".join(f"{count} {change}" for change, count in sorted(changes.items(), key=lambda item: item[0] == "unchanged"))
    output.note(f"refreshed {sum(changes.values())} unfinished job(s) on {settings.base_url}: {told or 'none answered'}")


def _api_url(api: str | None) -> str | None:
    """--api as the history records base URLs: scheme and host, no trailing slash."""
    if api is None:
        return None
    url = api.strip().rstrip("/")
    if "://" not in url:
        raise UsageError(f"--api {api!r} is not a URL", hint="give the API's base URL as the API column shows it, e.g. --api https://model-api.runcomfy.net")
    return url


def _model_ids(model: str | None) -> tuple[str, ...]:
    """--model as the history records models: an alias is its text-to-image and edit ids; a model id as given."""
    from ..api.family import ALIASES, resolve

    if model is None:
        return ()
    name = model.strip()
    if name.lower() in ALIASES:
        return (resolve(name, "generate"), resolve(name, "edit"))
    if "/" not in name:
        raise UsageError(f"unknown model {name[:80]!r} for --model: choose one of {', '.join(ALIASES)}, or a full model id",
                         hint="the MODEL column of `nanobanana history` shows each job's")
    return (name,)


def _local_url(base_url: str) -> bool:
    """An API on this machine (the sandbox, a local stub): no money was spent on its jobs."""
    from urllib.parse import urlsplit

    from ..api.urls import is_loopback_host

    try:
        return is_loopback_host(urlsplit(base_url).hostname)
    except ValueError:  # a recorded value that is no URL: counted, not guessed
        return False


ID_WIDTH = 36  # a RunComfy request id is a UUID
API_WIDTH = 30
COLUMNS = ("SUBMITTED (UTC)", "ID", "STATUS", "MODEL", "IMAGES", "API", "PROMPT")


def _table(entries: list["HistoryEntry"]) -> list[str]:
    """The header and one row per job; MODEL and IMAGES are as wide as their widest cell."""
    if not entries:
        return []
    cells = [_cells(entry) for entry in entries]
    widths = [19, ID_WIDTH, 11, *(max(len(COLUMNS[column]), *(len(row[column]) for row in cells)) for column in (3, 4)), API_WIDTH]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + f"  {row[-1]}"
        for row in [COLUMNS, *cells]
    ]


def _cells(entry: "HistoryEntry") -> tuple[str, ...]:
    """One job's cells: every recorded value escaped (a prompt may hold a newline, or come from a crafted file)."""
    from ..api.family import alias_or_id

    when = shown(entry.submitted_at.replace("T", " ")[:19])
    model = shown(alias_or_id(entry.model))
    prompt = str(entry.input.get("prompt", ""))
    prompt = shown(prompt if len(prompt) <= 60 else prompt[:59] + "…")
    return (when, shown(entry.request_id), shown(entry.status), model, _images(entry), shown(entry.base_url), prompt)


def _images(entry: "HistoryEntry") -> str:
    """`4× 16:9 png`, `1× 2K edit of 3`: what the job asked for and made, nothing it does not know.

    A request checked against a model's schema records only the fields it sent: the count is its
    num_images, else the images it saved; an edit adds how many input images it sent."""
    from ..engine.image_inputs import IMAGES_FIELD

    count = entry.input.get("num_images")
    number = count if isinstance(count, int) and not isinstance(count, bool) else len(entry.paths)
    parts = [f"{number}×"] if number else []
    parts += [str(entry.input[key]) for key in ("aspect_ratio", "output_format", "resolution") if key in entry.input]
    inputs = entry.input.get(IMAGES_FIELD)
    if isinstance(inputs, list) and inputs:
        parts.append(f"edit of {len(inputs)}")
    return shown(" ".join(parts))


@history_app.command("rm")
def history_rm(
    request_ids: Annotated[list[str], typer.Argument(
        metavar="ID", show_default=False,
        help="Request ids, unique prefixes of them (8 characters at least), or the local keys of uncertain submits.",
    )],
) -> None:
    """Forget jobs in the local history. The jobs themselves are not touched.

    Example: nanobanana history rm 3f2a9c1e-... local:9b1c2d3e4f50
    """
    output = make_output(False, False)
    with read_history() as history:
        resolved = list(dict.fromkeys(resolve_request_id(history, request_id) for request_id in request_ids))
        removed = history.remove(resolved)
    missing = [request_id for request_id in resolved if request_id not in removed]
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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the jobs that would be forgotten; forget nothing.")] = False,
    yes: Annotated[bool, typer.Option("-y", "--yes", help="Do not ask for confirmation (needed when not on a terminal).")] = False,
) -> None:
    """Forget old jobs in the local history. The jobs themselves are not touched.

    On a terminal it asks first; a script passes --yes.

    Examples:

      nanobanana history clear --before 2026-01-01 --dry-run

      nanobanana history clear --before 2026-01-01 --yes
    """
    import sys

    from ..times import utc_text

    moment = _parse_moment(before, "--before")
    when = moment.isoformat(timespec="seconds")
    output = make_output(False, False)
    with read_history() as history:
        cutoff = utc_text(moment)
        going = [entry for entry in history.entries(limit=None) if entry.submitted_at < cutoff]
        if dry_run or not going:
            output.emit([entry.to_dict() for entry in going], _table(going))
            output.info(f"{'would remove' if dry_run else 'removed'} {len(going)} job(s) submitted before {when}")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"this would forget {len(going)} job(s) submitted before {when}; nothing was removed",
                    hint="pass --yes to remove them, or --dry-run to list them",
                )
            if not output.confirm(f"Forget {len(going)} job(s) submitted before {when}?"):
                raise NanobananaError("not confirmed; nothing was removed", hint="pass --yes to skip the question")
        removed = history.remove_before(moment)
    output.info(f"removed {removed} job(s) submitted before {when}")


def _parse_moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"invalid date {text!r} for {option}: expected YYYY-MM-DD or an ISO 8601 time", hint=f"e.g. {option} 2026-01-31"
        ) from None
    return moment if moment.tzinfo else moment.astimezone()  # a bare date or time is the user's local one



@history_app.command("stats")
def history_stats(
    since: Annotated[Optional[str], typer.Option(
        "--since", metavar="DATE", show_default=False, help="Only jobs submitted on or after this date (YYYY-MM-DD or ISO 8601).",
    )] = None,
    api: ApiFilterOpt = None,
    all_: Annotated[bool, typer.Option("--all", help="Count the jobs sent to local APIs (the sandbox) too.")] = False,
    json_: JsonOpt = False,
) -> None:
    """What the recorded jobs add up to: counts, failure and cancel rates, queue wait and run time
    (p50/p95), images per day, and spend per day where the API reported costs.

    Jobs sent to this machine (the sandbox, a local API) cost nothing and are left out, unless
    --all, or --api names that API.

    Examples:

      nanobanana history stats

      nanobanana history stats --since 2026-11-01 --json | jq .spend_usd
    """
    output = make_output(json_, False)
    moment = _parse_moment(since, "--since") if since else None
    with read_history() as history:
        recorded = history.base_urls()
        check_readable(history)
        if api is not None:
            chosen: list[str] | None = [_api_url(api) or ""]
        elif all_:
            chosen = None
        else:
            chosen = [url for url in recorded if not _local_url(url)]
            left_out = history.count(since=moment, base_urls=[url for url in recorded if _local_url(url)])
            if left_out:
                output.note(f"left out {left_out} job(s) sent to a local API (the sandbox); --all counts them")
        stats = history.stats(since=moment, base_urls=chosen)
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
