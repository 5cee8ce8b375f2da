"""`models`: the nano-banana family, with each model's price and where its schema comes from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from .options import BaseUrlOpt, JsonOpt, RetriesOpt, TokenOpt, command_settings, make_output

if TYPE_CHECKING:
    from ..engine.catalog import ModelEntry


def models_list(
    refresh: Annotated[bool, typer.Option("--refresh", help="Ask the catalog again instead of using cached entries.")] = False,
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List the nano-banana family: each alias, its text-to-image and edit model ids, the price per
    image, and where each schema comes from (the live catalog, the cache with its age, or the
    bundled snapshot when the catalog cannot be asked).

    Examples:

      nanobanana models

      nanobanana models --json | jq '.models[] | {model_id, base_price_usd}'
    """
    from ..api.family import member_of, task_of
    from ..engine.catalog import open_catalog

    output = make_output(json_, False)
    settings = command_settings(token, base_url=base_url, retries=retries)
    with open_catalog(settings, notices=output) as catalog:
        entries = catalog.family(refresh=refresh)
    rows = [_row(entry, member_of(entry.model_id), task_of(entry.model_id)) for entry in entries]
    output.emit({"base_url": settings.base_url, "models": rows}, [_line(row) for row in rows])
    for note in dict.fromkeys(entry.source.note for entry in entries if entry.source.note):
        output.note(f"not from the live catalog: {note}")


def _row(entry: ModelEntry, member: Any, task: str) -> dict[str, Any]:
    return {
        "alias": member.alias if member is not None else None,
        "task": task,
        "model_id": entry.model_id,
        "display_name": entry.info.display_name,
        "base_price_usd": entry.info.base_price_usd,
        "price_unit": entry.info.price_unit,
        "price_per_image_usd": entry.price_per_image,
        "source": entry.source.kind,
        "age_seconds": None if entry.source.age_seconds is None else round(entry.source.age_seconds),
        "source_note": entry.source.note,
    }


def _line(row: dict[str, Any]) -> str:
    from ..api.input_schema import format_age

    price = "price unknown" if row["price_per_image_usd"] is None else f"${row['price_per_image_usd']:.4f}/image"
    source = {"api": "live", "cache": f"cached {format_age(row['age_seconds'])} ago", "bundled": "bundled snapshot"}[row["source"]]
    return f"{row['alias'] or '':<20} {row['task']:<9} {row['model_id']:<42} {price:<15} {source}"
