"""What every use case shares: the session a command works in (one history, one client), where its
images go, what a submit will cost, and the request a dry run shows.

A command builds its `Settings`, then calls a use case (`runs/`), which opens one `Session`: the
history it records jobs in is also the journal every submit is written to before its POST.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import NanobananaError
from ..stores.tokens import TOKEN_ENV_VARS

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.models import GenerationInput
    from ..engine.catalog import ModelEntry
    from ..engine.lifecycle import DownloadPlan
    from ..engine.naming import NameTemplate
    from ..render.output import Output
    from ..stores.history import History
    from ..stores.settings import Settings


class Session(NamedTuple):  # not a dataclass: ~1 ms to define, before every submit
    """One command's history and client: the submit journal writes through this same history."""

    history: History
    client: Client


@contextmanager
def open_session(output: Output, settings: Settings, *, sandbox: bool = False, max_connections: int = 16) -> Iterator[Session]:
    from ..engine.connect import open_client

    with open_history(output) as history, open_client(
        settings, notices=output, sandbox=sandbox, max_connections=max_connections, journal=history
    ) as client:
        yield Session(history, client)


def parse_name(name: str | None, variables: Iterable[str] = ()) -> NameTemplate | None:
    """--name, checked before anything else happens (a bad one is refused before any submit)."""
    if name is None:
        return None
    from ..engine.naming import NameTemplate

    return NameTemplate.parse(name, variables)


def download_plan(settings: Settings, template: NameTemplate | None = None, *, fetching: bool = False) -> DownloadPlan:
    """Where, how large and how named: the output directory is created and proved writable before any submit.

    `fetching` (watch, result --download): the jobs were submitted earlier, with their own
    directory and names; only an explicit -o or --name overrides those.
    """
    from ..engine.lifecycle import DownloadPlan, prepare_output_dir

    explicit = not fetching or settings.resolved("output_dir").source == "flag"
    directory = prepare_output_dir(settings["output_dir"]) if explicit else Path(settings["output_dir"]).expanduser()
    return DownloadPlan(directory, settings["max_download_mb"] * 1024 * 1024, template, settings["metadata"],
                        explicit_directory=explicit, rename=fetching and template is not None)


def base_url_flag(settings: Settings) -> str | None:
    """The API when it came from --base-url: a resume hint must name it, a plain command would not find the job."""
    return settings.base_url if settings.resolved("base_url").source == "flag" else None


def open_history(output: Output) -> History:
    """The history for a command that can do its work without it: a database that cannot be read is
    one warning, then the command carries on."""
    from ..stores.history import History

    return History(warn=output.warn)


@contextmanager
def read_history() -> Iterator[History]:
    """The history for a command that reads nothing else (`history`, `explain`): a database that
    cannot be read is its error, with the fix, not a warning followed by "no jobs"."""
    from ..stores.history import History

    with History() as history:
        history.count()  # opens the database: a failure shows now, before anything is said about jobs
        check_readable(history)
        yield history


def check_readable(history: History) -> None:
    """Raise if the history has failed (a statement can fail after it opened)."""
    if history.failure is not None:
        import shlex

        where = shlex.quote(str(history.path))
        raise NanobananaError(
            f"the job history cannot be read ({history.failure}): {history.path}",
            hint=f"move it aside and a new one is started: mv {where} {where}.broken",
        )


def token_reference(settings: Settings) -> str:
    """How a printed shell command should refer to the active token, never the token itself."""
    try:
        source = settings.token().source
    except NanobananaError:
        return "$RUNCOMFY_API_TOKEN"
    return f"${source}" if source in TOKEN_ENV_VARS else "$(nanobanana auth token)"


def show_dry_run(output: Output, settings: Settings, requests: list[tuple[int | None, GenerationInput]], curl: bool) -> None:
    from ..api.described import describe_submit

    described = [(line, describe_submit(settings.base_url, generation)) for line, generation in requests]
    output.dry_run(described, curl=curl, token_reference=token_reference(settings))


def within_budget(
    output: Output, client: Client, images: int, max_cost: float | None, *, announce: bool = False, entry: ModelEntry | None = None
) -> None:
    """Refuse a submit above --max-cost; say what it will cost when asked to (`announce`) or when capped.

    The price comes from the catalog (cached a day), so a plain `generate` costs no extra request;
    `entry` is the catalog entry of the model in use, when the run already read it.
    """
    if max_cost is None and not announce:
        return
    from ..engine.pricing import check_budget, price_per_image
    from ..stores.catalog import CatalogCache

    price = entry.price_per_image if entry is not None else price_per_image(client, CatalogCache())
    model_id = entry.model_id if entry is not None else client.model_id
    if price is None and max_cost is None:
        output.note(f"the price of {model_id} is unknown (the catalog does not say); no estimate")
        return
    estimate = check_budget(images, price, max_cost, model_id)
    if estimate is not None:
        within = f", within --max-cost ${max_cost:.4f}" if max_cost is not None else ""
        output.note(f"estimated cost ${estimate:.4f} for {images} image(s){within}")


def offline_estimate(settings: Settings, model_id: str, images: int) -> str:
    """What `images` images will cost, from the cached catalog (any age) or the bundled snapshot: no request,
    so a dry run and a confirmation can say it without an account or a network."""
    from .models import offline_catalog

    try:
        entry = offline_catalog(settings).offline_entry(model_id, "not asked")
    except NanobananaError:
        entry = None
    price = entry.price_per_image if entry is not None else None
    if price is None:
        # the bundled snapshot carries no RunComfy price: only a cached catalog answer can give one
        why = "the catalog gives no price per image" if entry is not None and entry.source.kind == "cache" else "not cached from the catalog"
        return f"price unknown for {images} image(s) on {model_id}: {why}, `nanobanana model {model_id}` asks it"
    return f"estimated cost ${images * price:.4f} for {images} image(s) at ${price:.4f} each"
