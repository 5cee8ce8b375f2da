"""Catalog entries (name, price, input schema), cached per model and API so each costs one request a day.

    cache = CatalogCache()
    cache.get(base_url, model_id) -> (ModelInfo, age_seconds) | None   # fresh, checked, not marked stale
    cache.get(base_url, model_id, any_age=True)                        # also expired: when the catalog is unreachable
    cache.put(base_url, info) -> bool                                  # False: the entry failed its check, not cached
    cache.mark_stale(base_url, model_id)                               # the API refused a submit about a field (422/400001)

An entry is checked when it is stored and again when it is read back (the file is outside our
control): an entry whose input schema has no readable `prompt` field is neither cached nor used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..api.input_schema import SchemaSource, parse
from ..api.models import ModelInfo, parse_model_info
from ..errors import BadResponseError
from . import safe_json
from .paths import data_dir, write_private_file

CACHE_FILE = "catalog.json"
CATALOG_TTL_SECONDS = 24 * 3600
CACHE_MAX_BYTES = 4 * 1024 * 1024
SCHEMA_MAX_BYTES = 256 * 1024  # nano-banana's is under 2 KB
SCHEMA_MAX_DEPTH = 16


def _schema_shape_ok(schema: Any) -> bool:
    if schema is None:
        return True
    try:
        text = json.dumps(schema, allow_nan=False)
        if len(text) > SCHEMA_MAX_BYTES or safe_json.depth(text) > SCHEMA_MAX_DEPTH:
            return False
    except (ValueError, RecursionError):  # a NaN or an infinity (not JSON), or nested past the stack
        return False
    properties = schema.get("properties", {}) if isinstance(schema, dict) else None
    return isinstance(properties, dict) and all(
        isinstance(field, dict) and isinstance(field.get("enum", []), list) for field in properties.values()
    )


def entry_problem(info: ModelInfo) -> str | None:
    """Why a catalog entry cannot serve as the schema in effect, or None."""
    if info.input_schema is None:
        return "it has no input schema"
    if not _schema_shape_ok(info.input_schema):
        return "its input schema is too large, too deep or oddly shaped"
    schema = parse(info.input_schema, info.model_id, SchemaSource("api"))
    if schema.field("prompt") is None:
        return "its input schema has no readable prompt field"
    return None


class CatalogCache:
    def __init__(self, path: Path | None = None, *, ttl: float = CATALOG_TTL_SECONDS) -> None:
        self.path = path or data_dir() / CACHE_FILE
        self.ttl = ttl

    def _load(self) -> dict[str, Any]:
        try:
            data = safe_json.loads(self.path.read_bytes(), max_bytes=CACHE_MAX_BYTES)
        except (OSError, ValueError, RecursionError):
            return {}  # a missing or damaged cache is only a cache: fetch again
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, Any]) -> None:
        try:
            # not sort_keys: a schema's properties keep the catalog's order, which `model X` shows
            write_private_file(self.path, json.dumps(data, indent=2) + "\n")
        except OSError:
            pass  # an unwritable cache costs a request next time, nothing more

    @staticmethod
    def _key(base_url: str, model_id: str) -> str:
        return f"{base_url} {model_id}"

    def get(self, base_url: str, model_id: str, *, any_age: bool = False) -> tuple[ModelInfo, float] | None:
        """The cached entry and its age in seconds: younger than the TTL (any age with `any_age`),
        not marked stale, and passing the same check as when it was stored."""
        found = self._load().get(self._key(base_url, model_id))
        if not isinstance(found, dict) or found.get("stale") or not isinstance(found.get("fetched"), (int, float)):
            return None
        age = time.time() - found["fetched"]
        if age < 0 or (age >= self.ttl and not any_age):
            return None
        try:
            info = parse_model_info(found.get("info"), model_id)
        except BadResponseError:  # not an object: a bad entry is only a miss
            return None
        return (info, age) if entry_problem(info) is None else None

    def put(self, base_url: str, info: ModelInfo) -> bool:
        if entry_problem(info) is not None:
            return False
        data = self._load()
        data[self._key(base_url, info.model_id)] = {"fetched": time.time(), "info": info.to_dict()}
        self._save(data)
        return True

    def mark_stale(self, base_url: str, model_id: str) -> None:
        """Never serve this entry again: the API refused a request that it said was valid."""
        data = self._load()
        found = data.get(self._key(base_url, model_id))
        if isinstance(found, dict):
            found["stale"] = True
            self._save(data)
