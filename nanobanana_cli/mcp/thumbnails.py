"""A small JPEG of a saved image, so the agent sees what it made without receiving the image itself.

Pillow is optional: without it there is no thumbnail, and the paths say where the images are.
The files come from a server, so they are untrusted: a picture too large to decode cheaply is
skipped, and a thumbnail that will not fit its byte budget is not sent at all.
"""

from __future__ import annotations

import io
from pathlib import Path

THUMBNAIL_SIDE = 256
MAX_THUMBNAIL_BYTES = 48 * 1024
MAX_SOURCE_PIXELS = 64 * 1024 * 1024  # far above the model's 2K output; below Pillow's own bomb limit
QUALITIES = (75, 55, 35)
MIME_TYPE = "image/jpeg"


def thumbnail(path: Path, *, side: int = THUMBNAIL_SIDE, max_bytes: int = MAX_THUMBNAIL_BYTES) -> bytes | None:
    """JPEG bytes of at most `side` pixels a side and `max_bytes`, or None (no Pillow, not an image, too big)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_SOURCE_PIXELS:
                return None
            image.draft("RGB", (side, side))  # JPEG decodes at a reduced scale directly
            image.thumbnail((side, side))
            small = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    for quality in QUALITIES:
        encoded = io.BytesIO()
        small.save(encoded, "JPEG", quality=quality)
        if encoded.tell() <= max_bytes:
            return encoded.getvalue()
    return None
