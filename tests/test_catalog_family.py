"""The schema in effect per model and API (engine/catalog.py over stores/catalog.py), against the
sandbox: live, then cached; refreshed; marked stale; the bundled snapshot when the catalog cannot
be asked; and a served schema that differs from the snapshot is the one validation follows."""

from __future__ import annotations

import json
import socket
import time

import pytest

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.input_schema import validate
from nanobanana_cli.api.retry import RetryPolicy
from nanobanana_cli.engine.catalog import NO_TOKEN, UNREACHABLE, Catalog
from nanobanana_cli.errors import AuthError, InvalidInputError, UsageError
from nanobanana_cli.sandbox.models import load_models
from nanobanana_cli.stores.catalog import CATALOG_TTL_SECONDS, CatalogCache

from .conftest import SENTINEL_TOKEN
from .test_sandbox_family import T2I_2, write_schema_file

EDIT = "google/nano-banana-2/edit"


def catalog_of(sandbox, cache: CatalogCache, *, token: str = SENTINEL_TOKEN) -> Catalog:
    client = Client(token, sandbox.base_url, retry=RetryPolicy(retries=0))
    return Catalog(cache, client.base_url, client)


def catalog_requests(sandbox, model_id: str) -> int:
    return sum(1 for r in sandbox.stats.requests if r.method == "GET" and r.path == f"/v1/models/{model_id}")


@pytest.fixture
def cache(tmp_path) -> CatalogCache:
    return CatalogCache(tmp_path / "catalog.json")


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_fetched_once_per_model_then_cached_and_refresh_asks_again(sandbox, cache):
    catalog = catalog_of(sandbox, cache)
    first = catalog.entry(EDIT)
    assert first.source.kind == "api" and first.source.describe() == "the live catalog" and first.schema.field("image_urls")
    again = catalog.entry(EDIT)
    assert again.source.kind == "cache" and 0 <= again.source.age_seconds < 60 and again.schema.names == first.schema.names
    assert catalog_requests(sandbox, EDIT) == 1
    catalog.entry(T2I_2)
    assert catalog_requests(sandbox, T2I_2) == 1 and catalog_requests(sandbox, EDIT) == 1  # one entry per model
    assert catalog.entry(EDIT, refresh=True).source.kind == "api" and catalog_requests(sandbox, EDIT) == 2


def test_each_api_has_its_own_cache(start_sandbox, cache, tmp_path):
    live = start_sandbox()
    other = start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    assert catalog_of(live, cache).entry(T2I_2).info.display_name == "Nano Banana 2 Text to Image"
    assert catalog_of(other, cache).entry(T2I_2).info.display_name == "NB2 (test file)"
    assert catalog_of(live, cache).entry(T2I_2).source.kind == "cache"
    assert catalog_of(other, cache).entry(T2I_2).info.display_name == "NB2 (test file)"


def test_a_served_schema_that_differs_from_the_snapshot_is_the_one_validation_follows(start_sandbox, cache, tmp_path):
    sandbox = start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    entry = catalog_of(sandbox, cache).entry(T2I_2)
    assert entry.price_per_image == 0.1  # sent as the string "0.1"
    with pytest.raises(InvalidInputError) as caught:
        validate({"prompt": "a fox", "resolution": "2K"}, entry.schema)  # the snapshot allows 2K
    assert "resolution: '2K' is not one of 1K, 8K" in str(caught.value) and "from the live catalog" in str(caught.value)
    assert validate({"prompt": "a fox", "resolution": "8K"}, entry.schema) == {"prompt": "a fox", "resolution": "8K"}
    with pytest.raises(InvalidInputError, match="'seed' is not a field"):
        validate({"prompt": "a fox", "seed": 1}, entry.schema)


def test_an_unreachable_catalog_serves_the_bundled_snapshot_and_says_so(cache):
    client = Client(SENTINEL_TOKEN, closed_port_url(), retry=RetryPolicy(retries=0))
    entry = Catalog(cache, client.base_url, client).entry(EDIT)
    assert entry.source.kind == "bundled" and entry.source.note.startswith(UNREACHABLE)
    assert entry.info.price_unit == "output" and entry.price_per_image is None  # unknown, not guessed
    with pytest.raises(InvalidInputError, match=r"from the bundled snapshot \(not checked against the live API\)"):
        validate({"prompt": "x"}, entry.schema)
    assert not cache.path.exists()  # nothing bundled is ever cached as if the API had said it


def test_an_unreachable_catalog_prefers_an_expired_cached_answer(sandbox, cache, monkeypatch):
    catalog_of(sandbox, cache).entry(EDIT)
    later = time.time() + CATALOG_TTL_SECONDS + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert cache.get(sandbox.base_url, EDIT) is None  # expired
    client = Client(SENTINEL_TOKEN, sandbox.base_url, retry=RetryPolicy(retries=0))
    sandbox.stop()
    entry = Catalog(cache, client.base_url, client).entry(EDIT)
    assert entry.source.kind == "cache" and entry.source.age_seconds > CATALOG_TTL_SECONDS and entry.source.note.startswith(UNREACHABLE)
    assert "cached 25 h ago" in entry.source.describe()


def test_without_a_token_the_cache_then_the_snapshot_serve(sandbox, cache):
    offline = Catalog(cache, sandbox.base_url)
    entry = offline.entry(EDIT)
    assert entry.source.kind == "bundled" and entry.source.note == NO_TOKEN and sandbox.stats.requests == []
    catalog_of(sandbox, cache).entry(EDIT)
    assert offline.entry(EDIT).source.kind == "cache"


def test_the_family_stops_asking_once_the_catalog_is_unreachable(cache):
    client = Client(SENTINEL_TOKEN, closed_port_url(), retry=RetryPolicy(retries=0))
    asked = []
    original = client.model_info
    client.model_info = lambda model_id=None: asked.append(model_id) or original(model_id)  # type: ignore[method-assign]
    entries = Catalog(cache, client.base_url, client).family()
    assert len(entries) == 8 and {entry.source.kind for entry in entries} == {"bundled"} and len(asked) == 1


def test_an_unknown_model_is_a_usage_error_not_a_fallback(sandbox, cache):
    with pytest.raises(UsageError, match="the catalog does not know the model google/nano-banana-9/edit"):
        catalog_of(sandbox, cache).entry("google/nano-banana-9/edit")


def test_a_rejected_token_is_not_hidden_by_the_snapshot(sandbox, cache):
    with pytest.raises(AuthError):
        catalog_of(sandbox, cache, token="wrong-token").entry(EDIT)


def test_an_unusable_answer_is_neither_used_nor_cached(start_sandbox, cache, tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"model_id": EDIT, "input_schema": {"properties": {"text": {"type": "string"}}}}))
    sandbox = start_sandbox(models=load_models(path))
    entry = catalog_of(sandbox, cache).entry(EDIT)
    assert entry.source.kind == "bundled" and "no readable prompt field" in entry.source.note
    assert cache.get(sandbox.base_url, EDIT) is None


def test_a_refusal_marks_the_cached_schema_stale_so_the_next_use_asks_again(sandbox, cache):
    catalog = catalog_of(sandbox, cache)
    catalog.entry(EDIT)
    error = catalog.refused(EDIT, InvalidInputError("the API refused the request (HTTP 422): resolution: bad"))
    assert "marked stale" in str(error) and error.hint == f"`nanobanana model {EDIT} --refresh` shows the schema the API has now"
    assert cache.get(sandbox.base_url, EDIT) is None
    assert catalog.entry(EDIT).source.kind == "api" and catalog_requests(sandbox, EDIT) == 2


@pytest.mark.parametrize(
    ("tamper", "price", "hit"),
    [
        (lambda info: info.update(base_price_usd="0.0780"), 0.078, True),
        (lambda info: info.update(base_price_usd="a lot"), None, True),
        (lambda info: info.pop("input_schema"), None, False),
        (lambda info: info.update(input_schema={"properties": "x"}), None, False),
        (lambda info: info.clear() or info.update(x=1), None, False),
    ],
)
def test_a_cached_entry_is_checked_again_when_read(sandbox, cache, tamper, price, hit):
    catalog_of(sandbox, cache).entry(EDIT)
    data = json.loads(cache.path.read_text())
    tamper(data[f"{sandbox.base_url} {EDIT}"]["info"])
    cache.path.write_text(json.dumps(data))
    found = cache.get(sandbox.base_url, EDIT)
    assert (found is not None) == hit
    if hit:
        assert found[0].base_price_usd == price


@pytest.mark.parametrize("content", ["", "[]", "{", json.dumps({"k": {"fetched": "yesterday"}}), "9" * 5000])
def test_a_damaged_cache_file_is_only_a_miss(cache, content):
    cache.path.write_text(content)
    assert cache.get("http://127.0.0.1:1", EDIT) is None
    cache.mark_stale("http://127.0.0.1:1", EDIT)  # and marking a missing entry is harmless


def test_a_price_by_another_unit_is_not_a_price_per_image(start_sandbox, cache, tmp_path):
    path = write_schema_file(tmp_path / "schema.json", base_price_usd=0.02, price_unit="second")
    entry = catalog_of(start_sandbox(models=load_models(path)), cache).entry(T2I_2)
    assert entry.info.base_price_usd == 0.02 and entry.price_per_image is None
