"""The models the sandbox serves: every nano-banana family id, each a catalog entry.

By default the entries are the bundled snapshot's (api/family_snapshot.json), the same the CLI
falls back on; `load_models(schema_file)` overlays a file's entries, so a test (or
`nanobanana sandbox --schema-file F`) can serve a schema that differs from the snapshot. Input
validation is the CLI's own schema reader (api/input_schema.py), run on the served schema.

A schema file holds one catalog entry, a list of them, or `{"models": [...]}`; each entry needs
`model_id` and `input_schema` (with `properties`), and may set `display_name`, `description`,
`categories`, `base_price_usd` (a number, a decimal string, or null) and `price_unit`.

Output size: a model whose schema has `resolution` draws its long side at the sandbox's
`image_long_side` × K / 2 (1K half the usual size, 2K the usual, 4K twice it): in proportion to
the real sizes, small enough to draw quickly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..api.family import bundled_entries
from ..api.input_schema import InputSchema, SchemaSource, parse
from ..errors import UsageError

IMAGES_FIELD = "image_urls"
RESOLUTION = re.compile(r"^(\d{1,2}(?:\.\d{1,2})?)K$")
MAX_RESOLUTION_K = 8.0
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*){1,4}$")


@dataclass(frozen=True)
class ImageSpec:
    """What the renderer needs to draw one job's images."""

    prompt: str
    aspect_ratio: str  # W:H, or "auto": the first input's shape (1:1 without one)
    output_format: str
    count: int
    scale: float = 1.0  # the long side, relative to the sandbox's usual size

    def long_side(self, usual: int) -> int:
        return max(16, round(usual * self.scale))


def resolution_scale(value: Any) -> float | None:
    """1K -> 0.5, 2K -> 1, 4K -> 2 (see the module's docstring); None for what is not nK."""
    match = RESOLUTION.match(value) if isinstance(value, str) else None
    if match is None or not 0 < float(match[1]) <= MAX_RESOLUTION_K:
        return None
    return float(match[1]) / 2


@dataclass(frozen=True)
class SandboxModel:
    entry: dict[str, Any]  # the catalog entry, as served (input_schema included)
    schema: InputSchema
    output_key: str = "images"  # where /result lists the files under `output`
    count_field: str = "num_images"  # the input field saying how many images a job makes

    @classmethod
    def from_entry(cls, entry: dict[str, Any], origin: str) -> SandboxModel:
        """A model from a catalog entry; UsageError naming `origin` for one the sandbox cannot serve."""
        model_id = entry.get("model_id") if isinstance(entry, dict) else None
        if not isinstance(model_id, str) or not MODEL_ID.match(model_id):
            raise UsageError(f"{origin}: an entry without a usable model_id (letters, digits and ._- segments joined by /)")
        schema = parse(entry.get("input_schema"), model_id, SchemaSource("bundled"))
        if not schema.fields:
            raise UsageError(f"{origin}: {model_id} has no input_schema with properties")
        served = {
            "model_id": model_id,
            "display_name": entry.get("display_name") or model_id,
            "description": entry.get("description") or "",
            "categories": [c for c in entry.get("categories") or [] if isinstance(c, str)],
            "kind": "model",
            "base_price_usd": entry.get("base_price_usd"),
            "price_unit": entry.get("price_unit", "output"),
            "input_schema": entry["input_schema"],
        }
        return cls(served, schema)

    @property
    def model_id(self) -> str:
        return str(self.entry["model_id"])

    @property
    def categories(self) -> list[str]:
        return list(self.entry["categories"])

    @property
    def takes_images(self) -> bool:
        return self.schema.field(IMAGES_FIELD) is not None

    def problems(self, body: Any) -> list[tuple[str, str]]:
        """(field, message) for each violation of the served schema, as the 422 `detail` lists them."""
        return self.schema.problems(body)

    def job_input(self, body: dict[str, Any]) -> dict[str, Any]:
        """The input as the job runs it: the schema's fields only, defaults filled in."""
        defaults = {item.name: item.default for item in self.schema.fields if item.has_default}
        given = {name: body[name] for name in self.schema.names if body.get(name) is not None}
        return {**defaults, **given}

    def image_spec(self, job_input: dict[str, Any]) -> ImageSpec:
        scale = resolution_scale(job_input.get("resolution")) if self.schema.field("resolution") else None
        return ImageSpec(
            prompt=str(job_input.get("prompt", "")),
            aspect_ratio=str(job_input.get("aspect_ratio") or ("auto" if self.takes_images else "1:1")),
            output_format=str(job_input.get("output_format") or "png"),
            count=int(job_input.get(self.count_field, 1)),
            scale=1.0 if scale is None else scale,
        )

    def cost(self, job_input: dict[str, Any]) -> float | str | None:
        """The job's cost in the price's own type (a decimal string stays one); None when the price is unknown."""
        price, count = self.entry["base_price_usd"], self.image_spec(job_input).count
        if isinstance(price, str):
            try:
                return f"{(Decimal(price) * count).quantize(Decimal('0.0001'))}"
            except InvalidOperation:
                return None
        if isinstance(price, (int, float)) and not isinstance(price, bool):
            return round(price * count, 4)
        return None

    def output(self, urls: list[str]) -> dict[str, Any]:
        return {self.output_key: urls}

    def input_schema(self) -> dict[str, Any]:
        return dict(self.entry["input_schema"])

    def catalog_entry(self, *, with_schema: bool) -> dict[str, Any]:
        """The model as `GET /v1/models` lists it (and `GET /v1/models/{id}`, schema included)."""
        entry = {key: value for key, value in self.entry.items() if key != "input_schema"}
        entry["model_url"] = f"https://www.runcomfy.com/models/{self.model_id}"
        entry["inputs"] = list(self.schema.names)
        entry["required_inputs"] = [item.name for item in self.schema.fields if item.required]
        if with_schema:
            entry["input_schema"] = self.input_schema()
        return entry

    def matches(self, search: str, category: str, kind: str) -> bool:
        """The catalog's filters: search is a case-insensitive match on id, name or description."""
        text = f"{self.model_id}\n{self.entry['display_name']}\n{self.entry['description']}".lower()
        return (
            search.lower() in text
            and (not category or category in self.categories)
            and (not kind or kind == "model")
        )


def _file_entries(path: Path) -> list[Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise UsageError(f"cannot read the schema file {path}: {exc}", hint="give a JSON file of catalog entries") from None
    if isinstance(document, dict) and isinstance(document.get("models"), list):
        return list(document["models"])
    return document if isinstance(document, list) else [document]


def load_models(schema_file: Path | None = None) -> dict[str, SandboxModel]:
    """The bundled snapshot's models, with a schema file's entries replacing (or adding to) them by id."""
    models = {entry["model_id"]: SandboxModel.from_entry(entry, "the bundled snapshot") for entry in bundled_entries()}
    if schema_file is not None:
        for entry in _file_entries(schema_file):
            model = SandboxModel.from_entry(entry, str(schema_file))
            models[model.model_id] = model
    return models


MODELS: dict[str, SandboxModel] = load_models()
