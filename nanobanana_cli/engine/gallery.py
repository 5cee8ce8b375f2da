"""What is known about each image of a directory, for its gallery: grouped by job, or by a prompt
matrix's variable, with each image's prompt, parameters, cost and timings.

What is known comes first from the job history (prompt, parameters, cost, timeline), then from
the provenance embedded in the file (or its sidecar), then from the directory's batch manifests
(request id, matrix values), and failing all of these from the file itself: its name (our
`{slug}-{id}-{i}` pattern) and its header (format and size). The page is drawn by
render/gallery.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.models import ASPECT_RATIOS
from ..errors import UsageError
from ..stores.safe_json import typed
from .image_format import image_size, sniff_image_format

if TYPE_CHECKING:
    from ..stores.history import HistoryEntry

Warn = Callable[[str], None]  # told of each file left out, or shown without what it failed to say
DEFAULT_NAME_PATTERN = re.compile(r"^(?P<slug>.+)-(?P<id>[A-Za-z0-9]{8}|job)-(?P<index>\d+)(?:-\d+)?$")


@dataclass
class Facts:
    """What one source knows about an image; sources are merged field by field, the first one known wins."""

    request_id: str | None = None
    index: int | None = None
    prompt: str | None = None
    parameters: str | None = None
    submitted_at: str | None = None
    cost: float | None = None
    timings: str | None = None
    values: dict[str, str] | None = None

    def fill(self, other: Facts | None) -> None:
        for name in (item.name for item in fields(self)):
            if getattr(self, name) is None and other is not None:
                setattr(self, name, getattr(other, name))


@dataclass
class Job:
    """One job's images in the directory, with what is known about the job."""

    key: str
    facts: Facts = field(default_factory=Facts)
    images: list[tuple[int, Path, Facts]] = field(default_factory=list)  # (index in the job, file, its facts)


def timings(
    submitted: str | None, started: str | None, finished: str | None, duration: float | None = None,
    created: str | None = None,
) -> str | None:
    """`queued 1.2 s · ran 3.4 s · 4.6 s in all`, as far as the timeline is known (`times.timeline`)."""
    from ..times import timeline

    spans = timeline(submitted, started, created, finished, duration)
    parts = [f"{label} {seconds:.1f} s" for label, seconds in (("queued", spans.queue_wait), ("ran", spans.run))
             if seconds is not None]
    if spans.total is not None:
        parts.append(f"{spans.total:.1f} s in all")
    return " · ".join(parts) or None


def _parameters(made: dict[str, Any]) -> str | None:
    shown = [value for key in ("aspect_ratio", "output_format") if (value := typed(made, key, str))]
    return " · ".join(shown) or None


def _history_facts(found: Collection[Known]) -> dict[str, Facts]:
    """What the history knows about these files, by their real paths.

    Their jobs are looked up by key (the ids their metadata and names carry), since reading a long
    history whole would cost every gallery seconds; only files still unplaced after that (a `--name`
    without `{id}` and `--metadata none`, say) cost a scan, of the rows that saved into their folders.
    """
    from ..stores.history import History

    with History() as history:
        known = _facts_by_path(history.jobs_with_ids(*_job_ids(found)))
        unplaced = {os.path.dirname(real) for real, *_ in found if real not in known}
        for real, facts in _facts_by_path(history.jobs_with_paths_in(unplaced)).items():
            known.setdefault(real, facts)
    return known


def _facts_by_path(entries: list[HistoryEntry]) -> dict[str, Facts]:
    """Each saved file's facts from its job, newest job first (so a path two jobs saved keeps the older's)."""
    known: dict[str, Facts] = {}
    for entry in entries:
        timeline = timings(entry.submitted_at, entry.started_at, entry.finished_at, entry.duration_seconds,
                           entry.created_at)
        for index, path in enumerate(entry.paths, start=1):
            known[os.path.realpath(path)] = Facts(
                entry.request_id, index, entry.input.get("prompt"), _parameters(entry.input), entry.submitted_at,
                entry.cost, timeline,
            )
    return known


def _manifest_facts(directory: Path, warn: Warn) -> dict[str, Facts]:
    """Request ids and matrix values by file, where the manifests say or beside them (a moved directory)."""
    from ..engine.manifest import read_manifests

    known: dict[str, Facts] = {}
    for state in read_manifests(directory, warn).values():  # each record's fields were checked as it was read
        for index, item in enumerate(state.get("outputs") or [], start=1):
            facts = Facts(state.get("request_id"), index, values=state.get("vars") or None)
            known[os.path.realpath(directory / Path(item["path"]).name)] = facts
            known[os.path.realpath(item["path"])] = facts
    return known


def _provenance_facts(path: Path, warn: Warn) -> Facts | None:
    from ..engine import provenance

    try:
        made, _ = provenance.read(path)
    except OSError as exc:
        warn(f"gallery: cannot read the provenance of {path.name}: {exc.strerror or exc}; shown without it")
        return None
    if not made:
        return None
    submitted = typed(made, "submitted_at", str)
    # Provenance travels with files from anywhere: a field of the wrong type is taken as unknown.
    return Facts(typed(made, "request_id", str), typed(made, "index", int), typed(made, "prompt", str),
                 _parameters(made), submitted, timings=timings(submitted, None, typed(made, "finished_at", str)))


def _from_file(path: Path, head: bytes) -> tuple[str, Facts]:
    """The job key and facts a file tells about itself: name pattern, format and aspect ratio."""
    size = image_size(head)
    parts = [sniff_image_format(head) or ""]
    if size and size[1]:
        ratio = min(ASPECT_RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - size[0] / size[1]))
        parts = [ratio, *parts, f"{size[0]}×{size[1]}"]
    match = DEFAULT_NAME_PATTERN.match(path.stem)
    if match is None:
        return f"file:{path.name}", Facts(None, 1, None, " · ".join(parts))
    prompt = match["slug"].replace("-", " ")
    return f"id:{match['id']}", Facts(match["id"], int(match["index"]), prompt, " · ".join(parts))


def _images(directory: Path, warn: Warn) -> list[tuple[Path, bytes]]:
    found = []
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            with path.open("rb") as handle:
                head = handle.read(64 * 1024)
        except OSError as exc:
            warn(f"gallery: skipped {path.name}: {exc.strerror or exc}")
            continue
        if sniff_image_format(head) is not None:
            found.append((path, head))
    return found


# What is known of a file before the history is asked: (its real path, its job key, facts from its name
# and header, from its provenance, from the directory's manifests).
Known = tuple[str, str, Facts, Facts | None, Facts | None]


def _job_ids(found: Iterable[Known]) -> tuple[set[str], set[str]]:
    """Which jobs of the history the gallery needs: the whole request ids that the files' provenance and
    manifests name, and the short ids that their names carry (our `{slug}-{id}-{i}` pattern)."""
    request_ids, prefixes = set(), set()
    for _, _, from_file, made, listed in found:
        whole = {facts.request_id for facts in (made, listed) if facts and isinstance(facts.request_id, str)}
        request_ids |= whole
        # a file that names its job in full was saved by that job: its short id would find nothing more
        if not whole and from_file.request_id not in (None, "job"):  # "job" stands for an id with no letter or digit
            prefixes.add(from_file.request_id)
    return request_ids, prefixes


def no_warnings(message: str) -> None:
    pass


def collect_jobs(directory: Path, warn: Warn = no_warnings) -> list[Job]:
    """Every image in DIR, grouped by job; jobs in submission order (else by their files' age).

    A file that cannot be read is left out, with a warning naming it; the rest still make the page.
    """
    try:
        manifests = _manifest_facts(directory, warn)
    except UsageError as exc:  # an unreadable manifest: the images still have their names and provenance
        warn(f"gallery: {exc}; the page is made without the batch manifests")
        manifests = {}
    found: dict[Path, Known] = {}
    for path, head in _images(directory, warn):
        real = os.path.realpath(path)
        found[path] = (real, *_from_file(path, head), _provenance_facts(path, warn), manifests.get(real))
    history = _history_facts(found.values())
    jobs: dict[str, Job] = {}
    first_seen: dict[str, float] = {}
    for path, (real, key, from_file, made, listed) in found.items():
        sources = (history.get(real), made, listed)
        facts = Facts()
        for source in (*sources, from_file):
            facts.fill(source)
        if any(source is not None and source.request_id for source in sources):
            key = f"job:{facts.request_id}"  # a whole id: the name's 8 characters only when nothing better is known
        job = jobs.setdefault(key, Job(key))
        job.facts.fill(facts)
        job.images.append((facts.index or 1, path, facts))
        first_seen[key] = min(first_seen.get(key, float("inf")), path.stat().st_mtime)
    ordered = sorted(
        jobs.values(), key=lambda job: (job.facts.submitted_at is None, job.facts.submitted_at or "", first_seen[job.key])
    )
    for job in ordered:
        job.images.sort(key=lambda image: (image[0], image[1].name))
    return ordered


