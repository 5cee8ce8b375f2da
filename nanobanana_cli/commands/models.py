"""`models` and `model`: the nano-banana family, with each model's price and where its schema comes
from, and one model's fields."""

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import UsageError
from .options import BaseUrlOpt, JsonOpt, RetriesOpt, TokenOpt, command_settings, complete_model, make_output

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


def model_show(
    model: Annotated[
        Optional[str],
        typer.Argument(help="An alias (nano-banana, nano-banana-2, nano-banana-pro, nano-banana-2-lite) or a full model id.",
                       show_default=False, autocompletion=complete_model),
    ] = None,
    model_option: Annotated[
        Optional[str],
        typer.Option("-m", "--model", metavar="MODEL", show_default=False, autocompletion=complete_model,
                     help="The model, as generate takes it: the same as the MODEL argument."),
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

      nanobanana model --model nano-banana-pro

      nanobanana model google/nano-banana/pro/text-to-image --refresh --json | jq .fields
    """
    from ..api.family import resolve
    from ..api.models import printable
    from ..engine.catalog import open_catalog
    from ..sanitise import shown

    output = make_output(json_, False)
    if model is not None and model_option is not None:
        raise UsageError(
            f"two models given: {printable(model, limit=60)!r} and --model {printable(model_option, limit=60)!r}",
            hint="give the model once, as the argument or with --model",
        )
    model_id = resolve(model if model is not None else model_option, "edit" if edit else "generate")
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


def _row(entry: "ModelEntry", member: Any, task: str) -> dict[str, Any]:
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
