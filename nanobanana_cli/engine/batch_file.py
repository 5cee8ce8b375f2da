"""Batch files: prompts one per line, or JSON objects one per line, read into `BatchLine`s (one per
job: a line's `{a,b}` matrix and more than four images make several); and a generate run's jobs as
the same lines. Each job has a key (a hash of what it asks for) by which its manifest record
(engine/manifest.py) is found again on a rerun.

A line that starts with `{` is a JSON object. A file is JSON Lines when its name ends in `.jsonl`
or `.ndjson`, or when its first line (blank lines and `#` comments aside) starts with `{`: then
every line must be a JSON object, and `["a list"]`, `"a string"`, `42` or `null` is refused.
In any other file, a line that does not start with `{` is a prompt as written, even one that
starts with `[` or `"`.

A JSON line's fields follow the flags' rules (`generate`'s): `name` is checked as `--name` is,
`num_images` above 4 is several jobs of at most 4, `{a,b}` in the prompt is a matrix (`{{` and
`}}` are literal braces). `model`, `images` (local files, relative to the batch file's
directory, or URLs), `resolution`, `seed` and any other field are checked against the schema in
effect for the line's model by the use case (runs/lines.py), as `--set` is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.family import Task, resolve
from ..api.models import FORMAT_ALIASES, GenerationInput
from ..api.schema import MODEL_ID
from ..errors import NanobananaError, UsageError
from ..stores import safe_json
from .matrix import plan_jobs
from .naming import FileNamer, unsafe_name

if TYPE_CHECKING:
    from datetime import datetime

    from .matrix import PlannedJob
    from .naming import NameTemplate

# What a line may say besides any field of its model's schema; a field has one spelling per line.
SPELLINGS = {"aspect": "aspect_ratio", "format": "output_format"}
JSON_SUFFIXES = (".jsonl", ".ndjson")
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|data:)")  # a URL or a data URI (refused later): not a path


@dataclass(frozen=True)
class LineSpec:
    """What one line of the file asks for, its shapes checked; its model's schema checks the rest."""

    number: int
    prompt: str
    name: str | None = None
    num_images: int | None = None
    model: str | None = None  # as the line wrote it (alias or id); None: the batch's --model
    images: tuple[str, ...] = ()  # local paths (resolved against the batch file's directory) or URLs
    fields: dict[str, Any] = field(default_factory=dict)  # aspect_ratio, output_format, resolution, seed, others

    @property
    def task(self) -> Task:
        """A line with images goes to its model family's edit endpoint, as `edit -i` does."""
        return "edit" if self.images else "generate"


@dataclass(frozen=True)
class BatchLine:
    number: int
    generation: GenerationInput
    name: str | None
    key: str
    namer: FileNamer | None = None  # a generate run's names for this job; else the batch's --name and `name`
    values: dict[str, str] = field(default_factory=dict)  # a matrix's values, kept in the manifest
    spec: LineSpec | None = None  # the batch line it comes from (shared by every job of that line)
    job: int = 0  # its place among its line's jobs, from 1; 0: the line is one job

    @property
    def label(self) -> str:
        return self.name or self.generation.prompt


@dataclass(frozen=True)
class LineProblem:
    number: int
    message: str

    @classmethod
    def of(cls, number: int, error: NanobananaError) -> LineProblem:
        """An error about a line, with its fix: one line among others, it has no line of its own for the hint."""
        return cls(number, f"{error}; {error.hint}" if error.hint else str(error))


@dataclass(frozen=True)
class LineOptions:
    """How a batch's lines become jobs: its flags, and where the file is."""

    model: str | None = None  # --model (or the config's): for lines that name none
    directory: Path | None = None  # a line's relative image paths start here; None: the current directory
    json_lines: bool | None = None  # by the file's name; None: by its first line
    expand: bool = True  # `{a,b}` is a matrix (False: --no-expand)
    template: NameTemplate | None = None  # --name: numbered over a line's jobs when it has several
    started: datetime | None = None  # one {date} and {time} for the whole run
    notice: Callable[[str], None] | None = None  # hears of values a line's matrix repeats (each used once)


def is_json_name(source: str) -> bool:
    return source.lower().endswith(JSON_SUFFIXES)


def read_specs(text: str, *, json_lines: bool | None = None, directory: Path | None = None) -> tuple[list[LineSpec], list[LineProblem]]:
    """Every line's spec, and every problem (all of them, so all can be shown at once)."""
    specs: list[LineSpec] = []
    problems: list[LineProblem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if json_lines is None:
            json_lines = stripped.startswith("{")
        try:
            if json_lines or stripped.startswith("{"):
                specs.append(_json_spec(number, stripped, directory, plain_file=not json_lines))
            else:
                specs.append(LineSpec(number, stripped))
        except _Refused as refused:
            problems.append(LineProblem(number, str(refused)))
    return specs, problems


class _Refused(Exception):
    pass


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return {list: "a list", str: "a string", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _json_spec(number: int, stripped: str, directory: Path | None, *, plain_file: bool = False) -> LineSpec:
    try:
        data = safe_json.loads(stripped)
    except ValueError as exc:
        why = ("a line that starts with { is a JSON object: write a prompt that starts with a brace group as "
               "{\"prompt\": \"…\"}") if plain_file else "each line of a JSON Lines file is one object such as {\"prompt\": \"a red fox\"}"
        raise _Refused(f"invalid JSON ({exc}); {why}") from None
    if not isinstance(data, dict):
        raise _Refused(f"a JSON line must be an object such as {{\"prompt\": \"a red fox\"}}, not {_kind(data)}")
    found: list[str] = []
    fields: dict[str, Any] = {}
    for key, value in data.items():
        canonical = SPELLINGS.get(str(key), str(key))
        if canonical in fields or (canonical != key and canonical in data):
            found.append(f"\"{key}\": given twice (as \"{canonical}\" and \"{key}\")")
            continue
        fields[canonical] = value
    prompt = fields.pop("prompt", None)
    if not isinstance(prompt, str):
        found.insert(0, "\"prompt\": required, a string" if prompt is None else f"\"prompt\": must be a string, not {_kind(prompt)}")
    name = fields.pop("name", None)
    if name is not None:
        refused = unsafe_name(name) if isinstance(name, str) else f"must be a string, not {_kind(name)}"
        if refused is not None:
            found.append(f"\"name\" {str(name)[:80]!r}: {refused} (the rule of --name)")
    model = fields.pop("model", None)
    if model is not None and not isinstance(model, str):
        found.append(f"\"model\": must be a string (an alias or a model id), not {_kind(model)}")
    images = _images(fields.pop("images", None), directory, found)
    if "image_urls" in fields:  # sent as given, it would bypass every check of a local file
        found.append("\"image_urls\": give input images as \"images\": [local files or https URLs]")
    num_images = fields.pop("num_images", None)
    if num_images is not None and (type(num_images) is not int or num_images < 1):
        found.append(f"invalid number of images {num_images!r} (\"num_images\"): a whole number of 1 or more (above 4, several jobs)")
    seed = fields.get("seed")
    if seed is not None and (type(seed) is not int or seed < 0):
        found.append(f"\"seed\": must be a whole number of 0 or more, not {seed!r}")
    for key in ("aspect_ratio", "output_format", "resolution"):
        if fields.get(key) is not None and not isinstance(fields[key], str):
            found.append(f"\"{key}\": must be a string, not {_kind(fields[key])}")
    if isinstance(fields.get("output_format"), str):
        folded = fields["output_format"].lower()
        fields["output_format"] = FORMAT_ALIASES.get(folded, folded)
    if found:
        raise _Refused("; ".join(found))
    fields = {key: value for key, value in fields.items() if value is not None}
    return LineSpec(number, str(prompt), name, num_images, model, images, fields)


def _images(value: Any, directory: Path | None, found: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item.strip() for item in value):
        found.append("\"images\": must be a list of local files or https URLs, such as [\"cat.png\"]")
        return ()
    return tuple(_located(item.strip(), directory) for item in value)


def _located(given: str, directory: Path | None) -> str:
    """A line's image as `edit -i` takes it: a relative path starts at the batch file's directory."""
    if directory is None or _URL.match(given) or given.startswith("~") or Path(given).is_absolute():
        return given
    return str(directory / given)


def parse_batch(text: str, defaults: dict[str, Any], options: LineOptions | None = None) -> tuple[list[BatchLine], list[LineProblem]]:
    """The file's jobs, in order, and every problem of its lines (all collected, so all can be shown at once).

    `defaults` (the flags' and settings' aspect_ratio, output_format, num_images) fill in what a line
    leaves out. The default model's classic fields are checked here; anything a line sends to
    another model, or besides them, is checked against its schema by the use case.
    """
    options = options or LineOptions()
    specs, problems = read_specs(text, json_lines=options.json_lines, directory=options.directory)
    lines: list[BatchLine] = []
    seen: dict[str, int] = {}
    for spec in specs:
        try:
            lines += _jobs_of(spec, defaults, options, seen)
        except NanobananaError as exc:
            problems.append(LineProblem.of(spec.number, exc))
    problems.sort(key=lambda problem: problem.number)
    return lines, problems


def _jobs_of(spec: LineSpec, defaults: dict[str, Any], options: LineOptions, seen: dict[str, int]) -> list[BatchLine]:
    """One line's jobs: each prompt of its matrix, each split into jobs of at most four images."""
    try:
        model_id = resolve(spec.model or options.model, spec.task)
    except UsageError as exc:
        raise UsageError(f"\"model\": {exc}" if spec.model else str(exc), hint=exc.hint) from None
    classic = {key: spec.fields.get(key, defaults[key]) for key in ("aspect_ratio", "output_format")}
    told = options.notice
    planned = plan_jobs(
        spec.prompt, {}, spec.num_images or defaults["num_images"], {**classic, "model": model_id}, literal=not options.expand,
        notice=None if told is None else lambda text: told(f"line {spec.number}: {text}"),
    )
    several = len(planned) > 1
    lines = []
    for index, job in enumerate(planned, start=1):
        identity: dict[str, Any] = {**job.generation.to_payload(), "name": spec.name}
        if several or job.values:
            identity.update(vars=job.values, first=job.first)
        if model_id != MODEL_ID or spec.images or set(spec.fields) - set(classic):  # a classic line keeps its old key
            identity.update(model=model_id, images=list(spec.images), fields=spec.fields)
        namer = None
        if several or job.values:
            namer = FileNamer.for_job(options.template, job.generation, label=spec.name, values=job.values,
                                      first=job.first, total=job.total, when=options.started)
        lines.append(BatchLine(spec.number, job.generation, spec.name, _key(identity, seen), namer=namer,
                               values=job.values, spec=spec, job=index if several else 0))
    return lines


def _key(identity: dict[str, Any], seen: dict[str, int]) -> str:
    """A line's name in the manifest: a hash of what it asks for, and which repeat of it this is."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    seen[digest] = seen.get(digest, 0) + 1
    return f"{digest}-{seen[digest]}"


def planned_lines(jobs: list[PlannedJob], template: NameTemplate | None, started: datetime) -> list[BatchLine]:
    """A generate run's jobs as batch lines, numbered from 1; rerun alike, they get the same keys.
    Each job's files are numbered over its prompt's images (`-n 10`: 1 to 10), with one {date} and
    {time} for the whole run."""
    seen: dict[str, int] = {}
    lines = []
    for number, job in enumerate(jobs, start=1):
        key = _key({**job.generation.to_payload(), "vars": job.values, "first": job.first}, seen)
        namer = FileNamer.for_job(template, job.generation, values=job.values, first=job.first, total=job.total,
                                  when=started)
        lines.append(BatchLine(number, job.generation, None, key, namer=namer, values=job.values))
    return lines
