"""What is known about each image of a directory, for its gallery: grouped by job, or by a prompt
matrix's variable or the model, with each image's prompt, parameters, model, cost, timings and,
for an edit, its input images.

What is known comes first from the job history (prompt, parameters, cost, timeline), then from
the provenance embedded in the file (or its sidecar), then from the directory's batch manifests
(request id, matrix values), and failing all of these from the file itself: its name (our
`{slug}-{id}-{i}` pattern) and its header (format and size). The page is drawn by
render/gallery.py.

Order: every image by its file name, numbers in names compared as numbers (`fox-2` before
`fox-10`); a job's images stay together, the job placed where its first file sorts. The names
are what a reader sees in the folder, so the page follows `ls`, not completion order.
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
from ..stores.safe_files import read_regular_file
from ..stores.safe_json import typed
from .image_format import image_size, sniff_image_format
from .image_inputs import IMAGES_FIELD, MAX_REQUEST_BYTES, recorded_inputs
from .manifest import SHA256_PATTERN, read_manifests

if TYPE_CHECKING:
    from ..stores.history import HistoryEntry

Warn = Callable[[str], None]  # told of each file left out, or shown without what it failed to say
DEFAULT_NAME_PATTERN = re.compile(r"^(?P<slug>.+)-(?P<id>[A-Za-z0-9]{8}|job)-(?P<index>\d+)(?:-\d+)?$")
MAX_INPUTS = 32  # more than any model takes: the rest of a crafted record is not shown


@dataclass(frozen=True)
class InputImage:
    """One recorded input of an edit: a URL as given, or a local file by name, size and sha256.

    `local` is set when the recorded file is still there, a regular file (no link followed) with
    the recorded size and sha256 and an image by its bytes: the page may show it as a thumbnail.
    """

    name: str
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    local: Path | None = None


@dataclass
class Facts:
    """What one source knows about an image; sources are merged field by field, the first one known wins."""

    request_id: str | None = None
    prompt: str | None = None
    parameters: str | None = None
    cost: float | None = None
    timings: str | None = None
    values: dict[str, str] | None = None
    line: int | None = None  # the job's line in its manifest: a matrix's order, as the prompt wrote its values
    model: str | None = None
    inputs: tuple[InputImage, ...] | None = None

    def fill(self, other: Facts | None) -> None:
        for name in (item.name for item in fields(self)):
            if getattr(self, name) is None and other is not None:
                setattr(self, name, getattr(other, name))


@dataclass
class Job:
    """One job's images in the directory, with what is known about the job."""

    facts: Facts = field(default_factory=Facts)
    images: list[tuple[Path, Facts]] = field(default_factory=list)  # (file, its facts)


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


Check = Callable[[dict[str, Any]], "InputImage | None"]


def _inputs(value: Any, check: Check) -> tuple[InputImage, ...] | None:
    """An edit's recorded inputs (history or provenance, both untrusted): records of the wrong shape are left out."""
    if not isinstance(value, list):
        return None
    found = [image for record in recorded_inputs(value[:MAX_INPUTS]) if (image := check(record))]
    return tuple(found) or None


def input_checker() -> Check:
    """Reads each recorded input at most once per page, however many outputs name it."""
    seen: dict[tuple[str, str], Path | None] = {}

    def check(record: dict[str, Any]) -> InputImage | None:
        url = typed(record, "url", str)
        if url is not None:
            return InputImage(url, url=url)
        name, path, size, sha256 = (typed(record, "file", str), typed(record, "path", str), typed(record, "bytes", int),
                                    typed(record, "sha256", str))
        if name is None and path is None:
            return None
        sha256 = sha256 if sha256 and SHA256_PATTERN.match(sha256) else None
        local = None
        # shown as a thumbnail only if its file is still the one recorded: read whole to hash it, so
        # only up to the API's own limit on a whole request
        if path is not None and size is not None and sha256 is not None and 0 < size <= MAX_REQUEST_BYTES:
            if (path, sha256) not in seen:
                seen[path, sha256] = _still_there(Path(path), size, sha256)
            local = seen[path, sha256]
        return InputImage(name or Path(path or "").name, size=size, sha256=sha256, local=local)

    return check


def _still_there(path: Path, size: int, sha256: str) -> Path | None:
    """`path` if it is still the recorded image: a regular file, no link followed, same size and sha256."""
    import hashlib

    if not path.is_absolute():
        return None
    try:
        data = read_regular_file(path, size)
    except (OSError, ValueError):  # gone, a link, a pipe, larger than recorded, a NUL in the path
        return None
    if len(data) != size or sniff_image_format(data[:64]) is None or hashlib.sha256(data).hexdigest() != sha256:
        return None
    return path


def _model(made: dict[str, Any]) -> str | None:
    """The family alias for a known model id, else the id (escaped by the page)."""
    from ..api.family import alias_or_id

    model = typed(made, "model", str)
    return None if model is None else alias_or_id(model)


def _history_facts(found: Collection[Known], check: Check, warn: Warn) -> dict[str, Facts]:
    """What the history knows about these files, by their real paths.

    Their jobs are looked up by key (the ids their metadata and names carry), since reading a long
    history whole would cost every gallery seconds; only files still unplaced after that (a `--name`
    without `{id}` and `--metadata none`, say) cost a scan, of the rows that saved into their folders.
    """
    from ..stores.history import History

    with History(warn=warn) as history:  # one that cannot be read: a warning, and the page without it
        known = _facts_by_path(history.jobs_with_ids(*_job_ids(found)), {real for real, *_ in found}, check)
        unplaced = {real for real, *_ in found if real not in known}
        in_folders = history.jobs_with_paths_in({os.path.dirname(real) for real in unplaced})
        for real, facts in _facts_by_path(in_folders, unplaced, check).items():
            known.setdefault(real, facts)
    return known


def _facts_by_path(entries: list[HistoryEntry], wanted: Collection[str], check: Check) -> dict[str, Facts]:
    """The facts of each `wanted` file (by real path) that these jobs saved, newest job first (so a path two
    jobs saved keeps the older's). A job none of whose files is wanted is passed over: its inputs are not read."""
    known: dict[str, Facts] = {}
    for entry in entries:
        saved = [real for real in map(os.path.realpath, entry.paths) if real in wanted]
        if not saved:
            continue
        facts = Facts(
            entry.request_id, typed(entry.input, "prompt", str), _parameters(entry.input), entry.cost,
            timings(entry.submitted_at, entry.started_at, entry.finished_at, entry.duration_seconds, entry.created_at),
            model=_model({"model": entry.model}), inputs=_inputs(entry.input.get(IMAGES_FIELD), check),
        )
        for real in saved:
            known[real] = facts
    return known


def _manifest_facts(directory: Path, warn: Warn) -> dict[str, Facts]:
    """Request ids and matrix values by file, where the manifests say or beside them (a moved directory)."""
    known: dict[str, Facts] = {}
    # each record's fields were checked as it was read (manifest._record_problem): a request id is a
    # string, vars an object of strings, line an int, outputs saved files, where set at all
    for state in read_manifests(directory, warn).values():
        for item in state.get("outputs") or []:
            facts = Facts(state.get("request_id"), values=state.get("vars") or None, line=state.get("line"))
            known[os.path.realpath(directory / Path(item["path"]).name)] = facts
            known[os.path.realpath(item["path"])] = facts
    return known


def _provenance_facts(path: Path, warn: Warn, check: Check) -> Facts | None:
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
    return Facts(typed(made, "request_id", str), typed(made, "prompt", str), _parameters(made),
                 timings=timings(submitted, None, typed(made, "finished_at", str)),
                 model=_model(made), inputs=_inputs(made.get(IMAGES_FIELD), check))


def _from_file(path: Path, head: bytes) -> tuple[str, Facts]:
    """The job key and facts a file tells about itself: name pattern, format and aspect ratio."""
    size = image_size(head)
    parts = [sniff_image_format(head) or ""]
    if size and size[1]:
        ratio = min(ASPECT_RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - size[0] / size[1]))
        parts = [ratio, *parts, f"{size[0]}×{size[1]}"]
    match = DEFAULT_NAME_PATTERN.match(path.stem)
    if match is None:
        return f"file:{path.name}", Facts(None, None, " · ".join(parts))
    prompt = match["slug"].replace("-", " ")
    return f"id:{match['id']}", Facts(match["id"], prompt, " · ".join(parts))


def name_order(name: str) -> tuple[tuple[int, int | str], ...]:
    """`fox-2` before `fox-10`: digits compared as numbers, the rest as text."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part)


def _images(directory: Path, warn: Warn) -> list[tuple[Path, bytes]]:
    found = []
    for path in sorted(directory.iterdir(), key=lambda p: name_order(p.name)):
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


def collect_jobs(directory: Path, warn: Warn = no_warnings, check: Check | None = None) -> list[Job]:
    """Every image in DIR, grouped by job; jobs in the order of their files' names (see the module's docstring).

    A file that cannot be read is left out, with a warning naming it; the rest still make the page.
    `check` reads the recorded inputs: a page of several directories passes one `input_checker()` to
    each, so that an input they share is read once.
    """
    try:
        manifests = _manifest_facts(directory, warn)
    except UsageError as exc:  # an unreadable manifest: the images still have their names and provenance
        warn(f"gallery: {exc}; the page is made without the batch manifests")
        manifests = {}
    check = check or input_checker()
    found: dict[Path, Known] = {}
    for path, head in _images(directory, warn):
        real = os.path.realpath(path)
        found[path] = (real, *_from_file(path, head), _provenance_facts(path, warn, check), manifests.get(real))
    history = _history_facts(found.values(), check, warn)
    jobs: dict[str, Job] = {}
    for path, (real, key, from_file, made, listed) in found.items():  # in file-name order: the jobs follow it
        sources = (history.get(real), made, listed)
        facts = Facts()
        for source in (*sources, from_file):
            facts.fill(source)
        if any(source is not None and source.request_id for source in sources):
            key = f"job:{facts.request_id}"  # a whole id: the name's 8 characters only when nothing better is known
        job = jobs.setdefault(key, Job())
        job.facts.fill(facts)
        job.images.append((path, facts))
    return list(jobs.values())
