"""Provenance inside the saved image: how it was made, readable a month later on any machine.

Written into the container, never by re-encoding: PNG gets an `iTXt` chunk, JPEG an XMP `APP1`
segment, WebP an `XMP ` chunk (the file becomes extended WebP, `VP8X`, if it was not). The image
data bytes are copied unchanged. No well-kept library does this without re-encoding (Pillow
rewrites the pixels when it saves; piexif writes EXIF only), so the few container rules are here.

Files are walked by their chunk and segment headers and copied or hashed in blocks, never read
whole: memory stays the same for a 50 KB and a 500 MB image. Every length a file declares is
checked against the file before it is trusted (a PNG chunk, a JPEG segment, the RIFF size of a
WebP and each of its chunks), and a file the walk is not sure of raises `NotEmbeddable`, never
anything else: these files come from a server, or from whoever sent them.

A file that carries a C2PA / Content Credentials manifest is never touched, since any write
would break its signed hash; it gets a sidecar `NAME.json` instead. So does any file we cannot
parse with confidence.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Union, cast
from xml.sax.saxutils import escape

from ..stores import safe_json
from ..stores.safe_files import read_regular_file
from .image_format import PNG_SIGNATURE, SNIFF_BYTES, sniff_image_format

PNG_KEYWORD = b"nanobanana"
# keyword, NUL, uncompressed flag and method, empty language tag and translated keyword; then UTF-8 text
PNG_PREFIX = PNG_KEYWORD + b"\0\0\0\0\0"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_NAMESPACE = "https://github.com/nanobanana-cli/provenance/1.0/"
JPEG_MAX_SEGMENT = 65533
# Markers that stand alone, with no length after them: none belongs before the first scan.
JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
PNG_MAX_CHUNK = 2**31 - 1  # the PNG specification's limit on a chunk's length
# libwebp refuses a RIFF size above 2^32 - 10 (MAX_CHUNK_PAYLOAD): the limit on what we write.
RIFF_MAX_SIZE = 2**32 - 10
WEBP_VP8X_SIZE = 10
WEBP_IMAGES = (b"VP8 ", b"VP8L")
SIDECAR_SUFFIX = ".json"
BLOCK_SIZE = 1024 * 1024
# Metadata is read whole; a chunk bigger than this is nothing we wrote, and skipping it keeps memory bounded.
METADATA_MAX_BYTES = 16 * 1024 * 1024

Source = Union[bytes, "os.PathLike[str]"]
Part = tuple[Any, int, int]  # (chunk type or marker, start, end) within the file
# What an embedder writes, in order: new bytes, or a span (start, end) of the source copied as it is
# (an end of None meaning the end of the file).
Piece = bytes | tuple[int, int | None]


class NotEmbeddable(Exception):
    """This file cannot take provenance safely (C2PA manifest, existing XMP, unknown or malformed
    layout): the one error embedding raises for anything about the file. The message says why."""


# -- reading the container ------------------------------------------------------------------------


@contextmanager
def _opened(source: Source) -> Iterator[BinaryIO]:
    """Image bytes already in memory, or a file opened for reading at whatever offset is asked."""
    if isinstance(source, (bytes, bytearray)):
        yield io.BytesIO(source)
        return
    with open(source, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        # a file of one block is read at once: a single read instead of one per header, in the same memory
        yield io.BytesIO(handle.read(size)) if size <= BLOCK_SIZE else handle


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    return handle.read(max(0, size))


def _size(handle: BinaryIO) -> int:
    return handle.seek(0, os.SEEK_END)


def _blocks(handle: BinaryIO, start: int, end: int | None = None) -> Iterator[bytes]:
    """The bytes from `start` to `end` (or to the end of the file), at most `BLOCK_SIZE` at a time."""
    position = start
    while end is None or position < end:
        block = _read_at(handle, position, BLOCK_SIZE if end is None else min(BLOCK_SIZE, end - position))
        if not block:
            return
        position += len(block)
        yield block


def _png_chunks(handle: BinaryIO) -> Iterator[Part]:
    """(type, start of the chunk, end of the chunk) for every chunk, or NotEmbeddable."""
    if _read_at(handle, 0, len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        raise NotEmbeddable("not a PNG")
    size, offset = _size(handle), len(PNG_SIGNATURE)
    while offset + 12 <= size:
        length, kind = struct.unpack(">I4s", _read_at(handle, offset, 8))
        if length > PNG_MAX_CHUNK or not kind.isalpha():
            raise NotEmbeddable("malformed PNG chunk header")
        if offset == len(PNG_SIGNATURE) and (kind != b"IHDR" or length != 13):
            raise NotEmbeddable("PNG not starting with its IHDR chunk")  # as the PNG specification requires
        end = offset + 12 + length
        if end > size:
            raise NotEmbeddable("truncated PNG chunk")
        yield kind, offset, end
        offset = end
        if kind == b"IEND":
            return
    raise NotEmbeddable("PNG without IEND")


def _jpeg_segments(handle: BinaryIO) -> Iterator[Part]:
    """(marker, start, end) of each segment before the image scan, or NotEmbeddable."""
    if _read_at(handle, 0, 2) != b"\xff\xd8":
        raise NotEmbeddable("not a JPEG")
    size, offset = _size(handle), 2
    while True:
        header = _read_at(handle, offset, 4)
        if len(header) < 4 or header[0] != 0xFF:
            raise NotEmbeddable("JPEG without a scan")
        if header[1] == 0xFF:  # a fill byte, which may stand before any marker
            offset += 1
            continue
        if header[1] == 0xDA:  # start of scan: the entropy-coded data follows
            return
        if header[1] in JPEG_STANDALONE or header[1] == 0x00:
            raise NotEmbeddable(f"unexpected JPEG marker 0x{header[1]:02X} before the scan")
        (length,) = struct.unpack(">H", header[2:])
        end = offset + 2 + length
        if length < 2 or end > size:
            raise NotEmbeddable("malformed or truncated JPEG segment")
        yield header[1], offset, end
        offset = end


def _riff_end(handle: BinaryIO) -> int:
    """Where the RIFF payload ends, by the size the file declares: the end of the WebP.

    Bytes after it are no part of the image: readers stop there. Embedding drops them rather than
    refusing the file: what it writes ends where its RIFF size says, and carries nothing that was
    merely appended to the image (a second file, say) under our provenance.
    """
    header = _read_at(handle, 0, 12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WEBP":
        raise NotEmbeddable("not a WebP")
    (riff_size,) = struct.unpack("<I", header[4:8])
    end = 8 + riff_size
    # every chunk is padded to an even length, so the payload's size is even too
    if riff_size & 1 or riff_size < 4 + 8 or riff_size > RIFF_MAX_SIZE:
        raise NotEmbeddable("malformed WebP RIFF size")
    if end > _size(handle):
        raise NotEmbeddable("truncated WebP")
    return end


def _webp_chunks(handle: BinaryIO) -> Iterator[Part]:
    """(type, start, end) of each chunk inside the RIFF payload, padding included, or NotEmbeddable."""
    riff_end, offset = _riff_end(handle), 12
    while offset < riff_end:
        if offset + 8 > riff_end:
            raise NotEmbeddable("malformed WebP chunk")
        kind, length = struct.unpack("<4sI", _read_at(handle, offset, 8))
        end = offset + 8 + length + (length & 1)
        if end > riff_end:
            raise NotEmbeddable("WebP chunk beyond the RIFF payload")
        yield kind, offset, end
        offset = end


def _checked(walk: Callable[[BinaryIO], Iterator[Part]], handle: BinaryIO) -> Iterator[Part]:
    """The walk, started again once a first one reached the end without fault: a broken file is
    refused whole, whichever of its parts a caller looks at (walking reads only the headers)."""
    for _ in walk(handle):
        pass
    return walk(handle)


def _kind(handle: BinaryIO) -> str | None:
    return sniff_image_format(_read_at(handle, 0, SNIFF_BYTES))


def has_c2pa(source: Source) -> bool:
    """Whether the image (its bytes, or its file) carries a C2PA manifest: PNG `caBX`, JPEG APP11 JUMBF, WebP `C2PA`."""
    with _opened(source) as handle:
        return _has_c2pa(handle)


def _has_c2pa(handle: BinaryIO) -> bool:
    try:
        kind = _kind(handle)
        if kind == "png":
            return any(chunk == b"caBX" for chunk, _, _ in _checked(_png_chunks, handle))
        if kind == "jpeg":
            return any(marker == 0xEB and b"jumb" in _read_at(handle, start, end - start)
                       for marker, start, end in _checked(_jpeg_segments, handle))
        if kind == "webp":
            return any(chunk == b"C2PA" for chunk, _, _ in _checked(_webp_chunks, handle))
    except NotEmbeddable:
        return False
    return False


def image_data_sha256(source: Source) -> str | None:
    """A hash of the image data alone (PNG IDAT, JPEG scan, WebP bitstream), which metadata never changes.

    It lets `inspect` tell whether the picture is intact on any machine, embedded or not.
    """
    with _opened(source) as handle:
        try:
            return _hash_spans(handle, _image_data(handle))
        except NotEmbeddable:
            return None


def _hash_spans(handle: BinaryIO, spans: Iterable[tuple[int, int | None]]) -> str:
    """The sha256 of the bytes of `handle` in `spans`, one after the other, read in blocks."""
    digest = hashlib.sha256()
    for start, end in spans:
        for block in _blocks(handle, start, end):
            digest.update(block)
    return digest.hexdigest()


def _image_data(handle: BinaryIO) -> Iterator[tuple[int, int | None]]:
    """Where the image data lies: (start, end) spans, an end of None meaning the end of the file."""
    kind = _kind(handle)
    if kind == "png":
        yield from ((start + 8, end - 4) for chunk, start, end in _checked(_png_chunks, handle) if chunk == b"IDAT")
    elif kind == "jpeg":
        scan = 2
        for _, _, end in _checked(_jpeg_segments, handle):
            scan = end
        yield scan, None
    elif kind == "webp":
        bitstreams = (b"VP8 ", b"VP8L", b"ALPH", b"ANMF")
        yield from ((start + 8, end) for chunk, start, end in _checked(_webp_chunks, handle) if chunk in bitstreams)
    else:
        raise NotEmbeddable("not a PNG, JPEG or WebP")


# -- writing ------------------------------------------------------------------------------------


# Every character XML 1.0 cannot carry, even as a character reference (C0 controls but tab, CR and
# LF; surrogates, which UTF-8 cannot encode either; U+FFFE and U+FFFF). Listed rather than written
# as the complement of what XML allows: the same set, but compiling the complement's ranges up to
# U+10FFFF took 15-25 ms of every command that imports this module.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _json_text(provenance: dict[str, Any], indent: int | None = None) -> str:
    """The provenance as JSON, with every character XML or UTF-8 cannot carry written as a `\\u`
    escape: the same value to any JSON reader. (json already escapes C0 controls inside strings,
    and JSON outside strings is ASCII, so only the insides of strings are rewritten.)"""
    text = json.dumps(provenance, ensure_ascii=False, indent=indent, sort_keys=True)
    return _NOT_XML.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def _xml_text(text: str) -> str:
    """Text for an XML element: markup escaped, a CR kept as a reference (a parser would turn a raw
    one into LF), and what XML cannot carry shown as U+FFFD; the exact text is in the JSON beside it."""
    return escape(_NOT_XML.sub("\ufffd", text)).replace("\r", "&#13;")


def _xmp_packet(provenance: dict[str, Any]) -> bytes:
    document = escape(_json_text(provenance))
    prompt = _xml_text(str(provenance.get("prompt", "")))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:nb="{XMP_NAMESPACE}">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{prompt}</rdf:li></rdf:Alt></dc:description>'
        f"<nb:provenance>{document}</nb:provenance>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


# Each embedder checks the whole file before its first piece, so a refusal never leaves half an output.


def _embed_png(source: BinaryIO, provenance: dict[str, Any]) -> Iterator[Piece]:
    """The PNG with an `iTXt` chunk just before its IEND, which the specification allows (any place after
    IHDR) and readers find (Pillow once the image is loaded, or through `.text`). There, everything in
    front of it is the file as delivered: a download hashes those bytes once, as they stream, for both
    its delivered and its sealed sha256. (Earlier versions put it right after IHDR: found there all the same.)"""
    iend = 0
    for kind, start, _ in _checked(_png_chunks, source):
        iend = start  # the walk ends with IEND
        if kind == b"iTXt" and _read_at(source, start + 8, len(PNG_KEYWORD) + 1) == PNG_KEYWORD + b"\0":
            raise NotEmbeddable("already has nanobanana provenance")
    payload = PNG_PREFIX + _json_text(provenance).encode("utf-8")
    yield 0, iend
    yield struct.pack(">I", len(payload)) + b"iTXt" + payload + struct.pack(">I", zlib.crc32(b"iTXt" + payload))
    yield iend, None


def _embed_jpeg(source: BinaryIO, provenance: dict[str, Any]) -> Iterator[Piece]:
    insert_at, leading = 2, True
    for marker, start, end in _checked(_jpeg_segments, source):
        if marker == 0xE1 and _read_at(source, start + 4, len(XMP_HEADER)) == XMP_HEADER:
            raise NotEmbeddable("already has an XMP packet")  # a JPEG holds one standard XMP packet
        # after SOI and the JFIF/EXIF application headers that readers expect first
        leading = leading and marker in (0xE0, 0xE1)
        insert_at = end if leading else insert_at
    body = XMP_HEADER + _xmp_packet(provenance)
    if len(body) > JPEG_MAX_SEGMENT:
        raise NotEmbeddable("provenance larger than one JPEG segment")
    yield 0, insert_at
    yield b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    yield insert_at, None


def _webp_length(source: BinaryIO, start: int) -> int:
    """The length a WebP chunk declares for its payload (its end in a walk includes the padding byte)."""
    (length,) = struct.unpack("<I", _read_at(source, start + 4, 4))
    return int(length)


def _webp_canvas(source: BinaryIO, kind: bytes, start: int) -> tuple[int, int, bool]:
    """(width, height, has alpha) of a simple WebP's only image chunk, from its bitstream header."""
    payload = _read_at(source, start + 8, min(10, _webp_length(source, start)))
    # VP8: a key frame's 3-byte tag (bit 0 clear), start code, then 14-bit width and height
    if kind == b"VP8 " and len(payload) == 10 and not payload[0] & 1 and payload[3:6] == b"\x9d\x01\x2a":
        width, height = (value & 0x3FFF for value in struct.unpack("<HH", payload[6:10]))
        if width and height:
            return width, height, False
    # VP8L: signature, then width-1 and height-1 in 14 bits each, the alpha hint, a 3-bit version (0)
    if kind == b"VP8L" and len(payload) >= 5 and payload[0] == 0x2F:
        (bits,) = struct.unpack("<I", payload[1:5])
        if bits >> 29 == 0:
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise NotEmbeddable("malformed WebP image chunk")


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def _embed_webp(source: BinaryIO, provenance: dict[str, Any]) -> Iterator[Piece]:
    """The WebP with an `XMP ` chunk at the end of its RIFF payload, its `VP8X` header saying so.

    A simple WebP (one `VP8 ` or `VP8L` chunk) is promoted to the extended format by a `VP8X`
    header made from its bitstream. One with any other chunk beside its image is not: those
    chunks (`ALPH`, `ANIM`, `ICCP`, `EXIF`) would gain a meaning under `VP8X` that they lack now,
    and the file could stop decoding. Nor is anything not starting with a well-formed header.
    """
    image_data = False
    for kind, _, _ in _checked(_webp_chunks, source):
        if kind == b"XMP ":
            raise NotEmbeddable("already has an XMP packet")
        image_data = image_data or kind in (*WEBP_IMAGES, b"ANMF")
    chunks = _webp_chunks(source)
    first, start, _ = next(chunks, (None, 0, 0))
    if not image_data or first is None:
        raise NotEmbeddable("WebP without image data")
    riff_end = _riff_end(source)
    xmp = _riff_chunk(b"XMP ", _xmp_packet(provenance))
    if first == b"VP8X":
        if _webp_length(source, start) != WEBP_VP8X_SIZE:
            raise NotEmbeddable("malformed VP8X chunk")
        head = b""
        flags = _read_at(source, start + 8, 1)[0] | 0x04  # the XMP bit
    elif first in WEBP_IMAGES:
        if next(chunks, None) is not None:
            raise NotEmbeddable("simple WebP with chunks besides its image")
        width, height, alpha = _webp_canvas(source, first, start)
        fields = bytes([0x04 | (0x10 if alpha else 0), 0, 0, 0])
        head = _riff_chunk(b"VP8X", fields + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"))
    else:
        raise NotEmbeddable("WebP starting with an unexpected chunk")
    # the RIFF size comes first, so it is worked out from the sizes of what will follow
    riff_size = 4 + len(head) + (riff_end - 12) + len(xmp)
    if riff_size > RIFF_MAX_SIZE:
        raise NotEmbeddable("WebP too large for another chunk")
    yield b"RIFF" + struct.pack("<I", riff_size) + b"WEBP" + head
    if first == b"VP8X":
        yield 12, start + 8
        yield bytes([flags])
        start += 9
    yield start, riff_end
    yield xmp


EMBEDDERS = {"png": _embed_png, "jpeg": _embed_jpeg, "webp": _embed_webp}


def _pieces(source: BinaryIO, provenance: dict[str, Any]) -> Iterator[Piece]:
    """The pieces of `source` with provenance embedded (as its format's embedder gives them); the checks
    that refuse any image, a format we do not write or a C2PA manifest, are made at once."""
    kind = _kind(source)
    if kind is None:
        raise NotEmbeddable("not a PNG, JPEG or WebP")
    if _has_c2pa(source):
        raise NotEmbeddable("carries a C2PA manifest, whose signature a write would break")
    return EMBEDDERS[kind](source, provenance)


def embed(source: BinaryIO, target: BinaryIO, provenance: dict[str, Any]) -> tuple[str, int]:
    """Copy an image into `target` with provenance in its container, block by block: the sha256 and
    size of what was written. `NotEmbeddable` (before anything is written) when that would be unsafe."""
    digest, size = hashlib.sha256(), 0
    for piece in _pieces(source, provenance):
        for block in [piece] if isinstance(piece, bytes) else _blocks(source, *piece):
            target.write(block)
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


# -- a download, sealed where it was streamed -------------------------------------------------------
#
# A download is hashed as it streams (its sha256, and its image data's, by `ImageDataHasher`) and
# written `room_for` bytes into its temporary file: the room embedding will need in front of the
# delivered bytes. `seal_in_place` then writes the few bytes that change (the container's head and the
# provenance) around the delivered bytes, which stay where they are. The file is never copied. For the
# sealed file's sha256 it is read back from the first byte written: a PNG, whose provenance goes just
# before IEND, only from there (its delivered bytes before it were hashed as they streamed); a JPEG or
# WebP, whose head changes, whole.

MOVABLE_BYTES = 4 * 1024 * 1024  # a JPEG's leading segments, moved to make room: a few kilobytes in practice
_PLACEHOLDER_DIGEST = "0" * 64  # as long as any sha256 in hex, and escaped alike (not at all)


class NotInPlace(Exception):
    """This layout cannot be sealed where it lies (the room left was not what embedding needs): copy it."""


class ImageDataHasher:
    """`image_data_sha256` of a file computed from its bytes as they go past, in pieces of any size.

    It follows the container's lengths without checking them: `streamed_image_data_sha256` compares the
    spans it hashed with a walk of the finished file (which reads only headers) and trusts the digest
    only when they are the same bytes. Anything it cannot follow, it gives up on (`broken`).
    """

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.spans: list[tuple[int, int | None]] = []
        self.broken = False
        self.hashed = 0  # bytes hashed: every byte of `spans`, unless the stream ended early
        self._offset = 0  # bytes fed so far
        self._header = bytearray()
        self._want = 16  # bytes of the next header to gather; the first is the format's signature
        self._step: Callable[[bytes, int], None] = self._start
        self._hash_left = self._skip_left = 0
        self._rest = self._done = False
        self._riff_end = self._last_end = 0

    def feed(self, data: bytes) -> None:
        self._consume(memoryview(data), self._offset)
        self._offset += len(data)

    def hexdigest(self) -> str:
        return self.digest.hexdigest()

    def _consume(self, view: memoryview, base: int) -> None:
        """Follow the bytes `view`, which start at offset `base` of the file."""
        at, size = 0, len(view)
        while at < size and not self.broken:
            if self._rest:
                self.digest.update(view[at:])
                at, self.hashed = size, self.hashed + size - at
            elif self._hash_left:
                take = min(self._hash_left, size - at)
                self.digest.update(view[at:at + take])
                at, self._hash_left, self.hashed = at + take, self._hash_left - take, self.hashed + take
            elif self._skip_left:
                take = min(self._skip_left, size - at)
                at, self._skip_left = at + take, self._skip_left - take
            elif self._done:  # past the image's last byte
                return
            else:
                take = min(self._want - len(self._header), size - at)
                self._header += view[at:at + take]
                at += take
                if len(self._header) == self._want:
                    header = bytes(self._header)
                    self._header.clear()
                    self._step(header, base + at)

    def _expect(self, size: int, step: Callable[[bytes, int], None]) -> None:
        self._want, self._step = size, step

    def _start(self, header: bytes, at: int) -> None:
        """The first 16 bytes: the format, then what follows its signature, followed like any other bytes."""
        kind, begin = sniff_image_format(header), at - len(header)
        if kind == "png" and header.startswith(PNG_SIGNATURE):
            self._expect(8, self._png_chunk)
            self._consume(memoryview(header)[8:], begin + 8)
        elif kind == "jpeg":
            self._last_end = 2
            self._expect(1, self._jpeg_first)
            self._consume(memoryview(header)[2:], begin + 2)
        elif kind == "webp":
            (riff_size,) = struct.unpack("<I", header[4:8])
            self._riff_end = 8 + riff_size
            self._done = self._riff_end <= 12
            self._expect(8, self._webp_chunk)
            self._consume(memoryview(header)[12:], begin + 12)
        else:
            self.broken = True

    # PNG: an 8-byte header (length, type), the data, a 4-byte CRC; the image data is every IDAT's data.
    def _png_chunk(self, header: bytes, at: int) -> None:
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IDAT":
            self.spans.append((at, at + length))
            self._hash_left, self._skip_left = length, 4
        elif kind == b"IEND":
            self._done = True
        else:
            self._skip_left = length + 4

    # JPEG: segments (0xFF, marker, 2-byte length) before the scan, maybe with 0xFF fill bytes before a
    # marker; the image data is everything from the end of the last segment. `at` is just past the byte.
    def _jpeg_first(self, byte: bytes, at: int) -> None:
        if byte != b"\xff":
            self.broken = True
        self._expect(1, self._jpeg_marker)

    def _jpeg_marker(self, byte: bytes, at: int) -> None:
        if byte == b"\xda":  # the scan: the fill bytes and its marker are image data too
            self.digest.update(b"\xff" * (at - self._last_end - 1) + b"\xda")
            self.hashed += at - self._last_end
            self.spans.append((self._last_end, None))
            self._rest = True
        elif byte == b"\xff":
            self.broken = at - self._last_end > MOVABLE_BYTES
        elif byte[0] in JPEG_STANDALONE or byte == b"\x00":
            self.broken = True
        else:
            self._expect(2, self._jpeg_length)

    def _jpeg_length(self, header: bytes, at: int) -> None:
        (length,) = struct.unpack(">H", header)
        if length < 2:
            self.broken = True
            return
        self._skip_left = length - 2
        self._last_end = at + length - 2
        self._expect(1, self._jpeg_first)

    # WebP: chunks (4-byte type, 4-byte length, data, a pad byte to an even length) up to the RIFF size;
    # the image data is every bitstream chunk's data with its padding.
    def _webp_chunk(self, header: bytes, at: int) -> None:
        kind, length = struct.unpack("<4sI", header)
        end = at + length + (length & 1)
        if end > self._riff_end:
            self.broken = True
            return
        if kind in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
            self.spans.append((at, end))
            self._hash_left = end - at
        else:
            self._skip_left = end - at
        self._done = end >= self._riff_end


class _Shifted:
    """A file read as if it began `gap` bytes in: the delivered image behind the room left for provenance."""

    def __init__(self, handle: BinaryIO, gap: int) -> None:
        self._handle, self._gap = handle, gap

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._handle.seek(offset + self._gap if whence == os.SEEK_SET else offset, whence) - self._gap

    def read(self, size: int = -1) -> bytes:
        return self._handle.read(size)


def shifted(handle: BinaryIO, gap: int) -> BinaryIO:
    return handle if gap == 0 else cast(BinaryIO, _Shifted(handle, gap))


def room_for(head: bytes, provenance: dict[str, Any]) -> int:
    """How many bytes embedding `provenance` (without its image data hash, not known yet) adds in front of
    the delivered bytes of an image starting with `head` (16 bytes or more): where to start writing them."""
    made = {**provenance, "image_data_sha256": _PLACEHOLDER_DIGEST}
    kind = sniff_image_format(head[:SNIFF_BYTES])
    if kind == "jpeg":
        return 4 + len(XMP_HEADER) + len(_xmp_packet(made))
    if kind == "webp":  # the XMP chunk goes at the end; a simple WebP gains a VP8X header in front
        return 0 if head[12:16] == b"VP8X" else 8 + WEBP_VP8X_SIZE
    return 0  # a PNG's iTXt goes at its end, before IEND


def streamed_image_data_sha256(image: BinaryIO, hasher: ImageDataHasher | None) -> str | None:
    """The image data hash of `image` (as `image_data_sha256` gives it): the one `hasher` computed while
    the bytes streamed, when a walk of the file finds it hashed exactly the image data; read again
    otherwise, or when no hasher watched them."""
    size = _size(image)
    try:
        spans = [(start, size if end is None else end) for start, end in _image_data(image)]
    except NotEmbeddable:
        return None
    if hasher is not None:
        streamed = [(start, size if end is None else end) for start, end in hasher.spans]
        same = [s for s in streamed if s[0] != s[1]] == [s for s in spans if s[0] != s[1]]
        if same and not hasher.broken and hasher.hashed == sum(end - start for start, end in spans):
            return hasher.hexdigest()
    return _hash_spans(image, spans)


def seal_in_place(
    handle: BinaryIO, gap: int, provenance: dict[str, Any], prefix: tuple[hashlib._Hash, int] | None = None
) -> tuple[str, int]:
    """Embed provenance into the image lying `gap` bytes into `handle` (opened for reading and writing),
    leaving its bytes where they are: the sealed file's sha256 and size, from at most one read of it.

    `prefix` is (the sha256 object of the image's first N bytes, N), hashed as they streamed: when
    sealing writes nothing in front of byte N (a PNG's provenance goes just before IEND), only the rest
    of the sealed file is read to finish a copy of it.

    `NotEmbeddable` as `embed` raises it, or `NotInPlace` when the room left is not the room needed;
    either before anything is written.
    """
    image = shifted(handle, gap)
    pieces = _pieces(image, provenance)
    size = _size(image)
    writes: list[tuple[int, bytes]] = []
    position = 0
    for piece in list(pieces):
        if not isinstance(piece, bytes):
            start, end = piece[0], size if piece[1] is None else piece[1]
            if start + gap == position:
                position += end - start
                continue
            if end - start > MOVABLE_BYTES:
                raise NotInPlace(f"{end - start} bytes would move")
            piece = _read_at(image, start, end - start)
        writes.append((position, piece))
        position += len(piece)
    for at, data in writes:
        handle.seek(at)
        handle.write(data)
    handle.truncate(position)
    handle.flush()
    digest, unchanged = hashlib.sha256(), 0
    if prefix is not None and gap == 0 and position >= prefix[1] and all(at >= prefix[1] for at, _ in writes):
        digest, unchanged = prefix[0].copy(), prefix[1]
    handle.seek(unchanged)
    for block in iter(lambda: handle.read(BLOCK_SIZE), b""):
        digest.update(block)
    return digest.hexdigest(), position


def sidecar_path(image: Path) -> Path:
    return image.with_name(image.name + SIDECAR_SUFFIX)


def _embed_in_place(path: Path, provenance: dict[str, Any]) -> None:
    """Embed through a temporary file beside `path` that replaces it: the image is whole at every moment."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, os.stat(path).st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as target, path.open("rb") as source:
            embed(source, target, provenance)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


# A new file only: never one that exists, never through a symbolic link.
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def write_sidecar(image: Path, provenance: dict[str, Any]) -> Path:
    """Write `NAME.json` beside the image: a new temporary file renamed onto the name, so a link
    planted there is replaced, never written through (rename replaces the link, not its target).

    Created with mode 0666 for the umask to reduce, like the image beside it (mkstemp's files are 0600).
    """
    target = sidecar_path(image)
    text = _json_text(provenance, indent=2) + "\n"
    for _ in range(100):
        temp = target.with_name(f".{target.name}.{os.urandom(4).hex()}.part")
        try:
            fd = os.open(temp, _CREATE_NEW, 0o666)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return target
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(image.parent))


def record(image: Path, provenance: dict[str, Any], *, mode: str = "embed") -> str:
    """Record provenance for a saved image: "embedded", "sidecar" or "none" says what was done."""
    if mode == "none":
        return "none"
    provenance = {**provenance, "image_data_sha256": image_data_sha256(image)}
    if mode == "embed":
        try:
            _embed_in_place(image, provenance)
            return "embedded"
        except NotEmbeddable:
            pass
    write_sidecar(image, provenance)
    return "sidecar"


# -- reading it back -------------------------------------------------------------------------------


def _from_xmp(packet: bytes) -> dict[str, Any] | None:
    from xml.sax.saxutils import unescape

    text = packet.decode("utf-8", "replace")
    start, end = text.find("<nb:provenance>"), text.find("</nb:provenance>")
    if start < 0 or end < start:
        return None
    try:
        found = safe_json.loads(unescape(text[start + len("<nb:provenance>"):end]))
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _metadata(handle: BinaryIO, start: int, end: int) -> bytes:
    """A metadata payload, read whole; one too big to be ours is read as nothing."""
    return b"" if end - start > METADATA_MAX_BYTES else _read_at(handle, start, end - start)


def embedded(source: Source) -> dict[str, Any] | None:
    """The provenance inside an image (its bytes, or its file), if any."""
    with _opened(source) as handle:
        try:
            return _embedded(handle)
        except (NotEmbeddable, ValueError):
            return None


def _embedded(handle: BinaryIO) -> dict[str, Any] | None:
    kind = _kind(handle)
    if kind == "png":
        for chunk, start, end in _checked(_png_chunks, handle):
            if chunk == b"iTXt" and _read_at(handle, start + 8, min(len(PNG_PREFIX), end - 12 - start)) == PNG_PREFIX:
                found = safe_json.loads(_metadata(handle, start + 8 + len(PNG_PREFIX), end - 4))
                return found if isinstance(found, dict) else None
    if kind == "jpeg":
        for marker, start, end in _checked(_jpeg_segments, handle):
            if marker == 0xE1 and _read_at(handle, start + 4, len(XMP_HEADER)) == XMP_HEADER:
                return _from_xmp(_metadata(handle, start + 4 + len(XMP_HEADER), end))
    if kind == "webp":
        for chunk, start, end in _checked(_webp_chunks, handle):
            if chunk == b"XMP ":
                return _from_xmp(_metadata(handle, start + 8, end))
    return None


def read(image: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(provenance, where it was found: "embedded" or "sidecar"), or (None, None)."""
    found = embedded(image)
    if found is not None:
        return found, "embedded"
    sidecar = sidecar_path(image)
    if sidecar.is_file():
        try:  # a link is not followed: a sidecar planted as one could pass another file's contents on
            data = safe_json.loads(read_regular_file(sidecar, safe_json.MAX_BYTES))
        except (OSError, ValueError):
            return None, None
        if isinstance(data, dict):
            return data, "sidecar"
    return None, None
