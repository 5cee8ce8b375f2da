"""The model's input schema, written once: fields, allowed values, limits and defaults.

Everything that knows about the input reads it from here: validation before a submit, the
sandbox's server-side check, config-file validation, `--help` defaults and shell completion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODEL_ID = "google/nano-banana/text-to-image"


@dataclass(frozen=True)
class InputField:
    """One top-level field of the submit body."""

    name: str
    kind: type
    default: Any
    description: str
    choices: tuple[Any, ...] = ()
    max_length: int | None = None
    required: bool = False
    # spellings we accept from users and send as their canonical value (never sent as-is)
    aliases: dict[str, Any] = field(default_factory=dict)

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` as the server sees it (strict: no aliases, no trimming), or None."""
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{self.name}: must be one of {self.choices_text}" if self.choices else f"{self.name}: must be an integer"
        if self.kind is str and not isinstance(value, str):
            return f"{self.name}: must be a string"
        if self.required and isinstance(value, str) and not value.strip():
            return f"{self.name}: required non-empty string"
        if self.max_length is not None and len(value) > self.max_length:
            return f"{self.name}: at most {self.max_length} characters"
        if self.choices and value not in self.choices:
            return f"{self.name}: must be one of {self.choices_text}"
        return None

    @property
    def choices_text(self) -> str:
        return ", ".join(str(choice) for choice in self.choices)

    @property
    def choices_spoken(self) -> str:
        """The choices as a sentence says them: "1, 2, 3 or 4"."""
        *most, last = (str(choice) for choice in self.choices)
        return f"{', '.join(most)} or {last}" if most else last


@dataclass(frozen=True)
class ModelSchema:
    model_id: str
    fields: tuple[InputField, ...]

    def __getitem__(self, name: str) -> InputField:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {item.name: item.default for item in self.fields if not item.required}

    def problems(self, body: Any) -> list[str]:
        """Every violation of the published schema in a submit body, as a server would report them."""
        if not isinstance(body, dict):
            return ["body must be a JSON object"]
        found = []
        for item in self.fields:
            if item.name not in body:
                if item.required:
                    found.append(f"{item.name}: required")
                continue
            problem = item.problem(body[item.name])
            if problem:
                found.append(problem)
        return found


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
