"""Provenance inside the saved image: how it was made, readable a month later on any machine.

Written into the container, never by re-encoding: PNG gets an `iTXt` chunk, JPEG an XMP `APP1`
segment, WebP an `XMP ` chunk (the file becomes extended WebP, `VP8X`, if it was not). The image
data bytes are copied unchanged. No well-kept library does this without re-encoding (Pillow
rewrites the pixels when it saves; piexif writes EXIF only), so the few container rules are here.

A file that carries a C2PA / Content Credentials manifest is never touched, since any write
would break its signed hash; it gets a sidecar `NAME.json` instead. So does any file we cannot
parse with confidence.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEYWORD = b"nanobanana"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_NAMESPACE = "https://github.com/nanobanana-cli/provenance/1.0/"
JPEG_MAX_SEGMENT = 65533
SIDECAR_SUFFIX = ".json"


class NotEmbeddable(Exception):
    """This file cannot take provenance safely (C2PA manifest, existing XMP, unknown layout)."""


# -- reading the container ------------------------------------------------------------------------


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start of the chunk, end of the chunk) for every chunk, or NotEmbeddable."""
    if not data.startswith(PNG_SIGNATURE):
        raise NotEmbeddable("not a PNG")
    chunks, offset = [], len(PNG_SIGNATURE)
    while offset + 12 <= len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        end = offset + 12 + length
        if end > len(data):
            raise NotEmbeddable("truncated PNG chunk")
        chunks.append((kind, offset, end))
        offset = end
        if kind == b"IEND":
            return chunks
    raise NotEmbeddable("PNG without IEND")


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each segment before the image scan, or NotEmbeddable."""
    if not data.startswith(b"\xff\xd8"):
        raise NotEmbeddable("not a JPEG")
    segments, offset = [], 2
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xDA:  # start of scan: the entropy-coded data follows
            return segments
        (length,) = struct.unpack(">H", data[offset + 2:offset + 4])
        segments.append((marker, offset, offset + 2 + length))
        offset += 2 + length
    raise NotEmbeddable("JPEG without a scan")


def _webp_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise NotEmbeddable("not a WebP")
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        kind = data[offset:offset + 4]
        (length,) = struct.unpack("<I", data[offset + 4:offset + 8])
        end = offset + 8 + length + (length & 1)
        if end > len(data):
            raise NotEmbeddable("truncated WebP chunk")
        chunks.append((kind, offset, end))
        offset = end
    return chunks


def image_kind(data: bytes) -> str | None:
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def has_c2pa(data: bytes) -> bool:
    """Whether the file carries a C2PA manifest: PNG `caBX`, JPEG APP11 JUMBF, WebP `C2PA`."""
    try:
        kind = image_kind(data)
        if kind == "png":
            return any(chunk == b"caBX" for chunk, _, _ in _png_chunks(data))
        if kind == "jpeg":
            return any(marker == 0xEB and b"jumb" in data[start:end] for marker, start, end in _jpeg_segments(data))
        if kind == "webp":
            return any(chunk == b"C2PA" for chunk, _, _ in _webp_chunks(data))
    except NotEmbeddable:
        return False
    return False


def image_data_sha256(data: bytes) -> str | None:
    """A hash of the image data alone (PNG IDAT, JPEG scan, WebP bitstream), which metadata never changes.

    It lets `inspect` tell whether the picture is intact on any machine, embedded or not.
    """
    import hashlib

    digest = hashlib.sha256()
    try:
        kind = image_kind(data)
        if kind == "png":
            for chunk, start, end in _png_chunks(data):
                if chunk == b"IDAT":
                    digest.update(data[start + 8:end - 4])
        elif kind == "jpeg":
            digest.update(data[_jpeg_segments(data)[-1][2] if _jpeg_segments(data) else 2:])
        elif kind == "webp":
            for chunk, start, end in _webp_chunks(data):
                if chunk in (b"VP8 ", b"VP8L", b"ALPH", b"ANMF"):
                    digest.update(data[start + 8:end])
        else:
            return None
    except NotEmbeddable:
        return None
    return digest.hexdigest()


# -- writing ------------------------------------------------------------------------------------


def _xmp_packet(provenance: dict[str, Any]) -> bytes:
    document = escape(json.dumps(provenance, ensure_ascii=False, sort_keys=True))
    prompt = escape(str(provenance.get("prompt", "")))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:nb="{XMP_NAMESPACE}">'
        f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{prompt}</rdf:li></rdf:Alt></dc:description>'
        f"<nb:provenance>{document}</nb:provenance>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode("utf-8")


def _embed_png(data: bytes, provenance: dict[str, Any]) -> bytes:
    chunks = _png_chunks(data)
    if any(kind == b"iTXt" and data[start + 8:start + 8 + len(PNG_KEYWORD) + 1] == PNG_KEYWORD + b"\0"
           for kind, start, _ in chunks):
        raise NotEmbeddable("already has nanobanana provenance")
    # keyword, NUL, uncompressed flag and method, empty language tag and translated keyword, UTF-8 text
    payload = PNG_KEYWORD + b"\0\0\0\0\0" + json.dumps(provenance, ensure_ascii=False, sort_keys=True).encode("utf-8")
    chunk = struct.pack(">I", len(payload)) + b"iTXt" + payload + struct.pack(">I", zlib.crc32(b"iTXt" + payload))
    _, _, after_header = chunks[0]  # IHDR is always first
    return data[:after_header] + chunk + data[after_header:]


def _embed_jpeg(data: bytes, provenance: dict[str, Any]) -> bytes:
    segments = _jpeg_segments(data)
    if any(marker == 0xE1 and data[start + 4:start + 4 + len(XMP_HEADER)] == XMP_HEADER for marker, start, _ in segments):
        raise NotEmbeddable("already has an XMP packet")  # a JPEG holds one standard XMP packet
    body = XMP_HEADER + _xmp_packet(provenance)
    if len(body) > JPEG_MAX_SEGMENT:
        raise NotEmbeddable("provenance larger than one JPEG segment")
    segment = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
    # after SOI and the JFIF/EXIF application headers that readers expect first
    insert_at = 2
    for marker, _, end in segments:
        if marker in (0xE0, 0xE1):
            insert_at = end
        else:
            break
    return data[:insert_at] + segment + data[insert_at:]


def _webp_canvas(data: bytes, kind: bytes, start: int) -> tuple[int, int, bool]:
    """(width, height, has alpha) of a simple WebP's only image chunk."""
    payload = data[start + 8:]
    if kind == b"VP8 " and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    if kind == b"VP8L" and payload[:1] == b"\x2f":
        (bits,) = struct.unpack("<I", payload[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise NotEmbeddable("unrecognised WebP image chunk")


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def _embed_webp(data: bytes, provenance: dict[str, Any]) -> bytes:
    chunks = _webp_chunks(data)
    if any(kind == b"XMP " for kind, _, _ in chunks):
        raise NotEmbeddable("already has an XMP packet")
    xmp = _riff_chunk(b"XMP ", _xmp_packet(provenance))
    first, start, _ = chunks[0]
    if first == b"VP8X":
        flags = data[start + 8] | 0x04  # the XMP bit
        body = data[12:start + 8] + bytes([flags]) + data[start + 9:] + xmp
    else:
        width, height, alpha = _webp_canvas(data, first, start)
        header = bytes([0x04 | (0x10 if alpha else 0), 0, 0, 0])
        header += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body = _riff_chunk(b"VP8X", header) + data[12:] + xmp
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


EMBEDDERS = {"png": _embed_png, "jpeg": _embed_jpeg, "webp": _embed_webp}


def with_provenance(data: bytes, provenance: dict[str, Any]) -> bytes:
    """The same image with provenance in its container; `NotEmbeddable` when that would be unsafe."""
    kind = image_kind(data)
    if kind is None:
        raise NotEmbeddable("not a PNG, JPEG or WebP")
    if has_c2pa(data):
        raise NotEmbeddable("carries a C2PA manifest, whose signature a write would break")
    return EMBEDDERS[kind](data, provenance)


def sidecar_path(image: Path) -> Path:
    return image.with_name(image.name + SIDECAR_SUFFIX)


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, os.stat(path).st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def record(image: Path, provenance: dict[str, Any], *, mode: str = "embed") -> str:
    """Record provenance for a saved image: "embedded", "sidecar" or "none" says what was done."""
    if mode == "none":
        return "none"
    provenance = {**provenance, "image_data_sha256": image_data_sha256(image.read_bytes())}
    if mode == "embed":
        try:
            _write_atomically(image, with_provenance(image.read_bytes(), provenance))
            return "embedded"
        except NotEmbeddable:
            pass
    sidecar_path(image).write_text(json.dumps(provenance, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return "sidecar"


# -- reading it back -------------------------------------------------------------------------------


def _from_xmp(packet: bytes) -> dict[str, Any] | None:
    from xml.sax.saxutils import unescape

    text = packet.decode("utf-8", "replace")
    start, end = text.find("<nb:provenance>"), text.find("</nb:provenance>")
    if start < 0 or end < start:
        return None
    try:
        found = json.loads(unescape(text[start + len("<nb:provenance>"):end]))
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def embedded(data: bytes) -> dict[str, Any] | None:
    """The provenance inside an image's bytes, if any."""
    try:
        kind = image_kind(data)
        if kind == "png":
            for chunk, start, end in _png_chunks(data):
                payload = data[start + 8:end - 4]
                if chunk == b"iTXt" and payload.startswith(PNG_KEYWORD + b"\0\0\0\0\0"):
                    found = json.loads(payload[len(PNG_KEYWORD) + 5:].decode("utf-8"))
                    return found if isinstance(found, dict) else None
        if kind == "jpeg":
            for marker, start, end in _jpeg_segments(data):
                if marker == 0xE1 and data[start + 4:start + 4 + len(XMP_HEADER)] == XMP_HEADER:
                    return _from_xmp(data[start + 4 + len(XMP_HEADER):end])
        if kind == "webp":
            for chunk, start, end in _webp_chunks(data):
                if chunk == b"XMP ":
                    return _from_xmp(data[start + 8:end])
    except (NotEmbeddable, ValueError):
        return None
    return None


def read(image: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(provenance, where it was found: "embedded" or "sidecar"), or (None, None)."""
    found = embedded(image.read_bytes())
    if found is not None:
        return found, "embedded"
    sidecar = sidecar_path(image)
    if sidecar.is_file():
        try:
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except ValueError:
            return None, None
        if isinstance(data, dict):
            return data, "sidecar"
    return None, None
