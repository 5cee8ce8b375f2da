"""Real image files for the sandbox: a gradient in the requested aspect ratio with the prompt on it."""

from __future__ import annotations

import hashlib
import io
import struct
import textwrap
import zlib

from ..errors import NanobananaError

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def image_size(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    """Exact W:H: both sides are the same multiple of the ratio's terms."""
    width_term, height_term = (int(part) for part in aspect_ratio.split(":"))
    scale = max(1, long_side // max(width_term, height_term))
    return width_term * scale, height_term * scale


def pad_png(data: bytes, padding_bytes: int) -> bytes:
    """Grow a PNG by a private ancillary chunk before IEND: still valid, as large as a test needs."""
    payload = bytes(padding_bytes)
    chunk_type = b"nbPd"
    chunk = struct.pack(">I", len(payload)) + chunk_type + payload + struct.pack(">I", zlib.crc32(chunk_type + payload))
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + chunk + data[iend:]


def render_image(
    prompt: str, aspect_ratio: str, output_format: str, index: int, long_side: int = 1024, *, padding_bytes: int = 0
) -> bytes:
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise NanobananaError(
            "the sandbox draws real images with Pillow, which is not installed",
            hint="pip install 'nanobanana-cli[sandbox]'",
        ) from None
    width, height = image_size(aspect_ratio, long_side)
    seed = hashlib.sha256(f"{prompt}\0{index}".encode()).digest()
    start, end = seed[:3], seed[3:6]
    # A 256-pixel gradient strip resized up is far cheaper than drawing every row.
    strip = Image.new("RGB", (1, 256))
    strip.putdata([tuple(start[c] + (end[c] - start[c]) * y // 255 for c in range(3)) for y in range(256)])
    image = strip.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    font_size = max(12, width // 28)
    font = ImageFont.load_default(size=font_size)
    lines = textwrap.wrap(prompt, width=max(10, int(width / (font_size * 0.6))))[:6]
    lines.append(f"#{index}  {aspect_ratio}  {output_format}")
    y = max(8, height // 10)
    for line in lines:
        draw.text((width // 20 + 2, y + 2), line, fill=(0, 0, 0), font=font)
        draw.text((width // 20, y), line, fill=(255, 255, 255), font=font)
        y += int(font_size * 1.3)
    buffer = io.BytesIO()
    options = {"quality": 85} if output_format in ("jpeg", "webp") else {}
    image.save(buffer, PIL_FORMATS[output_format], **options)
    if padding_bytes and output_format == "png":
        return pad_png(buffer.getvalue(), padding_bytes)
    return buffer.getvalue()
