"""A self-contained contact sheet (index.html) for a directory of generated images, grouped by job.

What is known about each image comes from the job history (prompt, parameters, submission time),
then the batch manifest (request id), and failing both from the file itself: its name (our
`{slug}-{id}-{i}` pattern gives the prompt's words, the job and the index) and its bytes
(format and size, hence the aspect ratio).
"""

from __future__ import annotations

import html
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ..api.models import ASPECT_RATIOS
from ..engine.downloads import sniff_image_format

GALLERY_NAME = "index.html"
DEFAULT_NAME_PATTERN = re.compile(r"^(?P<slug>.+)-(?P<id>[A-Za-z0-9]{8}|job)-(?P<index>\d+)(?:-\d+)?$")
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;background:#111;color:#eee}
h1{font-size:18px;font-weight:600}
section{margin:0 0 28px}
h2{font-size:15px;font-weight:600;margin:0 0 2px}
section>p{color:#aaa;margin:0 0 10px;word-break:break-all}
div.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:16px}
figure{margin:0;background:#1c1c1c;border-radius:8px;overflow:hidden}
img{width:100%;height:220px;object-fit:contain;background:#000;display:block}
figcaption{padding:8px 10px;color:#aaa;word-break:break-all}
"""


@dataclass
class Job:
    """One job's images in the directory, with what is known about the job."""

    key: str
    prompt: str | None = None
    parameters: str | None = None
    request_id: str | None = None
    submitted_at: str | None = None
    images: list[tuple[int, Path]] = field(default_factory=list)  # (index in the job, file)


@dataclass(frozen=True)
class Known:
    request_id: str | None
    index: int
    prompt: str | None = None
    parameters: str | None = None
    submitted_at: str | None = None


def _known_files(directory: Path) -> dict[str, Known]:
    """What the batch manifest and then the job history (which wins) say about saved files, by real path."""
    from ..engine.batch import Manifest
    from ..stores.history import History

    known: dict[str, Known] = {}
    for state in Manifest(directory).entries():
        for index, item in enumerate(state.get("outputs") or [], start=1):
            known[os.path.realpath(item["path"])] = Known(state.get("request_id"), index)
    with History() as history:
        for entry in history.entries(limit=None):
            params = f"{entry.input.get('aspect_ratio')} · {entry.input.get('output_format')}"
            for index, path in enumerate(entry.paths, start=1):
                known[os.path.realpath(path)] = Known(
                    entry.request_id, index, entry.input.get("prompt"), params, entry.submitted_at
                )
    return known


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


def _from_file(path: Path, head: bytes) -> tuple[str, Known]:
    """The job key and facts a file tells about itself: name pattern, format and aspect ratio."""
    size = image_size(head)
    parts = [sniff_image_format(head) or ""]
    if size and size[1]:
        ratio = min(ASPECT_RATIOS, key=lambda r: abs(int(r.split(":")[0]) / int(r.split(":")[1]) - size[0] / size[1]))
        parts = [ratio, *parts, f"{size[0]}×{size[1]}"]
    match = DEFAULT_NAME_PATTERN.match(path.stem)
    if match is None:
        return f"file:{path.name}", Known(None, 1, None, " · ".join(parts))
    prompt = match["slug"].replace("-", " ")
    return f"id:{match['id']}", Known(match["id"], int(match["index"]), prompt, " · ".join(parts))


def collect_jobs(directory: Path) -> list[Job]:
    """Every image in DIR, grouped by job; jobs in submission order (else by their files' age)."""
    known = _known_files(directory)
    jobs: dict[str, Job] = {}
    first_seen: dict[str, float] = {}
    for path in sorted(directory.iterdir(), key=lambda p: p.name):
        if path.name.startswith(".") or not path.is_file():
            continue
        with path.open("rb") as handle:
            head = handle.read(64 * 1024)
        if sniff_image_format(head) is None:
            continue
        facts = known.get(os.path.realpath(path))
        key, from_file = _from_file(path, head)
        if facts is not None and facts.request_id:
            key = f"job:{facts.request_id}"
        job = jobs.setdefault(key, Job(key))
        for source in (facts, from_file):
            if source is not None:
                job.prompt = job.prompt or source.prompt
                job.parameters = job.parameters or source.parameters
                job.request_id = job.request_id or source.request_id
                job.submitted_at = job.submitted_at or source.submitted_at
        job.images.append(((facts or from_file).index, path))
        first_seen[key] = min(first_seen.get(key, float("inf")), path.stat().st_mtime)
    ordered = sorted(jobs.values(), key=lambda job: (job.submitted_at is None, job.submitted_at or "", first_seen[job.key]))
    for job in ordered:
        job.images.sort()
    return ordered


def _section(job: Job) -> str:
    title = html.escape(job.prompt) if job.prompt else html.escape(job.images[0][1].name)
    details = " · ".join(html.escape(part) for part in (job.parameters, job.request_id, f"{len(job.images)} image(s)") if part)
    figures = []
    for _, path in job.images:
        href = quote(path.name)
        alt = html.escape(job.prompt or path.name)
        figures.append(
            f'<figure><a href="{href}"><img src="{href}" alt="{alt}" loading="lazy"></a>'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>"
        )
    return f"<section><h2>{title}</h2><p>{details}</p><div class=\"grid\">\n" + "\n".join(figures) + "\n</div></section>"


def render_gallery(directory: Path, jobs: list[Job]) -> str:
    title = html.escape(f"nanobanana — {directory.name or directory}")
    count = sum(len(job.images) for job in jobs)
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body><h1>{title} ({count} images, {len(jobs)} jobs)</h1>\n<main>\n"
        + "\n".join(_section(job) for job in jobs)
        + "\n</main></body></html>\n"
    )


def write_gallery(directory: Path) -> Path:
    """Write (or rewrite) DIR/index.html referencing every image in DIR by a relative link."""
    jobs = collect_jobs(directory)
    target = directory / GALLERY_NAME
    temporary = directory / f".{GALLERY_NAME}.tmp"
    temporary.write_text(render_gallery(directory, jobs), encoding="utf-8")
    os.replace(temporary, target)
    return target.resolve()
