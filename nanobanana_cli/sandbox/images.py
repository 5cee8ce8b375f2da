"""Real image files for the sandbox, in the requested aspect ratio and format.

With Pillow: a gradient with the prompt written on it, as PNG, JPEG or WebP. Without it: a PNG
gradient drawn with zlib and struct alone (colours and a band vary with the prompt), so the
sandbox runs on a bare Python; JPEG and WebP then are refused up front with the install hint.
"""

from __future__ import annotations

import hashlib
import io
import struct
import textwrap
import zlib

from ..errors import UsageError

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INSTALL_HINT = "pip install 'nanobanana-cli[sandbox]'"

Colour = tuple[int, int, int]


def pillow_available() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def ensure_can_render(output_format: str) -> None:
    """Refuse at once what cannot be drawn here, rather than fail when the file is fetched."""
    if output_format != "png" and not pillow_available():
        raise UsageError(
            f"the sandbox draws {output_format} images with Pillow, which is not installed (png works without it)",
            hint=INSTALL_HINT,
        )


def image_size(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    """Exact W:H: both sides are the same multiple of the ratio's terms."""
    width_term, height_term = (int(part) for part in aspect_ratio.split(":"))
    scale = max(1, long_side // max(width_term, height_term))
    return width_term * scale, height_term * scale


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def pad_png(data: bytes, padding_bytes: int) -> bytes:
    """Grow a PNG by a private ancillary chunk before IEND: still valid, as large as a test needs."""
    iend = data.rindex(b"IEND") - 4
    return data[:iend] + _chunk(b"nbPd", bytes(padding_bytes)) + data[iend:]


def _palette(prompt: str, index: int) -> tuple[Colour, Colour, float]:
    """Two colours and a band position, all from the prompt: different prompts, different images."""
    seed = hashlib.sha256(f"{prompt}\0{index}".encode()).digest()
    return (seed[0], seed[1], seed[2]), (seed[3], seed[4], seed[5]), seed[6] / 255


def _blend(start: Colour, end: Colour, step: int) -> bytes:
    return bytes(start[c] + (end[c] - start[c]) * step // 255 for c in range(3))


def draw_png(width: int, height: int, prompt: str, index: int) -> bytes:
    """A vertical gradient crossed by an inverted band, as an 8-bit RGB PNG: no Pillow needed."""
    top, bottom, band_at = _palette(prompt, index)
    band_start, band_width = int(width * band_at * 0.75), max(1, width // 8)
    rows = []
    for y in range(height):
        colour = _blend(top, bottom, y * 255 // max(1, height - 1))
        inverse = bytes(255 - value for value in colour)
        # each scanline: filter type 0, then its pixels
        rows.append(b"\x00" + colour * band_start + inverse * band_width + colour * (width - band_start - band_width))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"".join(rows), 6)) + _chunk(b"IEND", b"")


def draw_with_pillow(width: int, height: int, prompt: str, index: int, caption: str, output_format: str) -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    top, bottom, _ = _palette(prompt, index)
    # A 256-pixel gradient strip resized up is far cheaper than drawing every row.
    strip = Image.new("RGB", (1, 256))
    strip.putdata([tuple(_blend(top, bottom, y)) for y in range(256)])
    image = strip.resize((width, height), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    font_size = max(12, width // 28)
    font = ImageFont.load_default(size=font_size)
    lines = textwrap.wrap(prompt, width=max(10, int(width / (font_size * 0.6))))[:6]
    lines.append(caption)
    y = max(8, height // 10)
    for line in lines:
        draw.text((width // 20 + 2, y + 2), line, fill=(0, 0, 0), font=font)
        draw.text((width // 20, y), line, fill=(255, 255, 255), font=font)
        y += int(font_size * 1.3)
    buffer = io.BytesIO()
    options = {"quality": 85} if output_format in ("jpeg", "webp") else {}
    image.save(buffer, PIL_FORMATS[output_format], **options)
    return buffer.getvalue()


def render_image(
    prompt: str, aspect_ratio: str, output_format: str, index: int, long_side: int = 1024, *, padding_bytes: int = 0
) -> bytes:
    ensure_can_render(output_format)
    width, height = image_size(aspect_ratio, long_side)
    if pillow_available():
        caption = f"#{index}  {aspect_ratio}  {output_format}"
        data = draw_with_pillow(width, height, prompt, index, caption, output_format)
    else:
        data = draw_png(width, height, prompt, index)
    return pad_png(data, padding_bytes) if padding_bytes and output_format == "png" else data
