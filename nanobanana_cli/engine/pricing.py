"""What a submit will cost, before it is sent: the catalog's price per image, cached, times the images."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NanobananaError, UsageError

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.models import ModelInfo
    from ..stores.catalog import CatalogCache
    from .catalog import ModelEntry


def model_info(client: Client, cache: CatalogCache, *, refresh: bool = False) -> tuple[ModelInfo, str]:
    """The catalog entry of the client's model and where it came from ("api", "cache" or "bundled")."""
    entry = _entry(client, cache, refresh=refresh)
    return entry.info, entry.source.kind


def price_per_image(client: Client, cache: CatalogCache) -> float | None:
    """The price of one image of the client's model, or None when the catalog cannot say (it is
    undocumented, so it may be missing; a price per another unit is no price per image)."""
    try:
        return _entry(client, cache).price_per_image
    except NanobananaError:
        return None


def _entry(client: Client, cache: CatalogCache, *, refresh: bool = False) -> ModelEntry:
    """Read as every other command reads the catalog (engine/catalog.py `Catalog.entry`): one reader,
    one order (fresh cache, the API, then the newest cache or the bundled snapshot)."""
    from .catalog import Catalog

    return Catalog(cache, client.base_url, client).entry(client.model_id, refresh=refresh)


def check_budget(images: int, price: float | None, max_cost: float | None, model: str) -> float | None:
    """The estimate in USD; refuses when it would exceed `max_cost` or cannot be known while one is set."""
    estimate = None if price is None else round(images * price, 4)
    if max_cost is None:
        return estimate
    if estimate is None:
        raise UsageError(
            f"--max-cost is set but the price of {model} is unknown (the catalog did not say); nothing was submitted",
            hint=f"check `nanobanana model {model}`, or drop --max-cost",
        )
    if estimate > max_cost:
        raise UsageError(
            f"estimated cost ${estimate:.4f} ({images} image(s) × ${price:.4f}) exceeds --max-cost ${max_cost:.4f}; "
            "nothing was submitted",
            hint="raise --max-cost, or ask for fewer images",
        )
    return estimate
