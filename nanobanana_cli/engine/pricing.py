"""What a submit will cost, before it is sent: the catalog's price per image, cached, times the images."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NanobananaError, UsageError

if TYPE_CHECKING:
    from ..api.client import Client
    from ..api.models import ModelInfo
    from ..stores.catalog import CatalogCache


def model_info(client: Client, cache: CatalogCache, *, refresh: bool = False) -> tuple[ModelInfo, str]:
    """The catalog entry and where it came from ("cache" or "api"); API errors propagate."""
    from ..stores.catalog import checked_info

    cached = None if refresh else cache.get(client.base_url, client.model_id)
    if cached is not None:
        return cached[0], "cache"
    info = checked_info(client.model_info())  # before it is shown or cached
    cache.put(client.base_url, info)
    return info, "api"


def price_per_image(client: Client, cache: CatalogCache) -> float | None:
    """The price, or None when the catalog cannot say (it is undocumented, so it may be missing)."""
    try:
        return model_info(client, cache)[0].base_price_usd
    except NanobananaError:
        return None


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
