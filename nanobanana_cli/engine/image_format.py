"""What kind of image a file is, by its first bytes: the one copy of PNG/JPEG/WebP sniffing."""

from __future__ import annotations

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_START = b"\xff\xd8\xff"
SNIFF_BYTES = 12  # what `sniff_image_format` needs to see


def sniff_image_format(head: bytes) -> str | None:
    """"png", "jpeg" or "webp" from a file's first bytes (at least SNIFF_BYTES of them), else None."""
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(JPEG_START):
        return "jpeg"
    if len(head) >= SNIFF_BYTES and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None
