"""File names, in one place: the `--name` template, the slug, and the names one job's files get.

A `FileNamer` is built for a job before its submit (from `--name` or a batch line's `name`, and,
for a run of several jobs, the matrix values and the run's numbering), recorded with the job's
intent in the history (`engine/intent.py`), and rebuilt from that record by every later `watch`,
`result --download` and resume. So a job's files get the same names whichever command saves
them, and fetching a job again finds its files already there.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType, SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple

from ..api.schema import EXTENSIONS
from ..errors import UsageError

if TYPE_CHECKING:
    from ..api.models import GenerationInput

NAME_FIELDS = ("slug", "model", "id", "i", "n", "aspect", "format", "date", "time")
DEFAULT_NAME = "{slug}-{id}-{i}"
# With a matrix, names lead with the values: a long prompt's slug is cut at SLUG_LENGTH characters.
MATRIX_DEFAULT_NAME = "{vars}-" + DEFAULT_NAME
# UTF-8 bytes before the extension (filesystems count bytes: 200 CJK characters are 600): with a
# `-1000` twin suffix, the extension and the `.NAME.xxxxxxxx.part` of a download, still under 255.
MAX_NAME_LENGTH = 200
SAMPLE_INDEX = 99999  # what `{i}` and `{n}` may reach: a matrix numbers all of a prompt's images
SLUG_LENGTH = 40
MODEL_SLUG_LENGTH = 64  # a model id without an alias, slugified: google-nano-banana-3-text-to-image
VARIABLE_FIELD = re.compile(r"^var\.([A-Za-z0-9_]+)$")
MAX_RECORDED_VALUES = 64  # a recorded namer with more matrix values than this was not written by us


def slugify(text: str, max_length: int = SLUG_LENGTH) -> str:
    """Letters and digits of any script, lower-cased, joined by '-'; emoji, symbols and punctuation dropped.

    `日本の庭 🌸` gives `日本の庭`; combining marks stay (Devanagari and Thai words need them), and
    compatibility forms fold (NFKC: full-width `ＡＢＣ` is `abc`).
    """
    kept = "".join(
        char if unicodedata.category(char)[0] in "LMN" else "-" for char in unicodedata.normalize("NFKC", text).casefold()
    )
    slug = re.sub(r"-{2,}", "-", kept).strip("-")
    return slug[:max_length].rstrip("-") or "image"


def model_label(model_id: str) -> str:
    """How a model is named in file names: its family alias, or its id slugified (`{model}`)."""
    from ..api.family import alias_or_id

    return slugify(alias_or_id(model_id), MODEL_SLUG_LENGTH)  # an alias is a slug already: kept as it is


def cut_to_bytes(text: str, limit: int) -> str:
    """The longest start of `text` that is at most `limit` bytes of UTF-8, never half a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def fit_name(render: Callable[[Callable[[str], str]], str]) -> str:
    """The file name `render` makes, within MAX_NAME_LENGTH bytes.

    `render` applies the cut it is given to each slug in the name (the prompt's, a matrix value's):
    all of them are cut to the same number of bytes, the most that lets the name fit. The rest of
    the name (literal text, id, index, date) was checked to fit when the template was parsed.
    """
    name = render(lambda slug: slug)
    if len(name.encode("utf-8")) <= MAX_NAME_LENGTH:
        return name

    def cut(limit: int) -> Callable[[str], str]:
        return lambda slug: cut_to_bytes(slug, limit).rstrip("-")

    low, high = 0, MAX_NAME_LENGTH  # the largest slug budget whose name fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if len(render(cut(middle)).encode("utf-8")) <= MAX_NAME_LENGTH:
            low = middle
        else:
            high = middle - 1
    return cut_to_bytes(render(cut(low)), MAX_NAME_LENGTH)  # an index past SAMPLE_INDEX: cut, never refused after paying


def unsafe_name(text: str) -> str | None:
    """Why `text` cannot be (part of) a file name inside the output directory, or None: the rule of
    --name, also applied to a batch line's `name`."""
    if not text.strip():
        return "it is empty"
    if "/" in text or "\\" in text or "\0" in text or ".." in text or text.startswith("."):
        return "a file name inside the output directory has no '/', '\\', '..', NUL or leading '.'"
    return None


def short_id(request_id: str) -> str:
    """The 8 characters of a request id that names carry (and `inspect` finds a job by)."""
    return re.sub(r"[^A-Za-z0-9]", "", request_id)[:8] or "job"


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class NameTemplate(NamedTuple):
    """A `--name` pattern, checked so that no value can lead out of the output directory.

    `variables` are the matrix values a run of several jobs may name: `{vars}` (all of them) and
    `{var.NAME}` (`{var.1}` for the first `{a,b}` group). Values are slugified like the prompt.
    """

    text: str
    variables: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, variables: Iterable[str] = ()) -> NameTemplate:
        known = tuple(variables)

        def refuse(why: str, hint: str | None = None) -> UsageError:
            fields = ", ".join("{" + name + "}" for name in NAME_FIELDS)
            matrix = "; and {vars} or {var.NAME} for the prompt's matrix values" if known else ""
            return UsageError(f"invalid --name {text!r}: {why}", hint=hint or f"use fields {fields}{matrix}, e.g. --name '{DEFAULT_NAME}'")

        unsafe = unsafe_name(text)
        if unsafe is not None:
            raise refuse(unsafe)
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise refuse(str(exc), hint="braces that are text are written {{ and }}") from None
        for _, name, _, conversion in parsed:
            if name is None:
                continue
            if conversion:
                raise refuse("conversions such as !r are not allowed")
            variable = VARIABLE_FIELD.match(name)
            if name == "vars" and not known:
                raise UsageError("--name uses {vars} but the prompt has no matrix values",
                                 hint="use {slug}, or give the prompt {a,b} groups or --var values")
            if variable and variable[1] not in known:
                raise UsageError(
                    f"--name uses {{{name}}} but the prompt has no variable {variable[1]!r}",
                    hint=f"variables here: {', '.join(sorted(known)) or 'none'}; {{a,b}} groups are var.1, var.2, …",
                )
            if name not in NAME_FIELDS and not variable and name != "vars":
                raise refuse(f"unknown field {name or '{}'!r}")
        template = cls(text, known)
        sample_values = dict.fromkeys(known, "a-red-fox")
        try:
            sample = template.render(
                slug="a-red-fox", model="nano-banana-2", id="0a1b2c3d", i=1, n=4, aspect="16x9", format="png", date="2026-01-31",
                time="235959", values=sample_values,
            )
        except (ValueError, TypeError, AttributeError, KeyError, IndexError) as exc:
            raise refuse(str(exc)) from None
        # A format spec's fill character could still make a hidden name (`{i:.>3}`).
        if sample.startswith("."):
            raise refuse("names must not start with '.'")
        # Slugs (the prompt's, the model's) are cut to fit (`fit_name`); everything else must fit on its own,
        # checked before anything is paid for.
        fixed = template.render(slug="", model="", id="0a1b2c3d", i=SAMPLE_INDEX, n=SAMPLE_INDEX, aspect="16x9", format="jpeg",
                                date="2026-01-31", time="235959", values=dict.fromkeys(known, ""))
        if len(fixed.encode("utf-8")) > MAX_NAME_LENGTH:
            raise refuse(f"names must not exceed {MAX_NAME_LENGTH} bytes (UTF-8), without counting {{slug}} and {{model}}")
        return template

    def render(self, *, values: Mapping[str, str], **fields: Any) -> str:
        return self.text.format_map({**fields, "vars": "-".join(values.values()), "var": SimpleNamespace(**values)})


class FileNamer(NamedTuple):  # not a dataclass: see NameTemplate
    """How one job's files are named: everything but the request id, fixed before the submit."""

    template: str = DEFAULT_NAME
    slug: str = "image"
    model: str = ""  # {model}: the model's alias (nano-banana-2), or its id slugified when it has none
    aspect: str = ""
    format: str = "png"
    date: str = ""
    time: str = ""
    values: Mapping[str, str] = MappingProxyType({})  # slugified matrix values, in the prompt's order
    first: int = 1  # the number of this job's first image among its prompt's (`-n 10`: 1, 5, 9)
    total: int | None = None  # {n}: the prompt's images over all its jobs; None: this job's

    @classmethod
    def for_job(
        cls,
        template: NameTemplate | None,
        generation: GenerationInput | None,
        *,
        label: str | None = None,
        values: Mapping[str, str] | None = None,
        first: int = 1,
        total: int | None = None,
        when: datetime | None = None,
    ) -> FileNamer:
        """The namer of a job about to be submitted; `label` (a batch line's name) names it instead of the prompt."""
        moment = (when or datetime.now()).astimezone()
        slugged = {name: slugify(value) for name, value in (values or {}).items()}
        text = template.text if template is not None else (MATRIX_DEFAULT_NAME if slugged else DEFAULT_NAME)
        return cls(
            template=text,
            slug=slugify(label or (generation.prompt if generation else "") or "image"),
            model=model_label(generation.model) if generation else "",
            aspect=((generation.aspect_ratio or "") if generation else "").replace(":", "x"),  # ':' is not portable in names
            format=(generation.output_format or "png") if generation else "png",
            date=moment.strftime("%Y-%m-%d"),
            time=moment.strftime("%H%M%S"),
            values=slugged, first=first, total=total,
        )

    def names(self, request_id: str, count: int) -> list[str]:
        """The file names (with extension) of the job's `count` images."""
        template = NameTemplate(self.template, tuple(self.values))
        extension = EXTENSIONS.get(self.format, self.format)
        names = []
        for index in range(1, count + 1):

            def render(cut: Callable[[str], str], index: int = index) -> str:  # every slug cut alike
                return template.render(
                    values={name: cut(value) for name, value in self.values.items()}, slug=cut(self.slug),
                    model=cut(self.model), id=short_id(request_id), i=self.first + index - 1, n=self.total or count, aspect=self.aspect,
                    format=self.format, date=self.date, time=self.time,
                )

            names.append(f"{fit_name(render)}.{extension}")
        return names

    def to_record(self) -> dict[str, Any]:
        return {
            "template": self.template, "slug": self.slug, "model": self.model, "aspect": self.aspect, "format": self.format,
            "date": self.date, "time": self.time, "values": dict(self.values), "first": self.first, "total": self.total,
        }

    @classmethod
    def from_record(cls, record: Any) -> FileNamer | None:
        """A namer read back from the history, or None when the record is not one we could have written."""
        if not isinstance(record, dict):
            return None
        strings = ("template", "slug", "aspect", "format", "date", "time")
        values = record.get("values")
        model = record.get("model", "")  # absent from the records of earlier versions
        if (
            not isinstance(model, str) or (model != "" and model != slugify(model, MODEL_SLUG_LENGTH))
            or not all(isinstance(record.get(key), str) for key in strings)
            or not isinstance(values, dict) or len(values) > MAX_RECORDED_VALUES
            or not all(isinstance(k, str) and isinstance(v, str) and v == slugify(v) for k, v in values.items())
            or not _is_count(record.get("first"), minimum=1)
            or not (record.get("total") is None or _is_count(record.get("total"), minimum=1))
            or record["slug"] != slugify(record["slug"])
            or record["format"] not in EXTENSIONS
            or not re.fullmatch(r"[0-9x]*", record["aspect"])
            or not re.fullmatch(r"[0-9-]*", record["date"]) or not re.fullmatch(r"[0-9]*", record["time"])
        ):
            return None
        try:
            NameTemplate.parse(record["template"], values)
        except UsageError:
            return None
        return cls(
            template=record["template"], slug=record["slug"], model=model, aspect=record["aspect"], format=record["format"],
            date=record["date"], time=record["time"], values=dict(values), first=record["first"], total=record["total"],
        )


def _is_count(value: Any, *, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= 10**6
