"""Reading JSON that came from outside: an image's provenance, a sidecar, a batch manifest, the
catalog. Bounded in size and nesting depth, checked before `json.loads` recurses (a few thousand
nested brackets are a RecursionError, which no `except ValueError` catches), and read field by
field with each field's type checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import accumulate
from typing import Any, TypeVar

MAX_BYTES = 1024 * 1024  # a provenance record or a manifest line is a few hundred bytes
MAX_DEPTH = 64  # ours are at most four levels deep; a JSON Schema from a catalog, a dozen

# A JSON string (escapes included), and anything that is not a bracket: what the depth count skips.
# An unterminated string runs to the end, and a lone final backslash is taken as part of it, so every
# attempt at a quote matches: no scan to the end is ever repeated from the next quote (linear time).
_STRING = re.compile(r'"(?:[^"\\]+|\\.?)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEPS = {"[": 1, "{": 1, "]": -1, "}": -1}

T = TypeVar("T")


class UntrustedJSONError(ValueError):
    """JSON refused before it was parsed (too big or too deep), or that could not be parsed."""


def loads(data: str | bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, refusing text over `max_bytes` or nested deeper than `max_depth`:
    an UntrustedJSONError (a ValueError) for every way the text can be bad."""
    if len(data) > max_bytes:
        raise UntrustedJSONError(f"over {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UntrustedJSONError("not UTF-8") from None
    if depth(data) > max_depth:
        raise UntrustedJSONError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except RecursionError:  # cannot happen within the depth limit, but never a crash
        raise UntrustedJSONError(f"nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        raise UntrustedJSONError(f"{exc.msg} at {where}") from None


def loads_object(data: str | bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """`loads` for text that must hold one JSON object."""
    found = loads(data, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(found, dict):
        raise UntrustedJSONError("not a JSON object")
    return found


def depth(text: str) -> int:
    """How deeply brackets nest in `text`, strings skipped: the most brackets open at once in any
    prefix, which is how deep `json.loads` recurses before it reaches the end or an error. Found
    without recursion, in linear time."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(0, max(accumulate(map(_STEPS.__getitem__, brackets)), default=0))


def typed(data: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    """`data[name]` if it is a `kind` (never a bool where a number is asked for), else None."""
    value = data.get(name)
    if isinstance(value, bool) and kind is not bool:
        return None
    if kind is float and isinstance(value, int):
        return float(value)  # type: ignore[return-value]
    return value if isinstance(value, kind) else None


def text_mapping(value: Any) -> dict[str, str] | None:
    """`value` if it is an object whose every key and value is a string, else None."""
    if isinstance(value, dict) and all(isinstance(item, str) for pair in value.items() for item in pair):
        return value
    return None
