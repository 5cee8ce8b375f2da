"""Provenance on big images: written and read back in blocks, byte for byte as an in-memory splice would."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import tracemalloc
import zlib

import pytest

from nanobanana_cli.engine import downloads, provenance

PROVENANCE = {"prompt": "a very large fox <&>", "request_id": "0123abcd-big", "index": 1}
BIG = 21 * 1024 * 1024
# Blocks are 1 MB; a few of them in flight, never the file.
MEMORY_BUDGET = 4 * 1024 * 1024
FILLER = bytes(range(256))


def filler(size: int) -> bytes:
    return (FILLER * (size // len(FILLER) + 1))[:size]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def big_png() -> bytes:
    """A decodable PNG over 20 MB, its data stored uncompressed across many 64 KB IDAT chunks."""
    width, height = 2048, BIG // (2048 * 3) + 1
    row = b"\0" + filler(width * 3)
    stream = zlib.compress(row * height, 0)
    idats = b"".join(png_chunk(b"IDAT", stream[at:at + 65536]) for at in range(0, len(stream), 65536))
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return provenance.PNG_SIGNATURE + header + idats + png_chunk(b"IEND", b"")


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


JFIF = jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")


def big_jpeg() -> bytes:
    """A JPEG's container over 20 MB: JFIF header, tables, frame, then a long scan."""
    tables = jpeg_segment(0xDB, b"\x00" + bytes(64)) + jpeg_segment(0xC0, b"\x08\x10\x00\x10\x00\x01\x01\x11\x00")
    scan = jpeg_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + filler(BIG).replace(b"\xff", b"\xfe")
    return b"\xff\xd8" + JFIF + tables + scan + b"\xff\xd9"


def big_webp() -> bytes:
    """A simple lossless WebP over 20 MB: one VP8L chunk, 1000 x 800 with alpha."""
    bits = 999 | (799 << 14) | (1 << 28)
    payload = b"\x2f" + struct.pack("<I", bits) + filler(BIG)
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)
    return b"RIFF" + struct.pack("<I", len(chunk) + 4) + b"WEBP" + chunk


def riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) & 1)


def spliced(kind: str, data: bytes, made: dict) -> bytes:
    """What embedding must produce: the metadata spliced into the original bytes, everything else unchanged."""
    if kind == "png":
        text = b"nanobanana\0\0\0\0\0" + json.dumps(made, ensure_ascii=False, sort_keys=True).encode()
        return data[:-12] + png_chunk(b"iTXt", text) + data[-12:]  # just before IEND
    packet = provenance._xmp_packet(made)
    if kind == "jpeg":
        at = 2 + len(JFIF)  # after SOI and the JFIF header
        return data[:at] + jpeg_segment(0xE1, provenance.XMP_HEADER + packet) + data[at:]
    canvas = bytes([0x14, 0, 0, 0]) + (999).to_bytes(3, "little") + (799).to_bytes(3, "little")
    body = riff_chunk(b"VP8X", canvas) + data[12:] + riff_chunk(b"XMP ", packet)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


BUILDERS = {"png": big_png, "jpeg": big_jpeg, "webp": big_webp}


@pytest.fixture(scope="module", params=list(BUILDERS))
def big_image(request, tmp_path_factory):
    data = BUILDERS[request.param]()
    assert len(data) > 20 * 1024 * 1024
    return request.param, data, tmp_path_factory.mktemp(request.param)


def test_a_big_image_gets_exactly_the_spliced_bytes_and_reads_back(big_image):
    kind, original, directory = big_image
    path = directory / f"big.{kind}"
    path.write_bytes(original)
    image_digest = provenance.image_data_sha256(original)
    assert provenance.record(path, PROVENANCE) == "embedded"
    made = {**PROVENANCE, "image_data_sha256": image_digest}
    assert path.read_bytes() == spliced(kind, original, made)
    assert provenance.read(path) == (made, "embedded")
    assert provenance.image_data_sha256(path) == image_digest
    assert not provenance.has_c2pa(path)


def test_embedding_and_reading_a_big_image_stays_within_a_few_megabytes(big_image):
    kind, original, directory = big_image
    path = directory / f"measured.{kind}"
    path.write_bytes(original)
    del original
    tracemalloc.start()
    try:
        assert provenance.record(path, PROVENANCE) == "embedded"
        assert provenance.read(path)[1] == "embedded"
        assert provenance.image_data_sha256(path) is not None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BUDGET, f"{peak / 2**20:.1f} MB traced to embed and read a {BIG / 2**20:.0f} MB {kind}"


def test_a_download_is_sealed_in_blocks_and_reports_what_it_wrote(big_image):
    kind, original, directory = big_image
    part = directory / f".download.{kind}.part"
    part.write_bytes(original)
    del original
    tracemalloc.start()
    try:
        sealed = downloads._embed(part, PROVENANCE, threading.Event())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    written = part.read_bytes()
    assert sealed == (hashlib.sha256(written).hexdigest(), len(written))
    assert provenance.embedded(written)["request_id"] == PROVENANCE["request_id"]
    assert [p.name for p in directory.iterdir() if p.name.endswith(".part")] == [part.name], "no second temporary left"
    assert peak < MEMORY_BUDGET, f"{peak / 2**20:.1f} MB traced to seal a {BIG / 2**20:.0f} MB download"


def test_inspecting_a_big_image_reports_it_whole_within_a_few_megabytes(big_image):
    from nanobanana_cli.engine.inspection import inspect_file

    kind, original, directory = big_image
    path = directory / f"inspected.{kind}"
    path.write_bytes(original)
    assert provenance.record(path, PROVENANCE) == "embedded"
    written = path.read_bytes()
    del original
    tracemalloc.start()
    try:
        report = inspect_file(path, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (report["format"], report["bytes"]) == (kind, len(written))
    assert report["sha256"] == hashlib.sha256(written).hexdigest()
    assert report["intact"] is True and report["provenance"]["request_id"] == PROVENANCE["request_id"]
    assert peak < MEMORY_BUDGET, f"{peak / 2**20:.1f} MB traced to inspect a {BIG / 2**20:.0f} MB {kind}"
