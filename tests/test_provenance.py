"""Provenance written into PNG, JPEG and WebP containers without touching the image data."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from nanobanana_cli.engine import provenance

PROVENANCE = {"prompt": "日本の庭 <b>&amp; \"quotes\"", "request_id": "abc-123", "index": 1, "aspect_ratio": "1:1"}


def encoded(fmt: str, mode: str = "RGB", **options) -> bytes:
    image = Image.new(mode, (37, 21))
    image.putdata([(x * 7 % 256, y * 11 % 256, (x + y) % 256, 200)[: len(mode)] for y in range(21) for x in range(37)])
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def handmade_png() -> bytes:
    """A PNG from a different encoder than Pillow: stdlib zlib, one filter byte per row."""
    width, height = 5, 3
    rows = [b"\0" + bytes(value for x in range(width) for value in (x * 40, y * 80, 90)) for y in range(height)]
    raw = b"".join(rows)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return provenance.PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


SAMPLES = {
    "pillow png": lambda: encoded("PNG"),
    "pillow png with alpha": lambda: encoded("PNG", "RGBA"),
    "optimised png": lambda: encoded("PNG", optimize=True),
    "stdlib png": handmade_png,
    "baseline jpeg": lambda: encoded("JPEG", quality=85),
    "progressive jpeg with exif": lambda: encoded("JPEG", progressive=True, exif=Image.Exif().tobytes()),
    "lossy webp": lambda: encoded("WEBP", quality=80),
    "lossless webp": lambda: encoded("WEBP", lossless=True),
    "lossless webp with alpha": lambda: encoded("WEBP", "RGBA", lossless=True),
    "lossy webp with alpha (extended)": lambda: encoded("WEBP", "RGBA", quality=80),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_embedding_keeps_every_pixel_and_reads_back(name, tmp_path):
    original = SAMPLES[name]()
    path = tmp_path / "image"
    path.write_bytes(original)
    assert provenance.record(path, PROVENANCE) == "embedded"
    written = path.read_bytes()
    assert written != original
    assert pixels(written) == pixels(original)
    expected = {**PROVENANCE, "image_data_sha256": provenance.image_data_sha256(original)}
    assert provenance.embedded(written) == expected
    assert provenance.read(path) == (expected, "embedded")
    assert provenance.image_data_sha256(written) == expected["image_data_sha256"], "metadata never changes the image data"
    assert not provenance.sidecar_path(path).exists()


def with_png_chunk(data: bytes, kind: bytes, payload: bytes) -> bytes:
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:33] + chunk + data[33:]  # after the signature and IHDR


def with_jpeg_app11(data: bytes) -> bytes:
    body = b"JP\x00\x00\x00\x01\x00\x00\x00\x20jumb\x00\x00\x00\x18jumdc2pa"
    return data[:2] + b"\xff\xeb" + struct.pack(">H", len(body) + 2) + body + data[2:]


def with_webp_c2pa(data: bytes) -> bytes:
    chunk = b"C2PA" + struct.pack("<I", 4) + b"jumb"
    body = data[12:] + chunk
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


@pytest.mark.parametrize(
    "make",
    [
        lambda: with_png_chunk(encoded("PNG"), b"caBX", b"jumb-manifest"),
        lambda: with_jpeg_app11(encoded("JPEG")),
        lambda: with_webp_c2pa(encoded("WEBP", lossless=True)),
    ],
    ids=["png caBX", "jpeg APP11 JUMBF", "webp C2PA"],
)
def test_a_c2pa_file_is_left_byte_identical_with_a_sidecar(make, tmp_path):
    original = make()
    assert provenance.has_c2pa(original)
    path = tmp_path / "signed"
    path.write_bytes(original)
    assert provenance.record(path, PROVENANCE) == "sidecar"
    assert path.read_bytes() == original
    assert provenance.read(path) == ({**PROVENANCE, "image_data_sha256": provenance.image_data_sha256(original)}, "sidecar")


def test_plain_files_have_no_c2pa_and_none_mode_writes_nothing(tmp_path):
    path = tmp_path / "plain.png"
    path.write_bytes(encoded("PNG"))
    assert not provenance.has_c2pa(path.read_bytes())
    before = path.read_bytes()
    assert provenance.record(path, PROVENANCE, mode="none") == "none"
    assert path.read_bytes() == before and provenance.read(path) == (None, None)


def test_sidecar_mode_never_touches_the_image(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(encoded("JPEG"))
    before = path.read_bytes()
    assert provenance.record(path, PROVENANCE, mode="sidecar") == "sidecar"
    found, where = provenance.read(path)
    assert path.read_bytes() == before and where == "sidecar" and found["prompt"] == PROVENANCE["prompt"]


def test_a_jpeg_that_already_has_xmp_gets_a_sidecar(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(encoded("JPEG"))
    provenance.record(path, PROVENANCE)
    once = path.read_bytes()
    assert provenance.record(path, {"prompt": "again"}) == "sidecar"
    assert path.read_bytes() == once


def test_the_image_data_hash_changes_when_the_picture_does():
    original = encoded("PNG")
    edited = Image.open(io.BytesIO(original))
    edited.putpixel((0, 0), (1, 2, 3))
    buffer = io.BytesIO()
    edited.save(buffer, "PNG")
    assert provenance.image_data_sha256(buffer.getvalue()) != provenance.image_data_sha256(original)


@pytest.mark.parametrize("name", ["pillow png", "stdlib png"])
def test_provenance_written_after_ihdr_by_earlier_versions_is_still_found(name, tmp_path):
    original = SAMPLES[name]()
    made = {**PROVENANCE, "image_data_sha256": provenance.image_data_sha256(original)}
    old_layout = with_png_chunk(original, b"iTXt", provenance.PNG_PREFIX + provenance._json_text(made).encode())
    path = tmp_path / "old.png"
    path.write_bytes(old_layout)
    assert provenance.read(path) == (made, "embedded")
    assert provenance.image_data_sha256(path) == made["image_data_sha256"]
    # it already has ours: a second record writes a sidecar and leaves the image as it was
    assert provenance.record(path, {**PROVENANCE, "request_id": "other"}) == "sidecar"
    assert path.read_bytes() == old_layout


def test_a_png_gets_its_provenance_just_before_iend(tmp_path):
    original = encoded("PNG")
    path = tmp_path / "new.png"
    path.write_bytes(original)
    assert provenance.record(path, PROVENANCE) == "embedded"
    written = path.read_bytes()
    assert written[:len(original) - 12] == original[:-12] and written[-12:] == original[-12:]
    assert written[len(original) - 12 + 4:len(original) - 12 + 8] == b"iTXt"
    with Image.open(path) as image:
        image.load()
        assert image.text["nanobanana"] == provenance._json_text(provenance.embedded(written))
