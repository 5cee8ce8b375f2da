"""A catalog reads a model's cached entry once: the jobs of a run (a batch's lines) ask it again
and again, and the cache file can be megabytes. A refresh or a refused submit reads it again."""

from __future__ import annotations

from nanobanana_cli.errors import InvalidInputError
from nanobanana_cli.stores.catalog import CatalogCache

from .test_catalog_family import EDIT, catalog_of


def test_the_cached_entry_is_read_once_per_catalog_until_a_refresh_or_a_refusal(sandbox, tmp_path):
    cache = CatalogCache(tmp_path / "catalog.json")
    catalog_of(sandbox, cache).entry(EDIT)  # the catalog asked, its answer cached
    reads = []
    original = cache.get
    cache.get = lambda *args, **kwargs: reads.append(args) or original(*args, **kwargs)  # type: ignore[method-assign]
    catalog = catalog_of(sandbox, cache)
    assert [catalog.entry(EDIT).source.kind for _ in range(20)] == ["cache"] * 20 and len(reads) == 1
    assert catalog.entry(EDIT, refresh=True).source.kind == "api"
    assert catalog.entry(EDIT).source.kind == "cache" and len(reads) == 2
    catalog.refused(EDIT, InvalidInputError("refused"))  # marked stale: asked again
    assert catalog.entry(EDIT).source.kind == "api"
