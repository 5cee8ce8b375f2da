"""`explain`: a job's timeline and cost."""

from typing import Annotated, Any, Optional

import typer

from ..errors import NotFoundError, UsageError
from ..runs.context import check_readable, read_history
from ..sanitise import shown
from .options import (
    JsonOpt,
    LastOpt,
    make_output,
    resolve_request_id,
)


def job_explain(
    request_id: Annotated[Optional[str], typer.Argument(
        help="A request id, a unique prefix of one (8 characters at least), or a local: key from `history` "
        "(default: the most recent job).", show_default=False,
    )] = None,
    last: LastOpt = False,
    json_: JsonOpt = False,
) -> None:
    """A job's timeline from the history: submitted, queue wait, run time, downloads (time, bytes,
    sha256 and provenance of each file), cost, and every recorded event.

    Examples:

      nanobanana explain

      nanobanana explain 3f2a9c1e-... --json | jq .timeline
    """
    from ..engine.explain import explain

    output = make_output(json_, False)
    if request_id is not None and last:
        raise UsageError("pass a request id or --last, not both")
    # explain reads nothing but the history: one that cannot be read is the error, not "no job recorded"
    with read_history() as history:
        # the history is this machine's, whatever API each job went to: the latest is the latest recorded
        if request_id is not None:
            request_id = resolve_request_id(history, request_id)
            entry = history.get(request_id)
        else:
            entry = next(iter(history.entries(limit=1)), None)
        check_readable(history)
    if entry is None:
        raise NotFoundError(
            f"job {request_id} is not in this machine's history" if request_id else "no job recorded yet",
            hint="list recorded jobs with `nanobanana history`",
        )
    if request_id is None:
        output.note(f"latest job: {entry.request_id}")
    document = explain(entry)
    output.emit(document, _explain_lines(document))


def _explain_lines(document: dict[str, Any]) -> list[str]:
    def seconds(value: float | None) -> str:
        return "unknown" if value is None else f"{value:.2f}s"

    cost = "unknown" if document["cost"] is None else f"${document['cost']:.4f}"
    # the history's values (a prompt, a server's state, a file's path) each stay inside their own line
    lines = [
        f"job {shown(document['request_id'])}: {shown(document['status'])}  ({shown(str(document['input'].get('prompt', ''))[:60])})",
        f"  submitted   {shown(document['submitted_at'])}",
        f"  queue wait  {seconds(document['queue_wait_seconds'])}",
        f"  run time    {seconds(document['run_seconds'])}",
        f"  total       {seconds(document['total_seconds'])} (the server's created_at to finished_at)",
        f"  cost        {cost}",
    ]
    for event in document["timeline"]:
        details = ", ".join(f"{shown(key)} {shown(value)}" for key, value in event.items() if key not in ("at", "event"))
        lines.append(f"  {shown(event['at'])}  {shown(event['event'])}" + (f" ({details})" if details else ""))
    for item in document["files"]:
        lines.append(
            f"  file {shown(item['path'])}: {shown(item['bytes'])} bytes, sha256 {shown(str(item['sha256'])[:16])}…, "
            f"provenance {shown(item.get('provenance'))}"
        )
    return lines

