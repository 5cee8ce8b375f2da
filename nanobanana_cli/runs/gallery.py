"""A gallery: gather what is known about directories of images, draw the page, and write it without
following links. `gallery`, `batch --gallery` and `merge --gallery` call it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..engine.gallery import Warn, collect_jobs, input_checker, no_warnings
from ..errors import UsageError
from ..render.gallery import GALLERY_NAME, Folder, render_gallery
from ..stores.safe_files import write_atomically

PAGE_SUFFIXES = (".html", ".htm")


def write_gallery(directory: Path, warn: Warn = no_warnings) -> Path:
    """Write (or rewrite) DIR/index.html referencing every image in DIR by a relative link, even when
    there is none (a batch whose every line failed still gets its page)."""
    target = directory / GALLERY_NAME
    return _write(target, [Folder(str(directory), collect_jobs(directory, warn))])


def page_path(directories: Sequence[Path], output: Path | None) -> Path:
    """Where the page goes: `-o FILE` (or `-o DIR`, for DIR/index.html), else the first DIR's index.html."""
    if output is None:
        return directories[0] / GALLERY_NAME
    if output.is_dir():
        return output / GALLERY_NAME
    if output.suffix.lower() not in PAGE_SUFFIXES:  # -o out/fox-1.png would replace an image with the page
        raise UsageError(f"the gallery page {str(output)!r} must end in .html", hint="pass -o FILE.html, or -o DIR for DIR/index.html")
    if not output.parent.is_dir():
        raise UsageError(f"{str(output.parent)!r} is not a directory", hint="create it first, or pass -o to an existing one")
    return output


def write_galleries(directories: Sequence[Path], output: Path | None = None, warn: Warn = no_warnings) -> Path:
    """One page for every image of DIRs, a section per directory; a directory without images is refused
    before anything is written (a typo in a path, or the wrong folder)."""
    named: dict[str, Path] = {}
    for directory in directories:  # a directory named twice (`gallery out/ ./out`) is shown once, where first named
        named.setdefault(os.path.realpath(directory), directory)
    unique = list(named.values())
    target = page_path(unique, output)
    folders, check = [], input_checker()  # an input several directories' edits share is read once for the page
    for directory in unique:
        jobs = collect_jobs(directory, warn, check)
        if not jobs:
            raise UsageError(
                f"no PNG, JPEG or WebP images in {str(directory)!r}",
                hint="pass the directory your images were saved in (generate -o DIR), or make some first",
            )
        folders.append(Folder(str(directory), jobs))
    return _write(target, folders)


def _write(target: Path, folders: list[Folder]) -> Path:
    """The page is written to a new file beside `target` and renamed over it: a link planted at either
    name is replaced, never written through."""
    write_atomically(target, render_gallery(target, folders).encode("utf-8"))
    return target.resolve()
