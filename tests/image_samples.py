"""Images from several encoders, and the tools to take them apart and judge them, shared by the
container regression tests and the fuzz test (no tests here)."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageCms

WEBPINFO = shutil.which("webpinfo")
WIDTH, HEIGHT = 23, 13  # odd sizes: rows and chunks of odd lengths, an Adam7 pass of one column


def picture(mode: str = "RGB", frame: int = 0) -> Image.Image:
    image = Image.new("RGBA", (WIDTH, HEIGHT))
    image.putdata([
        ((x * 11 + frame * 40) % 256, (y * 19) % 256, (x * y + 7) % 256, 255 if (x + y) % 3 else 90)
        for y in range(HEIGHT) for x in range(WIDTH)
    ])
    return image.convert(mode)


def saved(fmt: str, mode: str = "RGB", **options) -> bytes:
    buffer = io.BytesIO()
    picture(mode).save(buffer, fmt, **options)
    return buffer.getvalue()


def animated_webp(**options) -> bytes:
    buffer = io.BytesIO()
    frames = [picture("RGBA", frame) for frame in range(2)]
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def interlaced_png() -> bytes:
    """An Adam7 PNG, which Pillow reads but cannot write: each pass a sub-image with its own filter bytes."""
    rgb = picture("RGB").tobytes()
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        columns = range(x0, WIDTH, dx)
        if not columns:
            continue  # an empty pass has no rows at all, not even filter bytes
        for y in range(y0, HEIGHT, dy):
            raw += b"\0" + b"".join(rgb[(y * WIDTH + x) * 3:(y * WIDTH + x) * 3 + 3] for x in columns)
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 1)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif() -> bytes:
    data = Image.Exif()
    data[0x010E] = "a test image"  # ImageDescription
    return data.tobytes()


def text_png() -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "tEXt chunk")
    info.add_itxt("Title", "an iTXt chunk, 日本", lang="ja")
    info.add_text("Long", "zTXt " * 50, zip=True)
    return saved("PNG", pnginfo=info)


SEEDS: dict[str, dict[str, Callable[[], bytes]]] = {
    "png": {
        "pillow rgb": lambda: saved("PNG"),
        "pillow rgba optimised": lambda: saved("PNG", "RGBA", optimize=True),
        "pillow palette": lambda: saved("PNG", "P"),
        "pillow 16-bit grey": lambda: saved("PNG", "I;16"),
        "pillow with icc and exif": lambda: saved("PNG", icc_profile=srgb_profile(), exif=exif()),
        "pillow with text chunks": text_png,
        "interlaced (adam7)": interlaced_png,
    },
    "jpeg": {
        "baseline": lambda: saved("JPEG", quality=85),
        "progressive optimised": lambda: saved("JPEG", progressive=True, optimize=True),
        "with exif and icc": lambda: saved("JPEG", exif=exif(), icc_profile=srgb_profile()),
        "greyscale 4:4:4 with a comment": lambda: saved("JPEG", "L", subsampling=0, comment=b"a comment"),
    },
    "webp": {
        "lossy": lambda: saved("WEBP", quality=80),
        "lossless": lambda: saved("WEBP", lossless=True),
        "lossy with alpha": lambda: saved("WEBP", "RGBA", quality=80),
        "lossless with alpha": lambda: saved("WEBP", "RGBA", lossless=True),
        "with exif and icc": lambda: saved("WEBP", exif=exif(), icc_profile=srgb_profile()),
        "animated": animated_webp,
    },
}


def riff(*chunks: bytes) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of each chunk inside a well-formed WebP's RIFF payload."""
    end, offset, found = 8 + struct.unpack("<I", data[4:8])[0], 12, []
    while offset < end:
        kind, length = struct.unpack("<4sI", data[offset:offset + 8])
        found.append((kind, data[offset + 8:offset + 8 + length]))
        offset += 8 + length + (length & 1)
    return found


def decoded(data: bytes) -> tuple[str, tuple[int, int], list[bytes]] | None:
    """What Pillow makes of the file (mode, size, the pixels of every frame), or None when it refuses it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            frames = []
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                image.load()
                frames.append(image.tobytes())
            return image.mode, image.size, frames
    except Exception:
        return None


def webpinfo_accepts(data: bytes) -> bool:
    assert WEBPINFO is not None
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "image.webp"
        path.write_bytes(data)
        return subprocess.run([WEBPINFO, "-quiet", str(path)], capture_output=True, check=False).returncode == 0
