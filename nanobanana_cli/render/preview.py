"""Thumbnails on the terminal: kitty graphics, iTerm2 inline images, sixel, or Unicode half-blocks.

Only the Output object calls this, and only when stderr is a terminal in human mode. Pillow (the
`sandbox` extra) is used when installed to scale, convert and quantise; without it kitty and
iTerm2 still get a small original file (they scale it themselves) and the others get one note.

Within a budget, whatever the file claims: the pixel count its header declares and its size are
checked before anything is decoded (a 600 KB PNG may declare 13000×13000 pixels, 500 MB once
decoded), and kitty and iTerm2 get the file as it is only while it is small, else a thumbnail.
"""

from __future__ import annotations

import base64
import io
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..engine.image_format import SNIFF_BYTES, sniff_image_format

PROTOCOLS = ("kitty", "iterm", "sixel", "blocks")
PREVIEW_ENV = "NANOBANANA_PREVIEW_PROTOCOL"
KITTY_CHUNK = 4096
SIXEL_COLOURS = 64
MAX_PIXELS = 40_000_000  # decoded as RGB, 120 MB: the most one preview may cost
MAX_FILE_BYTES = 256 * 1024 * 1024
RAW_MAX_BYTES = 2 * 1024 * 1024  # what kitty or iTerm2 get as it is; a bigger file goes as a thumbnail
HEAD_BYTES = 64 * 1024  # enough for a PNG's or WebP's header, and a JPEG's unless big metadata comes first
THUMBNAIL_PIXELS_PER_COLUMN = 16  # a cell is 7 to 10 pixels wide: twice that stays sharp on a high-DPI screen


class PreviewUnavailable(Exception):
    """This image cannot be previewed here (no Pillow for the chosen protocol, unreadable file)."""


def choose_protocol(environ: Mapping[str, str] = os.environ) -> str:
    """The best image protocol the terminal announces in its environment; half-blocks work everywhere."""
    forced = environ.get(PREVIEW_ENV, "").strip().lower()
    if forced in PROTOCOLS:
        return forced
    term, program = environ.get("TERM", ""), environ.get("TERM_PROGRAM", "")
    if term == "xterm-kitty" or environ.get("KITTY_WINDOW_ID") or program == "ghostty":
        return "kitty"
    if program in ("iTerm.app", "WezTerm") or environ.get("LC_TERMINAL") == "iTerm2":
        return "iterm"
    if "sixel" in term or term.startswith(("foot", "mlterm", "yaft")):
        return "sixel"
    return "blocks"


def _pillow_image(path: Path, width: int, height: int) -> Any:
    """The image scaled to fit `width`×`height`, in RGB; decoded only once its size is known to be within budget."""
    try:
        from PIL import Image
    except ImportError:
        raise PreviewUnavailable("previews in this terminal need Pillow: pip install 'nanobanana-cli[sandbox]'") from None
    with warnings.catch_warnings():
        # Pillow warns of big images on stderr; the pixel count is checked here instead, before decoding.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                _check_pixels(path, image.width, image.height)
                image.thumbnail((width, height))  # decodes JPEG at 1/2 to 1/8 scale where it can
                return image.convert("RGB")
        except Image.DecompressionBombError:
            raise PreviewUnavailable(f"{path.name} declares too many pixels to preview") from None
        except PreviewUnavailable:
            raise
        except Exception as exc:  # Pillow raises several types for bad data
            raise PreviewUnavailable(f"cannot decode the image ({type(exc).__name__})") from None


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise PreviewUnavailable(
            f"{path.name} declares {width}×{height} pixels, over the preview's {MAX_PIXELS // 1_000_000}-megapixel budget"
        )


def _thumbnail_png(path: Path, columns: int) -> bytes:
    side = columns * THUMBNAIL_PIXELS_PER_COLUMN
    buffer = io.BytesIO()
    _pillow_image(path, side, side).save(buffer, "PNG")
    return buffer.getvalue()


def _as_is(path: Path, png_only: bool) -> bytes | None:
    """The file's own bytes, when it is small enough to send as it is (and a PNG, if it must be)."""
    with path.open("rb") as handle:
        data = handle.read(RAW_MAX_BYTES + 1)
    if len(data) > RAW_MAX_BYTES or (png_only and sniff_image_format(data[:SNIFF_BYTES]) != "png"):
        return None
    return data


def kitty(path: Path, columns: int) -> str:
    data = _as_is(path, png_only=True) or _thumbnail_png(path, columns)
    encoded = base64.standard_b64encode(data).decode("ascii")
    chunks = [encoded[i:i + KITTY_CHUNK] for i in range(0, len(encoded), KITTY_CHUNK)] or [""]
    parts = []
    for number, chunk in enumerate(chunks):
        more = int(number < len(chunks) - 1)
        keys = f"f=100,a=T,c={columns},m={more}" if number == 0 else f"m={more}"
        parts.append(f"\x1b_G{keys};{chunk}\x1b\\")
    return "".join(parts) + "\n"


def iterm(path: Path, columns: int) -> str:
    data = _as_is(path, png_only=False) or _thumbnail_png(path, columns)
    encoded = base64.standard_b64encode(data).decode("ascii")
    return f"\x1b]1337;File=inline=1;size={len(data)};width={columns};preserveAspectRatio=1:{encoded}\x07\n"


def blocks(path: Path, columns: int) -> str:
    """Two pixels per cell: the upper half-block in the top pixel's colour over the bottom one's."""
    image = _pillow_image(path, columns, columns * 2)
    width, height = image.size
    pixels = image.load()
    lines = []
    for top in range(0, height - 1, 2):
        cells = [
            "\x1b[38;2;{};{};{}m\x1b[48;2;{};{};{}m\u2580".format(*pixels[x, top], *pixels[x, top + 1]) for x in range(width)
        ]
        lines.append("".join(cells) + "\x1b[0m")
    return "\n".join(lines) + "\n"


def sixel(path: Path, columns: int) -> str:
    """DEC sixel: a palette of at most 64 colours, then bands six pixels high, run-length encoded."""
    image = _pillow_image(path, columns * 8, columns * 16).quantize(SIXEL_COLOURS)
    width, height = image.size
    palette = image.getpalette()[: SIXEL_COLOURS * 3]
    indices = image.load()
    out = [f'\x1bPq"1;1;{width};{height}']
    for colour in range(len(palette) // 3):
        r, g, b = (value * 100 // 255 for value in palette[colour * 3:colour * 3 + 3])
        out.append(f"#{colour};2;{r};{g};{b}")
    for band in range(0, height, 6):
        rows = range(band, min(band + 6, height))
        used = sorted({indices[x, y] for y in rows for x in range(width)})
        for colour in used:
            bits = [sum(1 << (y - band) for y in rows if indices[x, y] == colour) for x in range(width)]
            out.append(f"#{colour}{_run_length(bits)}$")
        out.append("-")
    return "".join(out) + "\x1b\\\n"


def _run_length(bits: list[int]) -> str:
    encoded, position = [], 0
    while position < len(bits):
        run = 1
        while position + run < len(bits) and bits[position + run] == bits[position]:
            run += 1
        char = chr(63 + bits[position])
        encoded.append(f"!{run}{char}" if run > 3 else char * run)
        position += run
    return "".join(encoded)


RENDERERS = {"kitty": kitty, "iterm": iterm, "sixel": sixel, "blocks": blocks}


def render(path: Path, protocol: str, columns: int) -> str:
    """The escape sequences that draw `path` about `columns` cells wide; PreviewUnavailable for
    a file that cannot be read, or that is over the budget by its size or its header."""
    from ..engine.image_format import image_size

    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            declared = image_size(handle.read(HEAD_BYTES))
        if size > MAX_FILE_BYTES:
            raise PreviewUnavailable(f"{path.name} is {size} bytes, over the preview's {MAX_FILE_BYTES // 2**20} MB budget")
        if declared is not None:
            _check_pixels(path, *declared)
        return RENDERERS[protocol](path, max(8, columns))
    except OSError as exc:
        raise PreviewUnavailable(f"cannot read {path}: {exc.strerror or exc}") from None
