"""Prompt matrices: `a {red,blue} car in {fog,snow}` is four prompts, one per combination.

`{a,b}` lists alternatives in place (named `1`, `2`, … by position); `{name}` takes the values
given with `--var name=x,y`; `{{` and `}}` are literal braces. The first group varies slowest,
so the expansion reads like nested loops written left to right.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from ..errors import UsageError

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@dataclass(frozen=True)
class Expansion:
    """One prompt of the matrix and the value each variable took in it."""

    prompt: str
    values: dict[str, str]


def parse_vars(specs: list[str]) -> dict[str, list[str]]:
    """`--var style=ink,oil` options into {"style": ["ink", "oil"]}."""
    variables: dict[str, list[str]] = {}
    for spec in specs:
        name, equals, raw = spec.partition("=")
        name = name.strip()
        values = [value.strip() for value in raw.split(",") if value.strip()]
        if not equals or not VARIABLE_NAME.match(name) or not values:
            raise UsageError(f"invalid --var {spec!r}", hint="write NAME=VALUE[,VALUE...], e.g. --var style=ink,oil")
        variables[name] = values
    return variables


def _pieces(prompt: str, variables: dict[str, list[str]]) -> list[str | tuple[str, list[str]]]:
    """Literal text and (name, choices) groups, in order."""
    pieces: list[str | tuple[str, list[str]]] = []
    position, anonymous = 0, 0
    for match in TOKEN.finditer(prompt):
        pieces.append(prompt[position:match.start()])
        position = match.end()
        token, inner = match.group(), match.group(1)
        if token in ("{{", "}}"):
            pieces.append(token[0])
        elif inner is None:
            raise UsageError(f"unbalanced {token!r} in the prompt", hint="write {{ or }} for a literal brace, or --no-expand")
        elif "," in inner:
            anonymous += 1
            pieces.append((str(anonymous), [choice.strip() for choice in inner.split(",")]))
        elif inner.strip() in variables:
            pieces.append((inner.strip(), variables[inner.strip()]))
        else:
            raise UsageError(
                f"{{{inner}}} in the prompt is not a list and no --var gives it values",
                hint=f"add --var {inner.strip() or 'NAME'}=a,b, write {{{{{inner}}}}} for literal braces, or pass --no-expand",
            )
    pieces.append(prompt[position:])
    return pieces


def expand(prompt: str, variables: dict[str, list[str]] | None = None) -> list[Expansion]:
    """Every combination, in order; a prompt without groups is itself, once."""
    pieces = _pieces(prompt, variables or {})
    groups = [piece for piece in pieces if isinstance(piece, tuple)]
    unused = set(variables or {}) - {name for name, _ in groups}
    if unused:
        raise UsageError(f"--var {', '.join(sorted(unused))} is not used in the prompt", hint="write {NAME} where it goes")
    expansions = []
    for combination in itertools.product(*(choices for _, choices in groups)):
        chosen = iter(combination)
        text = "".join(piece if isinstance(piece, str) else next(chosen) for piece in pieces)
        expansions.append(Expansion(text, {name: value for (name, _), value in zip(groups, combination)}))
    return expansions
