"""A self-contained contact sheet (index.html) for a directory of generated images."""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..engine.downloads import sniff_image_format

GALLERY_NAME = "index.html"
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;background:#111;color:#eee}
h1{font-size:18px;font-weight:600}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:16px}
figure{margin:0;background:#1c1c1c;border-radius:8px;overflow:hidden}
img{width:100%;height:220px;object-fit:contain;background:#000;display:block}
figcaption{padding:8px 10px}
small{color:#aaa;display:block;margin-top:4px;word-break:break-all}
"""


@dataclass(frozen=True)
class GalleryItem:
    path: Path
    prompt: str | None = None
    parameters: str | None = None
    request_id: str | None = None


def _metadata(directory: Path) -> dict[str, GalleryItem]:
    """What is known about each file: the batch manifest first, then the job history."""
    known: dict[str, GalleryItem] = {}
    from ..engine.batch import Manifest

    for state in Manifest(directory).entries():
        for item in state.get("outputs") or []:
            known[os.path.realpath(item["path"])] = GalleryItem(Path(item["path"]), request_id=state.get("request_id"))
    from ..stores.history import History

    with History() as history:
        for entry in history.entries(limit=None):
            params = f"{entry.input.get('aspect_ratio')} · {entry.input.get('output_format')}"
            for path in entry.paths:
                known[os.path.realpath(path)] = GalleryItem(Path(path), entry.input.get("prompt"), params, entry.request_id)
    return known


def collect_images(directory: Path) -> list[GalleryItem]:
    known = _metadata(directory)
    items = []
    for path in sorted(directory.iterdir(), key=lambda p: (p.stat().st_mtime, p.name)):
        if path.name.startswith(".") or not path.is_file():
            continue
        with path.open("rb") as handle:
            if sniff_image_format(handle.read(16)) is None:
                continue
        found = known.get(os.path.realpath(path))
        items.append(GalleryItem(path, found.prompt if found else None, found.parameters if found else None, found.request_id if found else None))
    return items


def render_gallery(directory: Path, items: list[GalleryItem]) -> str:
    figures = []
    for item in items:
        href = quote(item.path.name)
        alt = html.escape(item.prompt or item.path.name)
        caption = html.escape(item.prompt) if item.prompt else html.escape(item.path.name)
        details = " · ".join(html.escape(part) for part in (item.parameters, item.request_id, item.path.name) if part)
        figures.append(
            f'<figure><a href="{href}"><img src="{href}" alt="{alt}" loading="lazy"></a>'
            f"<figcaption>{caption}<small>{details}</small></figcaption></figure>"
        )
    title = html.escape(f"nanobanana — {directory.name or directory}")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head>\n<body><h1>{title} ({len(items)} images)</h1>\n<main>\n"
        + "\n".join(figures)
        + "\n</main></body></html>\n"
    )


def write_gallery(directory: Path) -> Path:
    """Write (or rewrite) DIR/index.html referencing every image in DIR by a relative link."""
    items = collect_images(directory)
    target = directory / GALLERY_NAME
    temporary = directory / f".{GALLERY_NAME}.tmp"
    temporary.write_text(render_gallery(directory, items), encoding="utf-8")
    os.replace(temporary, target)
    return target.resolve()
