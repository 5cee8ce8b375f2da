"""Batch files: prompts one per line, or JSON objects one per line, read into `BatchLine`s; and a
generate run's jobs as the same lines. Each line has a key (a hash of what it asks for) by which
its manifest record (engine/manifest.py) is found again on a rerun.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api.models import GenerationInput
from ..errors import NanobananaError
from ..stores import safe_json
from .naming import FileNamer

if TYPE_CHECKING:
    from datetime import datetime

    from .matrix import PlannedJob
    from .naming import NameTemplate

JSON_FIELDS = ("prompt", "aspect_ratio", "output_format", "num_images", "name")


@dataclass(frozen=True)
class BatchLine:
    number: int
    generation: GenerationInput
    name: str | None
    key: str
    namer: FileNamer | None = None  # a generate run's names for this job; else the batch's --name and `name`
    values: dict[str, str] = field(default_factory=dict)  # a matrix's values, kept in the manifest

    @property
    def label(self) -> str:
        return self.name or self.generation.prompt


@dataclass(frozen=True)
class LineProblem:
    number: int
    message: str


def parse_batch(text: str, defaults: dict[str, Any]) -> tuple[list[BatchLine], list[LineProblem]]:
    """Prompts one per line (blank lines and `#` comments skipped), or JSON objects one per line.

    `defaults` fill in what a line leaves out. Every problem is collected, so all can be shown at once.
    """
    lines: list[BatchLine] = []
    problems: list[LineProblem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields: dict[str, Any] = dict(defaults)
        name = None
        if stripped.startswith("{"):
            try:
                data = safe_json.loads(stripped)
            except ValueError as exc:
                problems.append(LineProblem(number, f"invalid JSON ({exc})"))
                continue
            unknown = sorted(set(data) - set(JSON_FIELDS)) if isinstance(data, dict) else []
            if not isinstance(data, dict) or "prompt" not in data or unknown:
                detail = f"unknown field(s) {', '.join(unknown)}" if unknown else "a JSON line needs a \"prompt\""
                problems.append(LineProblem(number, f"{detail}; fields: {', '.join(JSON_FIELDS)}"))
                continue
            name = data.pop("name", None)
            if name is not None and not isinstance(name, str):
                problems.append(LineProblem(number, "\"name\" must be a string"))
                continue
            fields.update(data)
        else:
            fields["prompt"] = stripped
        if not isinstance(fields.get("prompt"), str):
            problems.append(LineProblem(number, "\"prompt\" must be a string"))
            continue
        try:
            generation = GenerationInput(**fields)
        except NanobananaError as exc:
            problems.append(LineProblem(number, str(exc)))
            continue
        lines.append(BatchLine(number, generation, name, _key({**generation.to_payload(), "name": name}, seen)))
    return lines, problems


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


