"""The schema in effect for a model, and where it came from: the live catalog, the cache, or the
bundled snapshot. The catalog is the authority; the snapshot only serves when it cannot be asked.

API for the commands (generate/batch/regen/edit --model, model, models):

    catalog = Catalog(CatalogCache(), client.base_url, client)   # beside a client a command already has
    with open_catalog(settings, notices=output) as catalog: ...  # or its own (client None without a token)
    entry = catalog.entry(model_id, refresh=False)
    entry.schema         # InputSchema: validate / coerce / field_values (api/input_schema.py)
    entry.source         # SchemaSource: "api", "cache" (age_seconds) or "bundled"; .note says why
    entry.price_per_image -> float | None   # base_price_usd per output image; None when unknown, as it
                                            # always is from the bundled snapshot (no RunComfy price)
    entry.to_dict()      # the catalog part of `model --json`
    catalog.family(refresh=False) -> list[ModelEntry]     # every family id, in order
    raise catalog.refused(model_id, error)   # the API answered 422 / 400001 to a submit:
        # the cached schema is marked stale, and the error (exit 2) says so

Order: a fresh cached entry, else the live catalog (its answer checked, then cached), else (the
catalog unreachable, its answer unusable, or no token) the newest cached entry of any age, else
the bundled snapshot. A live "unknown model" (400001) is an answer, not an outage: it is a
usage error, and the snapshot never overrides it. Other API errors (a rejected token) propagate.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api.family import bundled_entry, family_ids
from ..api.input_schema import InputSchema, SchemaSource, parse
from ..api.models import ModelInfo, parse_model_info
from ..errors import AuthError, BadResponseError, InvalidInputError, UnavailableError, UsageError
from ..stores.catalog import entry_problem

if TYPE_CHECKING:
    from ..api.client import Client
    from ..stores.catalog import CatalogCache
    from ..stores.settings import Settings
    from .connect import Notices

PER_IMAGE_UNITS = ("output", "image")  # "image" is what this tool's sandbox said before it followed the API


@dataclass(frozen=True)
class ModelEntry:
    info: ModelInfo
    schema: InputSchema

    @property
    def model_id(self) -> str:
        return self.info.model_id

    @property
    def source(self) -> SchemaSource:
        return self.schema.source

    @property
    def price_per_image(self) -> float | None:
        """The base price of one output image; None when unknown or charged by another unit."""
        unit = self.info.price_unit
        return self.info.base_price_usd if unit is None or unit in PER_IMAGE_UNITS else None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info.to_dict(),
            "source": self.source.kind,
            "age_seconds": None if self.source.age_seconds is None else round(self.source.age_seconds),
            "source_note": self.source.note,
            "fields": self.schema.rows(),
        }


def _entry(info: ModelInfo, source: SchemaSource) -> ModelEntry:
    return ModelEntry(info, parse(info.input_schema, info.model_id, source))


UNREACHABLE = "the catalog could not be reached"
NO_TOKEN = "no API token is set, so the catalog was not asked"


@dataclass
class Catalog:
    """The catalog of one API as this process sees it: the client to ask (None without a token) and the cache."""

    cache: CatalogCache
    base_url: str
    client: Client | None = None
    # Each model's entry as this instance read it from the cache: a run asks once per job (a batch
    # line, a matrix job), and the cache file it would read and check again each time can be megabytes.
    _cached: dict[str, ModelEntry] = field(default_factory=dict, init=False, repr=False, compare=False)

    def entry(self, model_id: str, *, refresh: bool = False) -> ModelEntry:
        """The schema in effect for `model_id` (see the module's docstring for the order)."""
        if refresh:
            self._cached.pop(model_id, None)
        elif model_id in self._cached:
            return self._cached[model_id]
        found = self._look_up(model_id, refresh=refresh)
        if found.source.kind == "cache":  # the others ask again: the cache may hold this model by the next call
            self._cached[model_id] = found
        return found

    def _look_up(self, model_id: str, *, refresh: bool) -> ModelEntry:
        if self.client is None:
            return self.offline_entry(model_id, NO_TOKEN)
        if not refresh:
            cached = self.cache.get(self.base_url, model_id)
            if cached is not None:
                return _entry(cached[0], SchemaSource("cache", cached[1]))
        try:
            info = self.client.model_info(model_id)
        except (UnavailableError, BadResponseError) as exc:
            return self.offline_entry(model_id, f"{UNREACHABLE} ({exc})")
        except InvalidInputError:
            self.cache.mark_stale(self.base_url, model_id)
            raise UsageError(
                f"the catalog does not know the model {model_id}", hint="`nanobanana models` lists the family"
            ) from None
        problem = entry_problem(info)
        if problem is not None:
            return self.offline_entry(model_id, f"the catalog's entry is not usable: {problem}")
        self.cache.put(self.base_url, info)
        return _entry(info, SchemaSource("api"))

    def offline_entry(self, model_id: str, reason: str) -> ModelEntry:
        """The newest cached entry of any age, else the bundled snapshot's; `reason` says why not the catalog."""
        cached = self.cache.get(self.base_url, model_id, any_age=True)
        if cached is not None:
            return _entry(cached[0], SchemaSource("cache", cached[1], note=reason))
        bundled = bundled_entry(model_id)
        if bundled is None:
            raise UsageError(
                f"no schema for {model_id}: {reason}, and the bundled snapshot does not know this model",
                hint="try again when the catalog can be reached; `nanobanana models` lists the family",
            )
        # The snapshot's price is no published RunComfy price (its notes say so), and prices are
        # never guessed: offline, a model's price is unknown, however the estimate is asked for.
        bundled["base_price_usd"] = None
        return _entry(parse_model_info(bundled, model_id), SchemaSource("bundled", note=reason))

    def family(self, *, refresh: bool = False) -> list[ModelEntry]:
        """Every family model's entry. Once the catalog proves unreachable the rest are not asked:
        each would wait out its own retries for the same answer."""
        entries: list[ModelEntry] = []
        unreachable: str | None = None
        for model_id in family_ids():
            if unreachable is not None:
                entries.append(self.offline_entry(model_id, unreachable))
                continue
            entry = self.entry(model_id, refresh=refresh)
            entries.append(entry)
            if entry.source.note is not None and entry.source.note.startswith(UNREACHABLE):
                unreachable = entry.source.note
        return entries

    def mark_stale(self, model_id: str) -> None:
        """The next look-up of `model_id` (this process's or the next's) asks the catalog again."""
        self.cache.mark_stale(self.base_url, model_id)
        self._cached.pop(model_id, None)

    def refused(self, model_id: str, error: InvalidInputError) -> InvalidInputError:
        """A submit the API refused (422, or 400001 about the model) although the schema in effect
        allowed it: the cached schema is marked stale, and the returned error says so."""
        self.mark_stale(model_id)
        return InvalidInputError(
            f"{error}; the cached schema of {model_id} was marked stale",
            hint=f"`nanobanana model {model_id} --refresh` shows the schema the API has now",
        )


@contextmanager
def open_catalog(settings: Settings, *, notices: Notices | None = None, cache: CatalogCache | None = None) -> Iterator[Catalog]:
    """The catalog of the settings' API; without a token its client is None, and the cache and the
    bundled snapshot answer."""
    from ..stores.catalog import CatalogCache
    from .connect import open_client

    cache = cache or CatalogCache()
    try:
        settings.token()
    except AuthError:
        yield Catalog(cache, settings.base_url)
        return
    with open_client(settings, notices=notices) as client:
        yield Catalog(cache, client.base_url, client)
