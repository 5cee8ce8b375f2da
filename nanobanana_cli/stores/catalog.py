"""The model's catalog entry (name, price, schema), cached per API so prices cost no request each run.

The entry comes from a server, so it is checked before it is used or cached (a bad one would
otherwise be served from the cache for a day), and checked again when read back from the cache.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..api.models import ModelInfo, parse_model_info
from . import safe_json
from .paths import data_dir, write_private_file

CACHE_FILE = "catalog.json"
CATALOG_TTL_SECONDS = 24 * 3600
CACHE_MAX_BYTES = 4 * 1024 * 1024
SCHEMA_MAX_BYTES = 256 * 1024  # nano-banana's is under 2 KB
SCHEMA_MAX_DEPTH = 16


def checked_info(info: ModelInfo) -> ModelInfo:
    """`info`, without its input schema unless that has the shape `model` shows: an object whose
    `properties` (if any) are objects, each `enum` a list, small and shallow enough to cache."""
    return info if _schema_shape_ok(info.input_schema) else replace(info, input_schema=None)


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


class CatalogCache:
    def __init__(self, path: Path | None = None, *, ttl: float = CATALOG_TTL_SECONDS) -> None:
        self.path = path or data_dir() / CACHE_FILE
        self.ttl = ttl

    def _load(self) -> dict[str, Any]:
        try:
            data = safe_json.loads(self.path.read_bytes(), max_bytes=CACHE_MAX_BYTES)
        except (OSError, ValueError):
            return {}  # a missing or damaged cache is only a cache: fetch again
        return data if isinstance(data, dict) else {}

    def get(self, base_url: str, model_id: str) -> tuple[ModelInfo, float] | None:
        """The cached entry and its age in seconds, if one is younger than the TTL."""
        found = self._load().get(f"{base_url} {model_id}")
        if not isinstance(found, dict) or not isinstance(found.get("fetched"), (int, float)):
            return None
        age = time.time() - found["fetched"]
        if not 0 <= age < self.ttl:
            return None
        if not isinstance(found.get("info"), dict):
            return None
        return checked_info(parse_model_info(found["info"], model_id)), age  # every field's type checked again

    def put(self, base_url: str, info: ModelInfo) -> None:
        data = self._load()
        data[f"{base_url} {info.model_id}"] = {"fetched": time.time(), "info": checked_info(info).to_dict()}
        try:
            write_private_file(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        except OSError:
            pass  # an unwritable cache costs a request next time, nothing more
