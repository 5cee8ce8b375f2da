"""The model's catalog entry (name, price, schema), cached per API so prices cost no request each run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ..api.models import ModelInfo
from .paths import data_dir, write_private_file

CACHE_FILE = "catalog.json"
CATALOG_TTL_SECONDS = 24 * 3600


class CatalogCache:
    def __init__(self, path: Path | None = None, *, ttl: float = CATALOG_TTL_SECONDS) -> None:
        self.path = path or data_dir() / CACHE_FILE
        self.ttl = ttl

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
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
        try:
            info = ModelInfo(**{**found["info"], "categories": tuple(found["info"].get("categories", ()))})
        except (TypeError, KeyError):
            return None
        return info, age

    def put(self, base_url: str, info: ModelInfo) -> None:
        data = self._load()
        data[f"{base_url} {info.model_id}"] = {"fetched": time.time(), "info": info.to_dict()}
        try:
            write_private_file(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        except OSError:
            pass  # an unwritable cache costs a request next time, nothing more
