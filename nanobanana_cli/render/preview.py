"""Thumbnails on the terminal: kitty graphics, iTerm2 inline images, sixel, or Unicode half-blocks.

Only the Output object calls this, and only when stderr is a terminal in human mode. Pillow (the
`sandbox` extra) is used when installed to scale, convert and quantise; without it kitty and
iTerm2 still get the original file (they scale it themselves) and the others get one note.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping
from pathlib import Path

PROTOCOLS = ("kitty", "iterm", "sixel", "blocks")
PREVIEW_ENV = "NANOBANANA_PREVIEW_PROTOCOL"
KITTY_CHUNK = 4096
SIXEL_COLOURS = 64


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


def _pillow_image(data: bytes, columns: int, rows_of_pixels: int) -> object:
    try:
        from PIL import Image
    except ImportError:
        raise PreviewUnavailable("previews in this terminal need Pillow: pip install 'nanobanana-cli[sandbox]'") from None
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except Exception as exc:  # Pillow raises several types for bad data
        raise PreviewUnavailable(f"cannot decode the image ({type(exc).__name__})") from None
    image.thumbnail((columns, rows_of_pixels))
    return image


def _as_png(data: bytes) -> bytes:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    image = _pillow_image(data, 4096, 4096)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")  # type: ignore[attr-defined]
    return buffer.getvalue()


def kitty(data: bytes, columns: int) -> str:
    encoded = base64.standard_b64encode(_as_png(data)).decode("ascii")
    chunks = [encoded[i:i + KITTY_CHUNK] for i in range(0, len(encoded), KITTY_CHUNK)] or [""]
    parts = []
    for number, chunk in enumerate(chunks):
        more = int(number < len(chunks) - 1)
        keys = f"f=100,a=T,c={columns},m={more}" if number == 0 else f"m={more}"
        parts.append(f"\x1b_G{keys};{chunk}\x1b\\")
    return "".join(parts) + "\n"


def iterm(data: bytes, columns: int) -> str:
    encoded = base64.standard_b64encode(data).decode("ascii")
    return f"\x1b]1337;File=inline=1;size={len(data)};width={columns};preserveAspectRatio=1:{encoded}\x07\n"


def blocks(data: bytes, columns: int) -> str:
    """Two pixels per cell: the upper half-block in the top pixel's colour over the bottom one's."""
    image = _pillow_image(data, columns, columns * 2)
    width, height = image.size  # type: ignore[attr-defined]
    pixels = image.load()  # type: ignore[attr-defined]
    lines = []
    for top in range(0, height - 1, 2):
        cells = [
            "\x1b[38;2;{};{};{}m\x1b[48;2;{};{};{}m\u2580".format(*pixels[x, top], *pixels[x, top + 1]) for x in range(width)
        ]
        lines.append("".join(cells) + "\x1b[0m")
    return "\n".join(lines) + "\n"


def sixel(data: bytes, columns: int) -> str:
    """DEC sixel: a palette of at most 64 colours, then bands six pixels high, run-length encoded."""
    image = _pillow_image(data, columns * 8, columns * 16).quantize(SIXEL_COLOURS)  # type: ignore[attr-defined]
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
    """The escape sequences that draw `path` about `columns` cells wide."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PreviewUnavailable(f"cannot read {path}: {exc.strerror or exc}") from None
    return RENDERERS[protocol](data, max(8, columns))
