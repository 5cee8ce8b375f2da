"""The model's input schema, written once: fields, allowed values, limits and defaults.

Everything that knows about this model's input reads it from here: validation before a submit,
config-file validation, `--help` defaults and shell completion. The family's other models, and
the sandbox, follow the catalog's schema instead (api/input_schema.py); the bundled snapshot's
entry for this model is this schema (tests/test_family_schema.py checks they agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

MODEL_ID = "google/nano-banana/text-to-image"


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class InputField(NamedTuple):
    """One top-level field of the submit body."""

    name: str
    kind: type
    default: Any
    description: str
    choices: tuple[Any, ...] = ()
    max_length: int | None = None
    required: bool = False
    # spellings we accept from users and send as their canonical value (never sent as-is)
    aliases: Mapping[str, Any] = MappingProxyType({})

    @property
    def choices_spoken(self) -> str:
        """The choices as a sentence says them: "1, 2, 3 or 4"."""
        *most, last = (str(choice) for choice in self.choices)
        return f"{', '.join(most)} or {last}" if most else last


class ModelSchema:
    """The built-in model's fields, looked up by name (one instance: TEXT_TO_IMAGE)."""

    __slots__ = ("fields", "model_id")

    def __init__(self, model_id: str, fields: tuple[InputField, ...]) -> None:
        self.model_id = model_id
        self.fields = fields

    def __getitem__(self, name: str) -> InputField:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)


TEXT_TO_IMAGE = ModelSchema(
    MODEL_ID,
    (
        InputField("prompt", str, None, "What to draw.", max_length=1000, required=True),
        InputField(
            "aspect_ratio", str, "16:9", "Aspect ratio W:H.",
            choices=("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"),
        ),
        InputField("output_format", str, "png", "Image format.", choices=("png", "jpeg", "webp"), aliases={"jpg": "jpeg"}),
        InputField("num_images", int, 1, "How many images.", choices=(1, 2, 3, 4)),
    ),
)

# File extension for each output format (and for formats detected in downloaded bytes).
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
