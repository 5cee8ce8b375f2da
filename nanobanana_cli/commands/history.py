"""`nanobanana history`: find yesterday's job again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .options import JsonOpt, make_output, open_history

if TYPE_CHECKING:
    from ..stores.history import HistoryEntry


def history_list(
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, help="How many jobs to show.")] = 20,
    status: Annotated[Optional[str], typer.Option("--status", help="Only jobs in this state (succeeded, failed, in_queue, ...).", show_default=False)] = None,
    search: Annotated[Optional[str], typer.Option("--search", help="Only jobs whose prompt contains this text.", show_default=False)] = None,
    json_: JsonOpt = False,
) -> None:
    """List recorded jobs, newest first. Every submitted job is recorded before it is waited on.

    Examples:

      nanobanana history -n 5

      nanobanana history --status failed --json | jq -r '.[].request_id'
    """
    output = make_output(json_, False)
    with open_history(output) as history:
        entries = history.entries(limit=limit, status=status.lower() if status else None, search=search)
    if not entries:
        output.info("no jobs recorded yet")
    output.emit([entry.to_dict() for entry in entries], [_row(entry) for entry in entries])


def _row(entry: HistoryEntry) -> str:
    when = entry.submitted_at.replace("T", " ")[:19]
    shape = f"{entry.input.get('num_images', '?')}× {entry.input.get('aspect_ratio', '?')} {entry.input.get('output_format', '?')}"
    prompt = entry.input.get("prompt", "")
    prompt = prompt if len(prompt) <= 60 else prompt[:59] + "…"
    return f"{when}  {entry.request_id}  {entry.status:<11}  {shape:<13}  {prompt}"
