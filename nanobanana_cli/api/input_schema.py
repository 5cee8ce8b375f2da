"""The schema in effect: a catalog `input_schema` (untrusted JSON Schema) read into fields, and
every check made against it before a submit.

API for the commands and use cases:

    schema = parse(raw_input_schema, model_id, source)   # never raises; what it cannot read is in .ignored
    payload = validate({"prompt": p, "aspect_ratio": None, ...}, schema)
        # -> the body to send: only the schema's fields, unset (None) ones left out for the server's
        #    defaults; InvalidInputError naming each bad field, its valid values and where the
        #    schema came from (source.describe(): the live catalog / cached 3 h ago / bundled)
    value = coerce("safety_tolerance", "5", schema)       # a `--set KEY=VALUE` string, typed by the schema
    field_values("aspect_ratio", schema) -> ("auto", "21:9", …)   # for completion; () when open-ended
    schema.field(name) -> Field | None; schema.rows() -> one dict per field, for `model X`
    schema.problems(body) -> [(field, message)]          # what the sandbox answers 422 with

A schema is parsed leniently and bounded: unknown keywords are ignored, a field whose name or
type cannot be read is skipped and listed in `ignored`, and a keyword whose value is malformed
(an enum of objects, a negative maxLength) is dropped, leaving that check to the server. Types
are strict where the schema is: an integer is a real int (not 2.0, not True), a number is finite.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError
from .models import printable

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")
MAX_FIELDS = 200
MAX_ENUM_VALUES = 1000
MAX_ENUM_TEXT = 200
MAX_DEFAULT_ITEMS = 100
MAX_COUNT = 10**9  # the largest maxLength / maxItems taken as a number rather than as noise
MAX_REF_DEPTH = 4
MAX_BRANCHES = 20
VALUES_SHOWN = 20  # an error lists at most this many valid values
COMPLETION_RANGE = 32  # an integer field with at most this many values completes them
FIELD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_INTEGER_TEXT = re.compile(r"^[+-]?\d{1,30}$")


@dataclass(frozen=True)
class SchemaSource:
    """Where a schema came from: "api" (the live catalog), "cache" (an earlier answer) or "bundled"."""

    kind: str
    age_seconds: float | None = None
    note: str | None = None  # why this source served, when it is not the live catalog's answer

    def describe(self) -> str:
        if self.kind == "api":
            return "the live catalog"
        if self.kind == "cache":
            return f"the catalog, cached {format_age(self.age_seconds)} ago"
        return "the bundled snapshot (not checked against the live API)"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "age_seconds": self.age_seconds, "note": self.note}


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    if seconds < 90:
        return f"{max(0, int(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


_MISSING: Any = object()


@dataclass(frozen=True)
class Field:
    """One field of the submit body, as far as its schema could be read."""

    name: str
    types: tuple[str, ...] = ()  # JSON types allowed; () when the schema does not say (or we cannot read it)
    required: bool = False
    description: str = ""
    enum: tuple[Any, ...] | None = None
    default: Any = _MISSING
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    items: Field | None = None  # an array's item schema

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING

    @property
    def type_name(self) -> str:
        shown = [kind for kind in self.types if kind != "null"]
        if "array" in shown and self.items is not None and self.items.types:
            shown[shown.index("array")] = f"array of {self.items.type_name}"
        return " or ".join(shown) or "any"

    def problem(self, value: Any) -> str | None:
        """What the schema says is wrong with `value`, or None. The text starts with the field's name."""
        found = _problem(self, value)
        return f"{self.name}: {found}" if found else None

    def values(self) -> tuple[str, ...]:
        """The values to offer (completion, `model X`): the enum, true/false, or a short integer range."""
        if self.enum is not None:
            return tuple(show(value) for value in self.enum)
        if self.types == ("boolean",):
            return ("true", "false")
        if self.types == ("integer",) and self.minimum is not None and self.maximum is not None:
            low, high = math.ceil(self.minimum), math.floor(self.maximum)
            if 0 <= high - low < COMPLETION_RANGE:
                return tuple(str(number) for number in range(low, high + 1))
        if self.items is not None:
            return self.items.values()
        return ()

    def limits(self) -> str:
        """The constraints besides type and values, as `model X` shows them."""
        parts = [self.range_text()] if self.minimum is not None or self.maximum is not None else []
        if self.max_length is not None:
            parts.append(f"at most {self.max_length} characters")
        if self.min_items is not None or self.max_items is not None:
            parts.append(f"{self.min_items or 0}–{self.max_items if self.max_items is not None else '…'} items")
        if self.items is not None and self.items.max_length is not None:
            parts.append(f"each at most {self.items.max_length} characters")
        return ", ".join(parts)

    def range_text(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"from {show(self.minimum)} to {show(self.maximum)}"
        if self.minimum is not None:
            return f"at least {show(self.minimum)}"
        return f"at most {show(self.maximum)}" if self.maximum is not None else ""

    def to_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "required": self.required,
            "values": list(self.values()),
            "default": self.default if self.has_default else None,
            "limits": self.limits() or None,
            "description": self.description or None,
        }


@dataclass(frozen=True)
class InputSchema:
    model_id: str
    fields: tuple[Field, ...]
    source: SchemaSource
    ignored: tuple[str, ...] = field(default=())  # what could not be read, for `model X` and --debug

    def field(self, name: str) -> Field | None:
        for item in self.fields:
            if item.name == name:
                return item
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields)

    def rows(self) -> list[dict[str, Any]]:
        return [item.to_row() for item in self.fields]

    def problems(self, body: Any) -> list[tuple[str, str]]:
        """(field, message) for every violation in a request body, unknown keys aside (servers ignore them)."""
        if not isinstance(body, dict):
            return [("body", "body: must be a JSON object")]
        found: list[tuple[str, str]] = []
        for item in self.fields:
            if item.name not in body or body[item.name] is None:
                if item.required:
                    found.append((item.name, f"{item.name}: required"))
                continue
            problem = item.problem(body[item.name])
            if problem:
                found.append((item.name, problem))
        return found

    def where(self) -> str:
        return f"schema of {self.model_id} from {self.source.describe()}"

    def hint(self) -> str:
        refresh = " --refresh" if self.source.kind == "cache" else ""
        return f"`nanobanana model {self.model_id}{refresh}` lists its fields and values"


def show(value: Any) -> str:
    """A schema value as a user types it: true/false, 2 not 2.0, strings bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- reading an untrusted schema -----------------------------------------------------------------


def parse(raw: Any, model_id: str, source: SchemaSource) -> InputSchema:
    """Read a catalog `input_schema`; never raises, whatever its shape."""
    ignored: list[str] = []
    if not isinstance(raw, dict):
        return InputSchema(model_id, (), source, ("the input schema is not a JSON object",))
    properties = raw.get("properties")
    if not isinstance(properties, dict):
        return InputSchema(model_id, (), source, ("the input schema has no properties",))
    required_raw = raw.get("required")
    required = {name for name in required_raw if isinstance(name, str)} if isinstance(required_raw, list) else set()
    fields: list[Field] = []
    for name, prop in properties.items():
        if len(fields) >= MAX_FIELDS:
            ignored.append(f"fields after the first {MAX_FIELDS}")
            break
        if not isinstance(name, str) or not FIELD_NAME.match(name):
            ignored.append(f"a field named {printable(str(name), limit=40)!r}")
            continue
        resolved = _resolve(prop, raw, 0)
        if resolved is None:
            ignored.append(f"{name}: its schema is not an object")
            continue
        fields.append(_field(name, resolved, raw, name in required, ignored))
    for name in sorted(required - {item.name for item in fields}):
        if isinstance(name, str) and FIELD_NAME.match(name):
            ignored.append(f"{name}: required but not described")
    return InputSchema(model_id, tuple(fields), source, tuple(ignored[:50]))


def _resolve(prop: Any, root: dict[str, Any], depth: int) -> dict[str, Any] | None:
    """A property with its local `$ref` and `allOf` merged in, and an Optional's anyOf unwrapped."""
    if not isinstance(prop, dict) or depth > MAX_REF_DEPTH:
        return None
    merged: dict[str, Any] = {}
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/")[:MAX_REF_DEPTH]:
            target = target.get(part) if isinstance(target, dict) else None
        merged.update(_resolve(target, root, depth + 1) or {})
    all_of = prop.get("allOf")
    if isinstance(all_of, list):
        for branch in all_of[:MAX_BRANCHES]:
            merged.update(_resolve(branch, root, depth + 1) or {})
    branches = prop.get("anyOf", prop.get("oneOf"))
    if isinstance(branches, list):
        resolved = [_resolve(branch, root, depth + 1) for branch in branches[:MAX_BRANCHES]]
        readable = [branch for branch in resolved if branch is not None]
        real = [branch for branch in readable if branch.get("type") != "null"]
        if len(real) == 1:
            merged.update(real[0])
        elif real:
            merged["type"] = [branch.get("type") for branch in real]
        if len(real) < len(readable) and "type" in merged:
            kinds = merged["type"] if isinstance(merged["type"], list) else [merged["type"]]
            merged["type"] = [*kinds, "null"]
    merged.update({key: value for key, value in prop.items() if key not in ("$ref", "allOf", "anyOf", "oneOf")})
    return merged


def _types(value: Any) -> tuple[str, ...] | None:
    """The JSON types a `type` keyword allows; None when it names something else."""
    names = value if isinstance(value, list) else [value]
    flat: list[str] = []
    for name in names[:len(JSON_TYPES) + 1]:
        if isinstance(name, list):  # an anyOf of unions, unwrapped above
            flat.extend(item for item in name if isinstance(item, str))
        elif isinstance(name, str):
            flat.append(name)
    if not flat or any(name not in JSON_TYPES for name in flat):
        return None
    return tuple(dict.fromkeys(flat))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT else None


def _scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_ENUM_TEXT and printable(value) == value
    return value is None or isinstance(value, bool) or _number(value) is not None


def _field(name: str, prop: dict[str, Any], root: dict[str, Any], required: bool, ignored: list[str], *, depth: int = 0) -> Field:
    types: tuple[str, ...] = ()
    if "type" in prop:
        read = _types(prop["type"])
        if read is None:
            ignored.append(f"{name}: type {printable(str(prop['type']), limit=40)}")
        else:
            types = read
    enum: tuple[Any, ...] | None = None
    if "enum" in prop:
        values = prop["enum"]
        if isinstance(values, list) and 0 < len(values) <= MAX_ENUM_VALUES and all(_scalar(value) for value in values):
            enum = tuple(values)
        else:
            ignored.append(f"{name}: an enum that is not a short list of plain values")
    if not types and enum is not None:
        kinds = {"string" if isinstance(v, str) else "boolean" if isinstance(v, bool) else "number" for v in enum if v is not None}
        types = tuple(kinds) if len(kinds) == 1 else ()
    default = prop.get("default", _MISSING)
    if default is not _MISSING and not (
        _scalar(default) or (isinstance(default, list) and len(default) <= MAX_DEFAULT_ITEMS and all(_scalar(v) for v in default))
    ):
        ignored.append(f"{name}: its default")
        default = _MISSING
    items = None
    if "array" in types and depth == 0:
        item_prop = _resolve(prop.get("items"), root, 0)
        items = _field(f"{name}[]", item_prop, root, False, ignored, depth=1) if item_prop is not None else None
    description = prop.get("description")
    return Field(
        name=name,
        types=types,
        required=required,
        description=printable(" ".join(description.split()), limit=300) if isinstance(description, str) else "",
        enum=enum,
        default=default,
        minimum=_number(prop.get("minimum")),
        maximum=_number(prop.get("maximum")),
        min_length=_count(prop.get("minLength")),
        max_length=_count(prop.get("maxLength")),
        min_items=_count(prop.get("minItems")),
        max_items=_count(prop.get("maxItems")),
        items=items,
    )


# -- checking values -------------------------------------------------------------------------------


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return _number(value) is not None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return value is None


def _same(first: Any, second: Any) -> bool:
    """JSON equality: True is not 1, while 1 is 1.0."""
    if isinstance(first, bool) != isinstance(second, bool):
        return False
    return bool(first == second)


def _listing(values: tuple[Any, ...]) -> str:
    shown = ", ".join(show(value) for value in values[:VALUES_SHOWN])
    return shown + (f", … ({len(values)} values)" if len(values) > VALUES_SHOWN else "")


def _problem(item: Field, value: Any) -> str | None:
    if item.types and not any(_is_type(value, kind) for kind in item.types):
        wanted = item.type_name
        if item.enum is not None:
            return f"{_quoted(value)} is not one of {_listing(item.enum)}"
        bounds = f" {item.range_text()}" if item.range_text() else ""
        return f"must be {'an' if wanted[0] in 'aeiou' else 'a'} {wanted}{bounds}, not {_quoted(value)}"
    if item.enum is not None and not any(_same(value, allowed) for allowed in item.enum):
        return f"{_quoted(value)} is not one of {_listing(item.enum)}"
    number = _number(value)
    if number is not None and (item.minimum is not None and number < item.minimum or item.maximum is not None and number > item.maximum):
        return f"{_quoted(value)} is out of range: it must be {item.range_text()}"
    if isinstance(value, str):
        if item.max_length is not None and len(value) > item.max_length:
            return f"{len(value)} characters long; at most {item.max_length} are accepted"
        if item.min_length is not None and len(value) < item.min_length:
            return f"at least {item.min_length} characters are needed"
        if item.required and not value.strip():
            return "must not be empty"
    if isinstance(value, list):
        if item.max_items is not None and len(value) > item.max_items:
            return f"{len(value)} items; at most {item.max_items} are accepted"
        if item.min_items is not None and len(value) < item.min_items:
            return f"{len(value)} items; at least {item.min_items} are needed"
        if item.items is not None:
            for position, element in enumerate(value):
                found = _problem(item.items, element)
                if found:
                    return f"item {position + 1}: {found}"
    return None


def _quoted(value: Any) -> str:
    if isinstance(value, str):
        return repr(printable(value, limit=60))
    if isinstance(value, (list, dict)):
        return f"a list of {len(value)}" if isinstance(value, list) else "an object"
    return repr(value) if isinstance(value, float) else show(value)


def validate(fields: Mapping[str, Any], schema: InputSchema) -> dict[str, Any]:
    """The body to send for `fields` (None = unset), in the schema's field order; raises on any problem."""
    unknown = [name for name, value in fields.items() if value is not None and schema.field(name) is None]
    problems = [f"{printable(name, limit=40)!r} is not a field of this model (its fields: {', '.join(schema.names)})" for name in unknown]
    given = {name: value for name, value in fields.items() if value is not None and name not in unknown}
    problems += [message for _, message in schema.problems(given)]
    if problems:
        raise InvalidInputError(f"{'; '.join(problems)} ({schema.where()})", hint=schema.hint())
    return {name: given[name] for name in schema.names if name in given}


def coerce(name: str, text: str, schema: InputSchema) -> Any:
    """A `--set KEY=VALUE` value typed by the schema: integer, number, true/false, an enum value
    (matched case-insensitively when unambiguous), for an array a JSON array (`["a","b"]`) or a comma
    list (`a,b`, each item typed), for an object a JSON object; checked like validate."""
    item = schema.field(name)
    if item is None:
        raise InvalidInputError(
            f"{printable(name, limit=40)!r} is not a field of this model (its fields: {', '.join(schema.names)}) ({schema.where()})",
            hint=schema.hint(),
        )
    value = _typed(item, text)
    problem = item.problem(value)
    if problem:
        raise InvalidInputError(f"{problem} ({schema.where()})", hint=schema.hint())
    return value


def _typed(item: Field, text: str) -> Any:
    if item.enum is not None:
        for allowed in item.enum:
            if show(allowed) == text:
                return allowed
        folded = [allowed for allowed in item.enum if show(allowed).casefold() == text.strip().casefold()]
        if len(folded) == 1:
            return folded[0]
    stripped = text.strip()
    if "array" in item.types and stripped.startswith("[") or "object" in item.types and stripped.startswith("{"):
        return _json_value(item, stripped)  # its items are JSON already: checked as they are, not typed
    if "array" in item.types:
        parts = [part.strip() for part in text.split(",")] if stripped else []
        return [_typed(item.items, part) if item.items is not None else part for part in parts]
    for kind in ("integer", "number", "boolean"):
        if kind not in item.types:
            continue
        if kind == "integer" and _INTEGER_TEXT.match(stripped):
            return int(stripped)
        if kind == "number":
            try:
                number = float(stripped)
            except ValueError:
                continue
            if math.isfinite(number):
                return int(number) if _INTEGER_TEXT.match(stripped) else number
        if kind == "boolean" and stripped.lower() in ("true", "false"):
            return stripped.lower() == "true"
    return text  # a string, or a type we cannot type: the check that follows says what is wrong


def _json_value(item: Field, text: str) -> Any:
    """A `--set KEY=[…]` or `KEY={…}` value, read as JSON; malformed JSON is refused naming the field."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON number")

    try:
        return json.loads(text, parse_constant=refuse)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError; RecursionError: absurd nesting
        reason = printable(str(error), limit=80)
        if text.startswith("["):
            kind, hint = "array", f"""give a JSON array, e.g. --set '{item.name}=["a","b"]', or a comma list: --set {item.name}=a,b"""
        else:
            kind, hint = "object", f"""give a JSON object, e.g. --set '{item.name}={{"key": "value"}}'"""
        raise InvalidInputError(f"--set {item.name}: {_quoted(text)} is not a valid JSON {kind} ({reason})", hint=hint) from None


def field_values(name: str, schema: InputSchema) -> tuple[str, ...]:
    """The values a field offers, as typed on a command line; () for an unknown or open-ended field."""
    item = schema.field(name)
    return item.values() if item is not None else ()
