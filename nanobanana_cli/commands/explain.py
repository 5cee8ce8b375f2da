"""`explain` and `model`: a job's timeline and cost, and the model's price and schema."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ..errors import NotFoundError, UsageError
from ..runs.context import check_readable, read_history
from ..sanitise import shown
from .options import (
    BaseUrlOpt,
    JsonOpt,
    LastOpt,
    RetriesOpt,
    TokenOpt,
    command_settings,
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


def model_show(
    model: Annotated[
        str | None,
        typer.Argument(help="An alias (nano-banana, nano-banana-2, nano-banana-pro, nano-banana-2-lite) or a full model id.",
                       show_default=False),
    ] = None,
    edit: Annotated[bool, typer.Option("--edit", help="Show the alias's edit model instead of its text-to-image one.")] = False,
    refresh: Annotated[bool, typer.Option("--refresh", help="Ask the catalog again instead of using the cached entry.")] = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A model's fields (types, values, limits and defaults), its price per image, and where its
    schema comes from: the live catalog, the cache (a day at most), or the bundled snapshot.

    Examples:

      nanobanana model

      nanobanana model nano-banana-2 --edit

      nanobanana model google/nano-banana/pro/text-to-image --refresh --json | jq .fields
    """
    from ..api.family import resolve
    from ..engine.catalog import open_catalog

    output = make_output(json_, False)
    model_id = resolve(model, "edit" if edit else "generate")
    settings = command_settings(token, base_url=base_url, retries=retries)
    with open_catalog(settings, notices=output) as catalog:
        entry = catalog.entry(model_id, refresh=refresh)
    document = {**entry.to_dict(), "base_url": settings.base_url}
    info, source = entry.info, entry.source
    if entry.price_per_image is not None:
        price = f"${entry.price_per_image:.4f} per image"
    elif info.base_price_usd is not None:
        price = f"${info.base_price_usd:.4f} per {info.price_unit}, not per image"
    else:
        price = "unknown (the catalog does not say)"
    # the catalog's schema is the server's text: every name, value and default is escaped
    lines = [f"{shown(info.model_id)}: {shown(info.display_name or '')}", f"  price:   {price}",
             f"  schema:  from {shown(source.describe())}"]
    for row in document["fields"]:
        details = [row["type"], *(["required"] if row["required"] else [])]
        if row["values"]:
            details.append(f"one of {', '.join(map(shown, row['values']))}")
        if row["limits"]:
            details.append(shown(row["limits"]))
        if row["default"] is not None:
            details.append(f"default {shown(row['default'])}")
        lines.append(f"  input:   {shown(row['name'])}: {shown(', '.join(map(str, details)))}")
    output.emit(document, lines)
    if source.note:
        output.note(f"not from the live catalog: {source.note}")
