"""`explain` and `model`: a job's timeline and cost, and the model's price and schema."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ..errors import NotFoundError, UsageError
from ..sanitise import shown
from .options import BaseUrlOpt, JsonOpt, LastOpt, RetriesOpt, TokenOpt, command_settings, make_output, open_history


def job_explain(
    request_id: Annotated[Optional[str], typer.Argument(help="A request id (default: the most recent job).", show_default=False)] = None,
    last: LastOpt = False,
    json_: JsonOpt = False,
) -> None:
    """A job's timeline from the history: submitted, queue wait, run time, downloads (time, bytes,
    sha256 and provenance of each file), cost, and every recorded event.

    Examples:

      nanobanana explain

      nanobanana explain 3f2a9c1e-... --json | jq .timeline
    """
    from ..api.models import validate_request_id
    from ..engine.timeline import explain

    output = make_output(json_, False)
    if request_id is not None and last:
        raise UsageError("pass a request id or --last, not both")
    with open_history(output) as history:
        # the history is this machine's, whatever API each job went to: the latest is the latest recorded
        entry = history.get(validate_request_id(request_id)) if request_id is not None else next(iter(history.entries(limit=1)), None)
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


def model_show(
    refresh: Annotated[bool, typer.Option("--refresh", help="Ask the API again instead of using the cached entry.")] = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """The model's catalog entry: name, price per image and input schema (cached for a day).

    Examples:

      nanobanana model

      nanobanana model --json | jq .base_price_usd
    """
    from ..engine.connect import open_client
    from ..engine.pricing import model_info
    from ..stores.catalog import CatalogCache

    output = make_output(json_, False)
    settings = command_settings(token, base_url=base_url, retries=retries)
    with open_client(settings, notices=output) as client:
        info, source = model_info(client, CatalogCache(), refresh=refresh)
    document = {**info.to_dict(), "source": source, "base_url": settings.base_url}
    price = "unknown" if info.base_price_usd is None else f"${info.base_price_usd:.4f} per {info.price_unit or 'image'}"
    lines = [f"{shown(info.model_id)}: {shown(info.display_name or '')}", f"  price:   {price}"]
    # the catalog's schema is the server's text: each name, type, choice and default is escaped
    for name, field in (info.input_schema or {}).get("properties", {}).items():
        choices = f" one of {', '.join(map(shown, field['enum']))}" if field.get("enum") else ""
        default = f" (default {shown(field['default'])})" if "default" in field else ""
        lines.append(f"  input:   {shown(name)}: {shown(field.get('type', '?'))}{choices}{default}")
    output.emit(document, lines)
    output.info(f"from the {'cache' if source == 'cache' else 'API'} ({settings.base_url})")
