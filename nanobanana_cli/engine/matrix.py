"""Prompt matrices: `a {red,blue} car in {fog,snow}` is four prompts, one per combination.

`{a,b}` lists alternatives in place (named `1`, `2`, … by position); `{name}` takes the values
given with `--var name=x,y`; `{{` and `}}` are literal braces. The first group varies slowest,
so the expansion reads like nested loops written left to right.

`plan_jobs` turns one `generate` run into jobs: every prompt of the matrix, each split into jobs
of at most four images (`-n 10` is 4 + 4 + 2), and `FileNames` names their files.
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from ..api.models import NUM_IMAGES_CHOICES, GenerationInput
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


# -- one generate run as jobs: the matrix times the images, at most four per job --------------------

# A run past this many jobs is a typo (a group too many), not a plan: refused before anything is built.
MAX_JOBS = 10_000
VARIABLE_FIELD = re.compile(r"^var\.([A-Za-z0-9_]+)$")


@dataclass(frozen=True)
class PlannedJob:
    """One job of a generate run: its input, the matrix values it stands for, and its images' place."""

    generation: GenerationInput
    values: dict[str, str]
    first: int  # the number of its first image among its prompt's images, from 1
    total: int  # how many images its prompt gets in all (`-n`)


def split_images(total: int) -> list[int]:
    """`-n 10` as jobs the API accepts: [4, 4, 2]."""
    per_job = max(NUM_IMAGES_CHOICES)
    return [min(per_job, total - start) for start in range(0, total, per_job)]


def plan_jobs(
    prompt: str, variables: dict[str, list[str]], images: int, defaults: dict[str, Any], *, literal: bool = False
) -> list[PlannedJob]:
    """Every job of the run, prompt by prompt, each input validated: all of it before any submit.

    `literal` (--no-expand) sends the prompt as written, braces and all.
    """
    if images < 1:
        raise UsageError(f"invalid number of images {images}", hint="pass -n 1 or more (above 4, several jobs make them)")
    if literal and variables:
        raise UsageError("--var fills {NAME} in the prompt, which --no-expand sends as written", hint="drop one of them")
    counts = split_images(images)
    prompts = 1 if literal else combinations(prompt, variables)
    if prompts * len(counts) > MAX_JOBS:
        raise UsageError(
            f"{prompts} prompt(s) × {len(counts)} job(s) each is over {MAX_JOBS} jobs in one run",
            hint="use fewer alternatives or images, or split the work with `nanobanana batch --shard`",
        )
    expansions = [Expansion(prompt, {})] if literal else expand(prompt, variables)
    options = {key: value for key, value in defaults.items() if key != "num_images"}
    planned = []
    for expansion in expansions:
        first = 1
        for count in counts:
            generation = GenerationInput(expansion.prompt, num_images=count, **options)
            planned.append(PlannedJob(generation, expansion.values, first, images))
            first += count
    return planned


def combinations(prompt: str, variables: dict[str, list[str]] | None = None) -> int:
    """How many prompts `expand` would make, without making them (a matrix can be huge)."""
    count = 1
    for piece in _pieces(prompt, variables or {}):
        if isinstance(piece, tuple):
            count *= len(piece[1])
    return count


class FileNames:
    """`--name` for the jobs of one generate run: the usual fields, plus `{vars}` (every matrix value)
    and `{var.NAME}` (`{var.1}` for the first `{a,b}` group); `{i}` and `{n}` count over all of a
    prompt's images, so `-n 10` makes files 1 to 10 whichever job made them.

    Values are slugified like the prompt, so a value can never lead out of the output directory.
    """

    def __init__(self, text: str | None, variables: Iterable[str]) -> None:
        from .lifecycle import DEFAULT_NAME, NameTemplate

        known = set(variables)
        # With a matrix, names lead with the values: a long prompt's slug is cut at 40 characters.
        self.text = text or (f"{{vars}}-{DEFAULT_NAME}" if known else DEFAULT_NAME)
        plain = self._as_plain(known)
        try:
            NameTemplate.parse(plain)  # every other rule of --name, with the values checked as a slug is
        except UsageError as exc:
            hint = f"{exc.hint}; and {{vars}} or {{var.NAME}} for the prompt's matrix values"
            raise UsageError(str(exc).replace(repr(plain), repr(self.text)), hint=hint) from None
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")  # one {date} and {time} per run

    def _as_plain(self, known: set[str]) -> str:
        """The template with each value field as `{slug}`; unknown variables refused here."""
        parts = []
        try:
            parsed = list(string.Formatter().parse(self.text))
        except ValueError as exc:
            hint = "braces that are text are written {{ and }}"
            raise UsageError(f"invalid --name {self.text!r}: {exc}", hint=hint) from None
        for literal, field, spec, conversion in parsed:
            parts.append(literal.replace("{", "{{").replace("}", "}}"))
            if field is None:
                continue
            match = VARIABLE_FIELD.match(field)
            if field == "vars" and not known:
                hint = "use {slug}, or give the prompt {a,b} groups or --var values"
                raise UsageError("--name uses {vars} but the prompt has no matrix values", hint=hint)
            if match and match[1] not in known:
                raise UsageError(
                    f"--name uses {{{field}}} but the prompt has no variable {match[1]!r}",
                    hint=f"variables here: {', '.join(sorted(known)) or 'none'}; {{a,b}} groups are var.1, var.2, …",
                )
            field = "slug" if match or field == "vars" else field
            parts.append("{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}")
        return "".join(parts)

    def stem(self, job: PlannedJob) -> FileStem:
        from .downloads import slugify
        from .lifecycle import job_name_fields

        values = {name: slugify(value) for name, value in job.values.items()}
        fields = {
            **job_name_fields(job.generation, job.total, self.started),
            "vars": "-".join(values.values()), "var": SimpleNamespace(**values),
        }
        return FileStem(job.generation.prompt, self.text, fields, job.first)


class FileStem(str):
    """One job's prompt, carrying how to name its files; `output_filename` calls `file_name` for each."""

    template: str
    fields: dict[str, Any]
    first: int

    def __new__(cls, prompt: str, template: str, fields: dict[str, Any], first: int) -> FileStem:
        stem = super().__new__(cls, prompt)
        stem.template, stem.fields, stem.first = template, fields, first
        return stem

    def file_name(self, **file_fields: Any) -> str:
        from .lifecycle import fit_name

        numbered = {**file_fields, "i": file_fields["i"] + self.first - 1}

        def render(cut: Callable[[str], str]) -> str:  # every slug-like field cut alike (a CJK value is 3 bytes a letter)
            values = SimpleNamespace(**{name: cut(value) for name, value in vars(self.fields["var"]).items()})
            slugs = {"slug": cut(numbered["slug"]), "vars": cut(self.fields["vars"]), "var": values}
            return self.template.format_map({**self.fields, **numbered, **slugs})

        return fit_name(render)
