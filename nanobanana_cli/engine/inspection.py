"""`nanobanana inspect FILE`: where an image came from, whether it is intact, what it cost."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from . import provenance
from .downloads import file_sha256
from .image_format import SNIFF_BYTES, sniff_image_format

if TYPE_CHECKING:
    from ..stores.history import History

INSPECT_SCHEMA_VERSION = 1


def inspect_file(path: Path, history: History | None) -> dict[str, Any]:
    """One file's report. Works on a copy on another machine: the provenance travels with the file."""
    try:
        digest, size = file_sha256(path), path.stat().st_size
        with path.open("rb") as handle:
            kind = sniff_image_format(handle.read(SNIFF_BYTES))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}", hint="pass an image nanobanana saved") from None
    found, source = provenance.read(path)
    job = history.find_file(digest) if history is not None else None
    image_digest = provenance.image_data_sha256(path)
    recorded_digest = (found or {}).get("image_data_sha256")
    return {
        "schema_version": INSPECT_SCHEMA_VERSION,
        "path": str(path.resolve()),
        "format": kind,
        "bytes": size,
        "sha256": digest,
        "c2pa": provenance.has_c2pa(path),
        "provenance": found,
        "provenance_source": source,
        # intact: the image data hashes as it did when saved; None when nothing recorded a hash
        "intact": (image_digest == recorded_digest) if recorded_digest and image_digest else (True if job else None),
        "history": {**job[0].to_dict(), "file": job[1]} if job else None,
    }
