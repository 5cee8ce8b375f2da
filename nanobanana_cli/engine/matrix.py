"""Prompt matrices: `a {red,blue} car in {fog,snow}` is four prompts, one per combination.

`{a,b}` lists alternatives in place (named `1`, `2`, … by position); `{name}` takes the values
given with `--var name=x,y`; `{{` and `}}` are literal braces. The first group varies slowest,
so the expansion reads like nested loops written left to right.

`plan_jobs` turns one `generate` run into jobs: every prompt of the matrix, on every model it
ranges over, each split into jobs of at most four images (`-n 10` is 4 + 4 + 2);
`engine/naming.py` names their files.

Comparing models: `--model nano-banana,nano-banana-2`, or the same list as `--var
model=nano-banana,nano-banana-2`, runs every prompt on each model (`models_of`). `model` is the
one variable that is not written into the prompt (a model's name in the text would change the
image): `{model}` in the prompt is refused. Each job's matrix values start with `model` (its
alias), so the default file names lead with it and `--name` can use `{model}` or `{var.model}`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..api.models import NUM_IMAGES_CHOICES, GenerationInput
from ..errors import UsageError

VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MODEL_VARIABLE = "model"  # --var model=a,b: the models a run ranges over, never written into the prompt
TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class Expansion(NamedTuple):
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


def _unique(choices: list[str], repeated: list[str] | None) -> list[str]:
    """A group's values once each, in order: `{red,red}` is one job, not two identical ones billed twice."""
    kept = list(dict.fromkeys(choices))
    if repeated is not None:
        repeated.extend(value for value in kept if choices.count(value) > 1)
    return kept


def _pieces(
    prompt: str, variables: dict[str, list[str]], repeated: list[str] | None = None
) -> list[str | tuple[str, list[str]]]:
    """Literal text and (name, choices) groups, in order; values a group repeats go into `repeated`."""
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
            pieces.append((str(anonymous), _unique([choice.strip() for choice in inner.split(",")], repeated)))
        elif inner.strip() == MODEL_VARIABLE:
            raise UsageError(
                "{model} in the prompt: the model a job runs on is not written into its prompt",
                hint="drop {model} from the prompt; --model a,b (or --var model=a,b) runs it on each model, "
                "and --name '{model}-{slug}-{id}-{i}' puts the model in the file names",
            )
        elif inner.strip() in variables:
            pieces.append((inner.strip(), _unique(variables[inner.strip()], repeated)))
        else:
            raise UsageError(
                f"{{{inner}}} in the prompt is not a list and no --var gives it values",
                hint=f"add --var {inner.strip() or 'NAME'}=a,b, write {{{{{inner}}}}} for literal braces, or pass --no-expand",
            )
    pieces.append(prompt[position:])
    return pieces


def expand(
    prompt: str, variables: dict[str, list[str]] | None = None, repeated: list[str] | None = None
) -> list[Expansion]:
    """Every combination, in order; a prompt without groups is itself, once."""
    pieces = _pieces(prompt, variables or {}, repeated)
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


class PlannedJob(NamedTuple):  # not a dataclass: see Expansion
    """One job of a generate run: its input, the matrix values it stands for, and its images' place."""

    generation: GenerationInput
    values: dict[str, str]
    first: int  # the number of its first image among its prompt's images, from 1
    total: int  # how many images its prompt gets in all (`-n`)


def models_of(flag: str | None, variables: dict[str, list[str]]) -> tuple[list[str], dict[str, list[str]]]:
    """The models a run ranges over (`--model a,b` or `--var model=a,b`, each once, in order), and the
    other variables. An empty list: the run uses the one model of the settings (a flag without a
    comma, the environment, the config)."""
    given = variables.get(MODEL_VARIABLE)
    rest = {name: values for name, values in variables.items() if name != MODEL_VARIABLE}
    listed = flag is not None and "," in flag
    if given is not None and flag is not None:
        raise UsageError("--model and --var model=… both name the model", hint="give the models once: --model a,b")
    if listed:
        given = [name.strip() for name in (flag or "").split(",")]
        if not all(given):
            raise UsageError(f"invalid --model {flag!r}: an empty name in the list", hint="e.g. --model nano-banana,nano-banana-2")
    return list(dict.fromkeys(given or ())), rest


def split_images(total: int) -> list[int]:
    """`-n 10` as jobs the API accepts: [4, 4, 2]."""
    per_job = max(NUM_IMAGES_CHOICES)
    return [min(per_job, total - start) for start in range(0, total, per_job)]


def plan_jobs(
    prompt: str, variables: dict[str, list[str]], images: int, defaults: dict[str, Any], *, literal: bool = False,
    notice: Callable[[str], None] | None = None, models: Sequence[tuple[str, str]] = (),
) -> list[PlannedJob]:
    """Every job of the run, prompt by prompt (and model by model), each input validated: all of it
    before any submit.

    `literal` (--no-expand) sends the prompt as written, braces and all; `notice` is told of values
    a group repeats (each is used once). `models` are (alias or id, model id) pairs a comparison
    runs each prompt on (varying fastest, so a prompt's models are side by side); empty: the
    model of `defaults`.
    """
    if images < 1:
        raise UsageError(f"invalid number of images {images}", hint="pass -n 1 or more (above 4, several jobs make them)")
    if literal and variables:
        raise UsageError("--var fills {NAME} in the prompt, which --no-expand sends as written", hint="drop one of them")
    counts = split_images(images)
    prompts = (1 if literal else combinations(prompt, variables)) * max(1, len(models))
    if prompts * len(counts) > MAX_JOBS:
        raise UsageError(
            f"{prompts} prompt(s) × {len(counts)} job(s) each is over {MAX_JOBS} jobs in one run",
            hint="use fewer alternatives or images, or split the work with `nanobanana batch --shard`",
        )
    repeated: list[str] = []
    expansions = [Expansion(prompt, {})] if literal else expand(prompt, variables, repeated)
    if repeated and notice is not None:
        notice(f"repeated matrix value(s) {', '.join(map(repr, repeated))} used once each (one job, not several identical ones)")
    options = {key: value for key, value in defaults.items() if key not in ("num_images", "model")}
    runs_on: list[tuple[dict[str, str], dict[str, Any]]] = [
        ({MODEL_VARIABLE: label}, {"model": model_id}) for label, model_id in models
    ] or [({}, {key: value for key, value in defaults.items() if key == "model"})]
    planned = []
    for expansion in expansions:
        for model_value, chosen in runs_on:
            first = 1
            for count in counts:
                generation = GenerationInput(expansion.prompt, num_images=count, **options, **chosen)
                planned.append(PlannedJob(generation, {**model_value, **expansion.values}, first, images))
                first += count
    return planned


def combinations(prompt: str, variables: dict[str, list[str]] | None = None) -> int:
    """How many prompts `expand` would make, without making them (a matrix can be huge)."""
    count = 1
    for piece in _pieces(prompt, variables or {}):
        if isinstance(piece, tuple):
            count *= len(piece[1])
    return count
