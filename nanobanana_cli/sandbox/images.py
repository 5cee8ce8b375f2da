"""Real image files for the sandbox, in the requested aspect ratio, size and format.

With Pillow: a gradient with the prompt written on it, as PNG, JPEG or WebP; an edit's output is
its first input image fitted to the output's shape and size, tinted with the prompt's colour and
captioned, so a test can tell which inputs a job used. Without Pillow: a PNG gradient drawn with
zlib and struct alone (colours and a band vary with the prompt, and with an edit's inputs), so
the sandbox runs on a bare Python; JPEG and WebP outputs then are refused up front with the
install hint.

Input images reach the sandbox as data URIs, or as URLs of files on its own image host;
`decode_data_uri` reads the first (the second are looked up by the server, never fetched).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import struct
import textwrap
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..engine.image_format import sniff_image_format
from ..errors import UsageError

if TYPE_CHECKING:
    from .models import ImageSpec

PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INSTALL_HINT = "pip install 'nanobanana-cli[sandbox]'"

Colour = tuple[int, int, int]
DATA_URI = re.compile(r"^data:image/(?P<type>png|jpeg|jpg|webp);base64,(?P<data>[A-Za-z0-9+/=\s]*)$", re.DOTALL)
TINT = 0.3  # how much of the prompt's colour goes over an edited input: enough to see, little enough to recognise it


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


def decode_data_uri(text: str) -> bytes | None:
    """The image in a `data:image/…;base64,…` URI, or None unless it is a PNG, JPEG or WebP by its bytes."""
    match = DATA_URI.match(text)
    if match is None:
        return None
    try:
        data = base64.b64decode("".join(match["data"].split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if sniff_image_format(data[:12]) is not None else None


def _input_shape(data: bytes) -> tuple[int, int] | None:
    """(width, height) of an input image, read from its header; None where it cannot be read."""
    kind = sniff_image_format(data[:12])
    if kind == "png" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return (width, height) if width and height else None
    if not pillow_available():
        return None
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def _size_for(spec: ImageSpec, usual_long_side: int, first_input: bytes | None) -> tuple[int, int]:
    """The output's pixel size: the spec's ratio (auto: the first input's shape, else square) at its scale."""
    long_side = spec.long_side(usual_long_side)
    if spec.aspect_ratio != "auto":
        return image_size(spec.aspect_ratio, long_side)
    shape = _input_shape(first_input) if first_input is not None else None
    if shape is None:
        return long_side, long_side
    width, height = shape
    if width >= height:
        return long_side, max(1, round(long_side * height / width))
    return max(1, round(long_side * width / height)), long_side


def _draw_edit(width: int, height: int, spec: ImageSpec, index: int, inputs: Sequence[bytes]) -> bytes | None:
    """The first input fitted to width x height, tinted and captioned; None if Pillow cannot read it."""
    from PIL import Image, ImageDraw, ImageFont, ImageOps

    try:
        with Image.open(io.BytesIO(inputs[0])) as opened:
            picture = ImageOps.fit(opened.convert("RGB"), (width, height), Image.Resampling.BILINEAR)
    except Exception:
        return None
    tint, _, _ = _palette(spec.prompt, index)
    picture = Image.blend(picture, Image.new("RGB", (width, height), tint), TINT)
    draw = ImageDraw.Draw(picture)
    font_size = max(10, width // 28)
    font = ImageFont.load_default(size=font_size)
    lines = [*textwrap.wrap(spec.prompt, width=max(10, int(width / (font_size * 0.6))))[:3], f"#{index} edit of {len(inputs)} input(s)"]
    y = max(4, height // 20)
    for line in lines:
        draw.text((width // 20 + 1, y + 1), line, fill=(0, 0, 0), font=font)
        draw.text((width // 20, y), line, fill=(255, 255, 255), font=font)
        y += int(font_size * 1.3)
    buffer = io.BytesIO()
    options = {"quality": 90} if spec.output_format in ("jpeg", "webp") else {}
    picture.save(buffer, PIL_FORMATS[spec.output_format], **options)
    return buffer.getvalue()


def render_output(
    spec: ImageSpec, index: int, usual_long_side: int, *, inputs: Sequence[bytes] = (), padding_bytes: int = 0
) -> bytes:
    """Output file `index` of a job: drawn from its first input for an edit, from the prompt otherwise."""
    ensure_can_render(spec.output_format)
    width, height = _size_for(spec, usual_long_side, inputs[0] if inputs else None)
    data = None
    if inputs and pillow_available():
        data = _draw_edit(width, height, spec, index, inputs)
    if data is None and pillow_available():
        data = draw_with_pillow(width, height, spec.prompt, index, f"#{index}  {spec.aspect_ratio}  {spec.output_format}", spec.output_format)
    if data is None:
        # without Pillow the inputs still change the picture: their hashes join the prompt as its seed
        seed = spec.prompt + "".join(hashlib.sha256(item).hexdigest() for item in inputs)
        data = draw_png(width, height, seed, index)
    return pad_png(data, padding_bytes) if padding_bytes and spec.output_format == "png" else data


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


# An empty, non-final stored deflate block: a byte of block header, LEN 0, NLEN 0xFFFF. It decodes to
# nothing, so any number of them in front of a zlib stream's blocks leaves the pixels as they were.
_EMPTY_STORED_BLOCK = b"\x00\x00\x00\xff\xff"
# Pillow writes IDAT chunks of at most 64 KiB; a padded image is split the same way.
_IDAT_CHUNK_BYTES = 64 * 1024


def pad_png(data: bytes, padding_bytes: int) -> bytes:
    """Grow a PNG's image data by about `padding_bytes`: still valid, the same pixels, as large as a test needs.

    The padding is image data (empty stored deflate blocks at the start of the IDAT stream), not a
    chunk of its own, so a big padded image costs a client what a real one of that size does: every
    byte is in IDAT chunks, hashed for `image_data_sha256` and for the file alike.
    """
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        chunks.append((data[at + 4:at + 8], data[at + 8:at + 8 + length]))
        at += 12 + length
    stream = b"".join(payload for kind, payload in chunks if kind == b"IDAT")
    stream = stream[:2] + _EMPTY_STORED_BLOCK * (padding_bytes // len(_EMPTY_STORED_BLOCK)) + stream[2:]
    first_idat = next(index for index, (kind, _) in enumerate(chunks) if kind == b"IDAT")
    idats = [_chunk(b"IDAT", stream[at:at + _IDAT_CHUNK_BYTES]) for at in range(0, len(stream), _IDAT_CHUNK_BYTES)]
    before = [_chunk(kind, payload) for kind, payload in chunks[:first_idat]]
    after = [_chunk(kind, payload) for kind, payload in chunks[first_idat:] if kind != b"IDAT"]
    return b"".join([PNG_SIGNATURE, *before, *idats, *after])


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
