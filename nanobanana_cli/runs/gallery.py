"""A gallery: gather what is known about a directory's images, draw the page, and write it without
following links. `gallery`, `batch --gallery` and `merge --gallery` call it.
"""

from __future__ import annotations

from pathlib import Path

from ..engine.gallery import Warn, collect_jobs, no_warnings
from ..render.gallery import GALLERY_NAME, render_gallery
from ..stores.safe_files import write_atomically


def write_gallery(directory: Path, warn: Warn = no_warnings) -> Path:
    """Write (or rewrite) DIR/index.html referencing every image in DIR by a relative link.

    The page is written to a new file beside it and renamed over it: a link planted at either
    name is replaced, never written through.
    """
    jobs = collect_jobs(directory, warn)
    target = directory / GALLERY_NAME
    write_atomically(target, render_gallery(directory, jobs).encode("utf-8"))
    return target.resolve()
