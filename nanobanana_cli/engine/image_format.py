"""What kind of image a file is and how large, by its first bytes: the one copy of PNG/JPEG/WebP sniffing."""

from __future__ import annotations

import struct

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
