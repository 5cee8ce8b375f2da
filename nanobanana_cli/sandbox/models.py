"""The models the sandbox serves: one registry entry per model id.

Input validation is the schema in api/schema.py, never restated here; an entry adds what the
server knows besides: catalog text, price, and how outputs are listed. A second model is one
more entry in MODELS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.schema import TEXT_TO_IMAGE, ModelSchema

JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class ImageSpec:
    """What the renderer needs to draw one job's images."""

    prompt: str
    aspect_ratio: str
    output_format: str
    count: int


@dataclass(frozen=True)
class SandboxModel:
    schema: ModelSchema
    display_name: str
    description: str
    categories: tuple[str, ...]
    price_per_image_usd: float
    price_unit: str = "image"
    output_key: str = "images"  # where /result lists the files under `output`
    count_field: str = "num_images"  # the input field saying how many images a job makes

    @property
    def model_id(self) -> str:
        return self.schema.model_id

    def problems(self, body: Any) -> list[str]:
        return self.schema.problems(body)

    def job_input(self, body: dict[str, Any]) -> dict[str, Any]:
        """The input as the job runs it: the schema's fields only, defaults filled in."""
        given = {item.name: body[item.name] for item in self.schema.fields if item.name in body}
        return {**self.schema.defaults(), **given}

    def image_spec(self, job_input: dict[str, Any]) -> ImageSpec:
        return ImageSpec(
            prompt=str(job_input.get("prompt", "")),
            aspect_ratio=str(job_input.get("aspect_ratio") or "1:1"),
            output_format=str(job_input.get("output_format") or "png"),
            count=int(job_input.get(self.count_field, 1)),
        )

    def cost(self, job_input: dict[str, Any]) -> float:
        return round(self.price_per_image_usd * self.image_spec(job_input).count, 4)

    def output(self, urls: list[str]) -> dict[str, Any]:
        return {self.output_key: urls}

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema the catalog publishes, derived from api/schema.py."""
        properties: dict[str, Any] = {}
        for item in self.schema.fields:
            prop: dict[str, Any] = {"type": JSON_TYPES[item.kind], "description": item.description}
            if item.default is not None:
                prop["default"] = item.default
            if item.choices:
                prop["enum"] = list(item.choices)
            if item.max_length is not None:
                prop["maxLength"] = item.max_length
            properties[item.name] = prop
        required = [item.name for item in self.schema.fields if item.required]
        return {"type": "object", "properties": properties, "required": required}

    def catalog_entry(self, *, with_schema: bool) -> dict[str, Any]:
        """The model as `GET /v1/models` lists it (and `GET /v1/models/{id}`, schema included)."""
        entry: dict[str, Any] = {
            "model_id": self.model_id,
            "display_name": self.display_name,
            "description": self.description,
            "categories": list(self.categories),
            "kind": "model",
            "base_price_usd": self.price_per_image_usd,
            "price_unit": self.price_unit,
            "model_url": f"https://www.runcomfy.com/models/{self.model_id}",
            "inputs": [item.name for item in self.schema.fields],
            "required_inputs": [item.name for item in self.schema.fields if item.required],
        }
        if with_schema:
            entry["input_schema"] = self.input_schema()
        return entry

    def matches(self, search: str, category: str, kind: str) -> bool:
        """The catalog's filters: search is a case-insensitive match on id, name or description."""
        text = f"{self.model_id}\n{self.display_name}\n{self.description}".lower()
        return (
            search.lower() in text
            and (not category or category in self.categories)
            and (not kind or kind == "model")
        )


NANO_BANANA_TEXT_TO_IMAGE = SandboxModel(
    schema=TEXT_TO_IMAGE,
    display_name="Nano Banana (Gemini 2.5 Flash Image) Text to Image",
    description="Google's nano-banana: images from a text prompt, in ten aspect ratios.",
    categories=("text-to-image",),
    price_per_image_usd=0.039,
)

MODELS: dict[str, SandboxModel] = {model.model_id: model for model in (NANO_BANANA_TEXT_TO_IMAGE,)}
