"""Previews within a budget: a file's declared pixel count and its size are checked before
anything is decoded, kitty and iTerm2 get a thumbnail of a big file, and no library warning
reaches the terminal."""

from __future__ import annotations

import base64
import io
import re
import struct
import warnings
import zlib
from pathlib import Path

import pytest
from PIL import Image

from nanobanana_cli.render import preview


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def declared_png(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header declares `width`×`height`: its pixel data is a few bytes of a first row."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """Every image Pillow was asked to decode (or even to open)."""
    seen: list[str] = []
    real_open, real_load = Image.open, Image.Image.load
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: seen.append(f"open {fp}") or real_open(fp, *a, **k))
    monkeypatch.setattr(Image.Image, "load", lambda self: seen.append("load") or real_load(self))
    return seen


@pytest.mark.parametrize("protocol", preview.PROTOCOLS)
def test_a_file_declaring_13000_by_13000_pixels_is_never_decoded(tmp_path, protocol, decodes, capfd):
    bomb = declared_png(tmp_path / "bomb.png", 13000, 13000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(preview.PreviewUnavailable, match="13000×13000 pixels, over the preview's 40-megapixel budget"):
            preview.render(bomb, protocol, 32)
    assert decodes == [] and caught == []
    assert "Warning" not in capfd.readouterr().err


def test_pillow_s_own_warning_never_reaches_the_terminal_when_the_header_is_past_the_first_bytes(tmp_path, capfd):
    # A JPEG whose frame header comes after 70 KB of metadata: only Pillow learns its size.
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG")
    data = buffer.getvalue()
    filler = b"\xff\xe2" + struct.pack(">H", 65535) + b"\0" * 65533
    big = data[:2] + filler + filler + data[2:]
    sof = big.index(b"\xff\xc0")
    big = big[:sof + 5] + struct.pack(">HH", 13000, 13000) + big[sof + 9:]
    path = tmp_path / "late.jpg"
    path.write_bytes(big)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(preview.PreviewUnavailable, match="13000×13000"):
            preview.render(path, "blocks", 32)
    assert caught == [] and "Warning" not in capfd.readouterr().err


@pytest.mark.parametrize("protocol", ["kitty", "iterm"])
def test_kitty_and_iterm_get_a_thumbnail_of_a_big_file(tmp_path, protocol):
    path = tmp_path / "big.png"
    Image.new("RGB", (600, 400), (20, 120, 220)).save(path)
    padded = path.read_bytes()
    # the same picture, grown past the as-is limit by a metadata chunk
    padded = padded[:33] + chunk(b"tEXt", b"padding\0" + b"x" * (preview.RAW_MAX_BYTES + 1)) + padded[33:]
    path.write_bytes(padded)
    out = preview.render(path, protocol, 32)
    sent = base64.b64decode("".join(re.findall(r";([A-Za-z0-9+/=]*)\x1b\\", out)) if protocol == "kitty"
                            else re.search(r":([A-Za-z0-9+/=]+)\x07", out)[1])
    assert len(out) < preview.RAW_MAX_BYTES // 4
    with Image.open(io.BytesIO(sent)) as thumbnail:
        assert thumbnail.format == "PNG" and max(thumbnail.size) <= 32 * preview.THUMBNAIL_PIXELS_PER_COLUMN
        assert thumbnail.getpixel((0, 0))[:3] == (20, 120, 220)


def test_a_file_over_the_size_budget_is_not_read(tmp_path, monkeypatch, decodes):
    monkeypatch.setattr(preview, "MAX_FILE_BYTES", 1000)
    path = tmp_path / "a.png"
    Image.new("RGB", (64, 64)).save(path, compress_level=0)
    decodes.clear()  # saving it loaded the new image
    with pytest.raises(preview.PreviewUnavailable, match="over the preview's"):
        preview.render(path, "blocks", 32)
    assert decodes == []
