"""A self-contained gallery (index.html) for a directory of generated images: grouped by job, or by
a prompt matrix's variable; a search box and a lightbox; each card with its prompt, parameters,
cost and timings. Vanilla JavaScript and CSS inline: no external asset, no network at all.

What is known about each image comes first from the job history (prompt, parameters, cost,
timeline), then from the provenance embedded in the file (or its sidecar), then from the
directory's batch manifests (request id, matrix values), and failing all of these from the file
itself: its name (our `{slug}-{id}-{i}` pattern) and its header (format and size).
"""

from __future__ import annotations

import html
import json
import os
import re
import struct
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..api.models import ASPECT_RATIOS
from ..engine.image_format import sniff_image_format
from ..errors import UsageError
from ..stores.safe_files import write_atomically
from ..stores.safe_json import typed

if TYPE_CHECKING:
    from ..stores.history import HistoryEntry

GALLERY_NAME = "index.html"
Warn = Callable[[str], None]  # told of each file left out, or shown without what it failed to say
DEFAULT_NAME_PATTERN = re.compile(r"^(?P<slug>.+)-(?P<id>[A-Za-z0-9]{8}|job)-(?P<index>\d+)(?:-\d+)?$")
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{position:sticky;top:0;z-index:1;background:#111e;padding:16px 24px 10px;border-bottom:1px solid #222}
h1{font-size:18px;font-weight:600;margin:0 0 8px}
.bar{display:flex;gap:16px;align-items:center;flex-wrap:wrap;color:#aaa}
.bar input,.bar select{font:inherit;background:#1c1c1c;color:#eee;border:1px solid #333;border-radius:6px;padding:5px 8px}
.bar input{width:min(420px,70vw)}
main{padding:16px 24px}
section{margin:0 0 28px}
h2{font-size:15px;font-weight:600;margin:0 0 2px}
section>p{color:#aaa;margin:0 0 10px;word-break:break-all}
div.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:16px}
figure{margin:0;background:#1c1c1c;border-radius:8px;overflow:hidden}
figure img{width:100%;height:220px;object-fit:contain;background:#000;display:block;cursor:zoom-in}
figcaption{padding:8px 10px;color:#aaa;word-break:break-word;font-size:12px}
figcaption .p{color:#ddd;display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
.v{display:inline-block;background:#2a2a40;color:#ccd;border-radius:4px;padding:0 5px;margin:2px 4px 0 0}
[hidden]{display:none!important}
#lb{position:fixed;inset:0;z-index:2;background:#000e;display:flex;flex-direction:column;align-items:center;
justify-content:center}
#lb img{max-width:94vw;max-height:82vh;object-fit:contain}
#lb p{color:#ccc;max-width:90vw;text-align:center;margin:10px}
#lb button{position:absolute;background:none;border:0;color:#ccc;font-size:34px;cursor:pointer;padding:12px}
#lb-x{top:8px;right:12px}#lb-prev{left:8px;top:45%}#lb-next{right:8px;top:45%}
"""
# No external asset and no URL: the page works from a copied folder, offline, in a CI artifact.
# A module script runs once the page is parsed, like `defer`, and in strict mode.
SCRIPT = """
const q = document.getElementById('q'), by = document.getElementById('by'), count = document.getElementById('count');
const main = document.querySelector('main'), jobs = [...main.querySelectorAll('section')];
const cards = [...main.querySelectorAll('figure')];
cards.forEach(card => { card.home = card.parentNode; card.data = card.querySelector('a').dataset; });
let made = [];
function regroup() {
  made.forEach(section => section.remove());
  made = [];
  const name = by ? by.value : '';
  jobs.forEach(section => { section.hidden = name !== ''; });
  if (name === '') { cards.forEach(card => card.home.appendChild(card)); return filter(); }
  const groups = new Map();
  cards.forEach(card => {
    const value = JSON.parse(card.data.vars || '{}')[name] ?? '(none)';
    if (!groups.has(value)) groups.set(value, []);
    groups.get(value).push(card);
  });
  groups.forEach((members, value) => {
    const section = document.createElement('section'), title = document.createElement('h2');
    const grid = document.createElement('div');
    title.textContent = name + ' = ' + value;
    grid.className = 'grid';
    members.forEach(card => grid.appendChild(card));
    section.append(title, grid);
    main.appendChild(section);
    made.push(section);
  });
  filter();
}
function filter() {
  const terms = q.value.toLowerCase().split(/\\s+/).filter(Boolean);
  let shown = 0;
  cards.forEach(card => {
    card.hidden = !terms.every(term => card.data.search.includes(term));
    shown += card.hidden ? 0 : 1;
  });
  [...jobs, ...made].forEach(section => {
    if (by && (by.value === '') !== jobs.includes(section)) return;
    section.hidden = !section.querySelector('figure:not([hidden])');
  });
  count.textContent = shown + ' of ' + cards.length + ' images';
}
const box = document.getElementById('lb'), big = document.getElementById('lb-img');
const caption = document.getElementById('lb-cap');
let current = null;
function open(card) {
  current = card;
  big.src = card.querySelector('a').getAttribute('href');
  caption.textContent = card.data.caption;
  box.hidden = false;
}
function step(offset) {
  const visible = [...main.querySelectorAll('figure:not([hidden])')].filter(card => !card.closest('section').hidden);
  const at = visible.indexOf(current);
  if (visible.length) open(visible[(at + offset + visible.length) % visible.length]);
}
main.addEventListener('click', event => {
  const card = event.target.closest('figure');
  if (card && event.target.tagName === 'IMG') { event.preventDefault(); open(card); }
});
box.addEventListener('click', event => { if (event.target === box || event.target.id === 'lb-x') box.hidden = true; });
document.getElementById('lb-prev').addEventListener('click', () => step(-1));
document.getElementById('lb-next').addEventListener('click', () => step(1));
document.addEventListener('keydown', event => {
  if (box.hidden) return;
  if (event.key === 'Escape') box.hidden = true;
  if (event.key === 'ArrowLeft') step(-1);
  if (event.key === 'ArrowRight') step(1);
});
q.addEventListener('input', filter);
if (by) by.addEventListener('change', regroup);
filter();
"""


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
    from ..engine.batch import read_manifests

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


def image_size(head: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, JPEG or WebP header, or None."""
    kind = sniff_image_format(head)
    if kind == "png" and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if kind == "webp" and head[12:16] == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == "webp" and head[12:16] == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == "webp" and head[12:16] == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    if kind == "jpeg":
        position = 2
        while position + 9 <= len(head) and head[position] == 0xFF:
            marker, length = head[position + 1], struct.unpack(">H", head[position + 2:position + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", head[position + 5:position + 9])
                return width, height
            position += 2 + length
    return None


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


def _ignore(message: str) -> None:
    pass


def collect_jobs(directory: Path, warn: Warn = _ignore) -> list[Job]:
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


def _cost(cost: float | None) -> str | None:
    return None if cost is None else f"job ${cost:.4f}"  # what the whole job cost: the API reports no more


def _card(job: Job, path: Path, facts: Facts) -> str:
    """One image: a link to the file (the lightbox opens it), and what is known about it, searchable."""
    href = quote(path.name)
    prompt = facts.prompt or job.facts.prompt or ""
    values = facts.values or {}
    details = [facts.parameters, _cost(facts.cost), facts.timings]
    searchable = " ".join([prompt, path.name, facts.request_id or "", *values.values(), *(part for part in details if part)])
    chips = "".join(f'<span class="v">{html.escape(name)}={html.escape(value)}</span>' for name, value in values.items())
    shown = " · ".join(part for part in details if part)
    caption = " — ".join(part for part in (prompt, shown, path.name) if part)
    data = f'data-search="{html.escape(searchable.lower())}" data-vars="{html.escape(json.dumps(values))}"'
    return (
        f'<figure><a href="{href}" {data} data-caption="{html.escape(caption)}"><img src="{href}" alt="{html.escape(prompt or path.name)}" '
        f'loading="lazy"></a><figcaption><span class="p">{html.escape(prompt)}</span>{html.escape(shown)}'
        f"<br>{html.escape(path.name)}{'<br>' + chips if chips else ''}</figcaption></figure>"
    )


def _section(job: Job) -> str:
    facts = job.facts
    title = html.escape(facts.prompt) if facts.prompt else html.escape(job.images[0][1].name)
    parts = (facts.parameters, facts.request_id, f"{len(job.images)} image(s)", _cost(facts.cost), facts.timings)
    details = " · ".join(html.escape(part) for part in parts if part)
    cards = "\n".join(_card(job, path, image_facts) for _, path, image_facts in job.images)
    return f"<section><h2>{title}</h2><p>{details}</p><div class=\"grid\">\n{cards}\n</div></section>"


def _toolbar(jobs: list[Job]) -> str:
    """The search box, and a choice of grouping when the images come from a prompt matrix."""
    names = list(dict.fromkeys(name for job in jobs for _, _, facts in job.images for name in facts.values or {}))
    grouping = ""
    if names:
        options = "".join(f'<option value="{html.escape(name)}">{html.escape(name)}</option>' for name in names)
        grouping = f'<label>group by <select id="by"><option value="">job</option>{options}</select></label>'
    search = '<input id="q" type="search" placeholder="search prompts, ids, values…" aria-label="search" autofocus>'
    return f'<div class="bar">{search}{grouping}<span id="count"></span></div>'


def render_gallery(directory: Path, jobs: list[Job]) -> str:
    title = html.escape(f"nanobanana — {directory.name or directory}")
    count = sum(len(job.images) for job in jobs)
    lightbox = (
        '<div id="lb" hidden><button id="lb-x" aria-label="close">×</button><button id="lb-prev" aria-label="previous">‹'
        '</button><img id="lb-img" alt=""><button id="lb-next" aria-label="next">›</button><p id="lb-cap"></p></div>'
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body><header><h1>{title} ({count} images, {len(jobs)} jobs)</h1>"
        f"{_toolbar(jobs)}</header>\n<main>\n"
        + "\n".join(_section(job) for job in jobs)
        + f'\n</main>\n{lightbox}\n<script type="module">{SCRIPT}</script></body></html>\n'
    )


def write_gallery(directory: Path, warn: Warn = _ignore) -> Path:
    """Write (or rewrite) DIR/index.html referencing every image in DIR by a relative link.

    The page is written to a new file beside it and renamed over it: a link planted at either
    name is replaced, never written through.
    """
    jobs = collect_jobs(directory, warn)
    target = directory / GALLERY_NAME
    write_atomically(target, render_gallery(directory, jobs).encode("utf-8"))
    return target.resolve()
