"""Input images for edits: local files or URLs, checked before anything is sent, recorded without
their data, and streamed into the request body as base64 while it is sent.

API for the commands (`edit -i IMAGE`, `generate --image`, regen of an edit):

    limit = image_limit(entry.schema)                    # per-image bytes: 6 MiB unless the schema says otherwise
    inputs = read_image_inputs(["cat.png", "https://…/dog.jpg"], max_image_bytes=limit, fit=fit)
        # UsageError for a missing file, a file that is not PNG/JPEG/WebP by its bytes, one over the
        # limit (without --fit, or without Pillow), an http URL off this machine, a request over 64 MiB
    body = request_body({"prompt": p, "resolution": r, ...}, inputs, entry.schema)
        # validates every field (image count included) with input_schema.validate, then returns a
        # JsonBody: requests.post(url, data=body, headers=body.headers) sends it with a Content-Length
    body.preview() -> dict        # the payload with each local image as its record: for --dry-run and logs
    [item.record() for item in inputs]   # {"url": …} or {"file", "path", "bytes", "sha256", …}; history and
        # provenance keep a URL as the bare string (api/models.py _image_record): read them with recorded_inputs
    reload(record, fit=…, max_image_bytes=…) -> ImageInput | None   # regen: the recorded file, if still the same

A local file is sent inline as a data URI (`data:image/png;base64,…`), as RunComfy's own ComfyUI
nodes send local images. The data URI itself is never kept: records carry name, size and sha256.
The body is read in chunks (`read(n)`), each image base64-encoded from the file as it goes, so
memory stays flat however large the images; a file that changes while it is sent (its bytes no
longer match the sha256 checked before) stops the request before its last bytes go out.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, ClassVar

from ..api.input_schema import InputSchema, validate
from ..api.urls import EXCERPT_LENGTH, has_userinfo, is_loopback_host, parse_origin, redacted
from ..errors import UsageError
from .image_format import sniff_image_format

MIB = 1024 * 1024
DEFAULT_MAX_IMAGE_BYTES = 6 * MIB  # RunComfy's ComfyUI nodes keep each inline image under this
MAX_REQUEST_BYTES = 64 * MIB  # …and the whole request body under this
REQUEST_RESERVE = 256 * 1024  # what --fit leaves of the request for the prompt and the other fields
MAX_MEGAPIXELS = 32  # …and each image under this many pixels, which --fit keeps to as well
IMAGES_FIELD = "image_urls"
MAX_URL_LENGTH = 2048
RAW_CHUNK = 3 * 64 * 1024  # a multiple of 3: each chunk encodes to base64 without padding
HASH_CHUNK = 1024 * 1024
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}
LONGEST_PREFIX = len("data:image/jpeg;base64,")
PILLOW_HINT = "pip install 'nanobanana-cli[sandbox]'"
# Opened for reading only, never through a symbolic link's surprise: a FIFO or device would block or never end.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


def _shown(text: str) -> str:
    return text[:EXCERPT_LENGTH].encode("ascii", "backslashreplace").decode()


@dataclass(frozen=True)
class ImageInput:
    """One input image: a URL sent as given, or a local file sent inline (re-encoded if --fit shrank it)."""

    given: str  # the argument as typed
    url: str | None = None
    path: Path | None = None  # absolute
    format: str | None = None  # png, jpeg or webp, by the file's bytes
    size: int = 0  # the file's bytes
    sha256: str | None = None  # of the file
    fitted: bytes | None = None  # what --fit made of it, sent instead of the file
    fitted_format: str | None = None
    may_fit: bool = False  # --fit was given: it may be shrunk to fit the request too

    @property
    def is_file(self) -> bool:
        return self.path is not None

    @property
    def sent_format(self) -> str:
        return self.fitted_format or self.format or "png"

    @property
    def sent_size(self) -> int:
        return len(self.fitted) if self.fitted is not None else self.size

    @property
    def prefix(self) -> str:
        return f"data:{MIME[self.sent_format]};base64,"

    @property
    def json_length(self) -> int:
        """Bytes of this image's JSON string in the body, quotes included."""
        if self.url is not None:
            return len(json.dumps(self.url))
        return 2 + len(self.prefix) + 4 * math.ceil(self.sent_size / 3)

    def stand_in(self) -> str:
        """What validation sees in place of the image: the URL, or a data URI without its data."""
        return self.url if self.url is not None else self.prefix

    def record(self) -> dict[str, Any]:
        """For history, provenance and --json: never the image data."""
        if self.url is not None or self.path is None:
            return {"url": self.url}
        record: dict[str, Any] = {
            "file": self.path.name, "path": str(self.path), "bytes": self.size, "sha256": self.sha256, "format": self.format,
        }
        if self.fitted is not None:
            record["fitted"] = {
                "bytes": len(self.fitted), "sha256": hashlib.sha256(self.fitted).hexdigest(), "format": self.fitted_format,
            }
        return record


def image_limit(schema: InputSchema | None, field: str = IMAGES_FIELD) -> int:
    """The largest image file that fits the schema: its items' maxLength (a data URI's length) when it
    sets one, else RunComfy's 6 MiB."""
    item = schema.field(field) if schema is not None else None
    max_length = item.items.max_length if item is not None and item.items is not None else None
    if max_length is None:
        return DEFAULT_MAX_IMAGE_BYTES
    return max(0, (max_length - LONGEST_PREFIX) // 4 * 3)


def _pillow() -> bool:
    try:
        import PIL  # noqa: F401
    except ImportError:
        return False
    return True


def _url_input(text: str) -> ImageInput:
    """A URL sent as given. One with user:password@ is refused outright, as output URLs with
    credentials are: it would hand them to that host, and a refused URL is never recorded."""
    if has_userinfo(text):
        raise UsageError(
            f"refusing the image URL '{redacted(text)}': it carries credentials (user:password@), which nanobanana never sends or records",
            hint="give a URL without user:password@ (a signed URL, say), or download the image and pass the file",
        )
    origin = parse_origin(text)
    if origin is None or len(text) > MAX_URL_LENGTH:
        raise UsageError(f"invalid image URL '{redacted(text)}'", hint="give an https URL, or a local file")
    if origin.scheme == "http" and not is_loopback_host(origin.host):
        raise UsageError(
            f"refusing the image URL '{redacted(text)}': plain http is allowed only to this machine",
            hint="use its https URL, or download it and pass the file",
        )
    return ImageInput(given=text, url=text)


def _hash_and_check(handle: IO[bytes], path: Path) -> tuple[str, int, str]:
    """(format, size, sha256) of an open file, reading it once."""
    digest = hashlib.sha256()
    head = handle.read(12)
    kind = sniff_image_format(head)
    if kind is None:
        raise UsageError(f"{_shown(str(path))} is not a PNG, JPEG or WebP image (by its bytes)", hint="convert it to PNG or JPEG first")
    digest.update(head)
    size = len(head)
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return kind, size, digest.hexdigest()


def _open_image(path: Path) -> IO[bytes]:
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise UsageError(f"no such image file: {_shown(str(path))}", hint="check the path, or give an https URL") from None
    except OSError as exc:
        raise UsageError(f"cannot read the image {_shown(str(path))}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UsageError(f"{_shown(str(path))} is not a regular file", hint="pass an image file")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def _fit(path: Path, kind: str, size: int, limit: int) -> tuple[bytes, str]:
    """The image shrunk (same format) until its file is at most `limit` bytes and MAX_MEGAPIXELS."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as opened:
            picture = ImageOps.exif_transpose(opened)
            picture.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UsageError(f"--fit cannot read {_shown(str(path))}: {exc}") from None
    if kind == "jpeg" or picture.mode not in ("RGB", "RGBA", "L", "LA"):
        picture = picture.convert("RGBA" if kind != "jpeg" and "A" in picture.getbands() else "RGB")
    width, height = picture.size
    scale = min(1.0, math.sqrt(MAX_MEGAPIXELS * 1e6 / (width * height)), math.sqrt(limit / size) * 0.95)
    for _ in range(10):
        shrunk = picture.resize((max(1, int(width * scale)), max(1, int(height * scale))), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        shrunk.save(buffer, PIL_FORMATS[kind], **({"quality": 90} if kind in ("jpeg", "webp") else {"optimize": True}))
        if buffer.tell() <= limit:
            return buffer.getvalue(), kind
        scale *= min(0.9, math.sqrt(limit / buffer.tell()) * 0.95)
    raise UsageError(f"--fit could not shrink {_shown(str(path))} under {_mib(limit)}", hint="shrink it yourself first")


def _file_input(text: str, *, max_image_bytes: int, fit: bool) -> ImageInput:
    path = Path(text).expanduser().absolute()
    with _open_image(path) as handle:
        kind, size, sha256 = _hash_and_check(handle, path)
    found = ImageInput(given=text, path=path, format=kind, size=size, sha256=sha256, may_fit=fit)
    if size <= max_image_bytes:
        return found
    name = _shown(path.name)
    if not fit:
        hint = "pass --fit to shrink it" + ("" if _pillow() else f" (needs Pillow: {PILLOW_HINT})") + ", or shrink it yourself"
        raise UsageError(f"{name} is {_mib(size)}; the model takes at most {_mib(max_image_bytes)} per image", hint=hint)
    if not _pillow():
        raise UsageError(
            f"{name} is {_mib(size)}, over the {_mib(max_image_bytes)} per image, and --fit needs Pillow to shrink it",
            hint=f"{PILLOW_HINT}, or shrink the image yourself",
        )
    fitted, fitted_format = _fit(path, kind, size, max_image_bytes)
    return replace(found, fitted=fitted, fitted_format=fitted_format)


def read_image_inputs(
    given: Sequence[str], *, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES, max_request_bytes: int = MAX_REQUEST_BYTES, fit: bool = False
) -> list[ImageInput]:
    """Each IMAGE argument checked (and fitted with `fit`), before anything is sent. With `fit`, images
    that are each under the per-image limit but together over the request limit are shrunk too."""
    inputs = []
    for text in given:
        if text.startswith("data:"):
            raise UsageError("pass the image file itself, not a data URI", hint="nanobanana makes the data URI from the file")
        if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
            inputs.append(_url_input(text))
        else:
            inputs.append(_file_input(text, max_image_bytes=max_image_bytes, fit=fit))
    total = sum(item.json_length for item in inputs)
    room = max_request_bytes - min(REQUEST_RESERVE, max_request_bytes // 8)
    if total > room and any(item.may_fit for item in inputs) and _pillow():
        inputs = _fit_request(inputs, room)
        total = sum(item.json_length for item in inputs)
    if total > max_request_bytes:
        raise UsageError(
            f"the {len(inputs)} input images make a {_mib(total)} request; at most {_mib(max_request_bytes)} can be sent",
            hint=_too_large_hint(fit, can_fit=any(item.is_file for item in inputs)),
        )
    return inputs


def _too_large_hint(fit: bool, *, can_fit: bool) -> str:
    """What makes a request small enough: --fit only where it can (local files, with Pillow)."""
    instead = "send fewer or smaller images, or pass https URLs"
    if not can_fit or fit and _pillow():
        return instead
    if not _pillow():
        return f"{instead} (--fit, which shrinks them to fit, needs Pillow: {PILLOW_HINT})"
    return f"pass --fit to shrink them to fit, or {instead}"


def _image_budget(sizes: Sequence[int], room: int) -> int:
    """The largest size each image may keep so that their base64 fits `room`: images under an equal
    share keep their size and leave the rest to the others (water-filling)."""
    left, count = room, len(sizes)
    for size in sorted(sizes):
        share = left // count
        if 4 * math.ceil(size / 3) > share:
            return share // 4 * 3
        left -= 4 * math.ceil(size / 3)
        count -= 1
    return max(sizes, default=0)


def _fit_request(inputs: list[ImageInput], room: int) -> list[ImageInput]:
    """The local files that --fit may shrink, shrunk (from their original bytes) to one budget each so
    that the images' JSON strings fit `room` bytes; URLs and the other files are kept as they are."""
    shrinkable = [item for item in inputs if item.may_fit]  # only a local file is ever given may_fit
    room -= sum(item.json_length for item in inputs if not item.may_fit)
    room -= sum(2 + LONGEST_PREFIX for _ in shrinkable)  # each data URI's quotes and prefix
    budget = _image_budget([item.sent_size for item in shrinkable], max(0, room))
    fitted = []
    for item in inputs:
        if not item.may_fit or item.format is None or item.sent_size <= budget:
            fitted.append(item)
            continue
        assert item.path is not None
        data, kind = _fit(item.path, item.format, item.size, budget)
        fitted.append(replace(item, fitted=data, fitted_format=kind))
    return fitted


def reload(record: Mapping[str, Any], *, max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES, fit: bool = False) -> ImageInput | None:
    """A recorded input again: a URL as recorded, a file from its recorded path if its sha256 still
    matches; None when the file is gone or changed (ask for it with -i). A file that is still the
    same but now refused (over a smaller limit) raises, saying why."""
    url = record.get("url")
    if isinstance(url, str):
        return _url_input(url)
    path, sha256 = record.get("path"), record.get("sha256")
    if not isinstance(path, str) or not isinstance(sha256, str) or not Path(path).is_file():
        return None
    found = _file_input(path, max_image_bytes=max_image_bytes, fit=fit)
    return found if found.sha256 == sha256 else None


def request_body(
    fields: Mapping[str, Any], inputs: Sequence[ImageInput], schema: InputSchema, *,
    field: str = IMAGES_FIELD, max_request_bytes: int = MAX_REQUEST_BYTES,
) -> JsonBody:
    """The submit body for `fields` and the input images: validated against the schema (the images
    by their count and kind, each as its stand-in), then ready to stream."""
    if inputs:
        fields = {**fields, field: [item.stand_in() for item in inputs]}
    payload: dict[str, Any] = validate(fields, schema)
    if inputs:
        payload[field] = list(inputs)
    body = JsonBody(payload, max_bytes=None)
    if len(body) <= max_request_bytes:
        return body
    if any(item.may_fit for item in inputs) and _pillow():
        # images read back for a regen, or a long prompt beside them: shrunk here, where the rest of the body is known
        rest = len(body) - sum(item.json_length for item in inputs)
        payload[field] = _fit_request(list(inputs), max_request_bytes - rest)
    return JsonBody(payload, max_bytes=max_request_bytes)


# -- the streaming body ------------------------------------------------------------------------------


class _ImageStream:
    """One image's JSON string, produced chunk by chunk: quote, prefix, base64, quote."""

    def __init__(self, item: ImageInput) -> None:
        self.item = item
        self._handle: IO[bytes] | None = None
        self._read = 0
        self._digest = hashlib.sha256()
        self._done = False

    def start(self) -> bytes:
        self.close()
        self._read, self._digest, self._done = 0, hashlib.sha256(), False
        if self.item.fitted is None:
            assert self.item.path is not None
            self._handle = _open_image(self.item.path)
        return f'"{self.item.prefix}'.encode("ascii")

    def next_chunk(self) -> bytes:
        """The next piece of base64, then the closing quote, then b""."""
        if self._done:
            return b""
        remaining = self.item.sent_size - self._read
        if remaining <= 0:
            self._done = True
            return b'"'
        if self.item.fitted is not None:
            raw = self.item.fitted[self._read:self._read + RAW_CHUNK]
        else:
            raw = self._read_file(min(RAW_CHUNK, remaining))
        self._read += len(raw)
        return base64.b64encode(raw)

    def _read_file(self, size: int) -> bytes:
        """Exactly `size` bytes (a multiple of 3 except at the end, so no padding mid-stream); the
        file is checked against its sha256 before its last bytes are handed over."""
        assert self._handle is not None
        pieces, have = [], 0
        while have < size:
            piece = self._handle.read(size - have)
            if not piece:
                break
            pieces.append(piece)
            have += len(piece)
        raw = b"".join(pieces)
        self._digest.update(raw)
        if have < size or self._read + have >= self.item.size:
            self.close()
            if self._read + have != self.item.size or self._digest.hexdigest() != self.item.sha256:
                raise UsageError(
                    f"{_shown(str(self.item.path))} changed while it was being sent; the request was cut short, nothing was submitted",
                    hint="send it again once the file stays put",
                )
        return raw

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class JsonBody:
    """A JSON request body that requests sends with a Content-Length: file-like (`read`, `__len__`,
    `tell`, `seek(0)` for a retry), not a generator, which requests would send chunked.

    Its bytes are exactly `json.dumps(payload)` with each ImageInput as its URL or data URI
    (ASCII, `json.dumps`' default separators).
    """

    headers: ClassVar[dict[str, str]] = {"Content-Type": "application/json"}

    def __init__(self, payload: Mapping[str, Any], *, max_bytes: int | None = MAX_REQUEST_BYTES) -> None:
        self.payload = dict(payload)
        marker = f"nanobanana-image-{secrets.token_hex(8)}-"
        images: list[ImageInput] = []

        def stand_in(value: Any) -> Any:
            if isinstance(value, ImageInput):
                if value.url is not None:
                    return value.url
                images.append(value)
                return f"{marker}{len(images) - 1}"
            if isinstance(value, list):
                return [stand_in(element) for element in value]
            if isinstance(value, dict):
                return {key: stand_in(element) for key, element in value.items()}
            return value

        text = json.dumps({key: stand_in(value) for key, value in self.payload.items()}, allow_nan=False)
        self._parts: list[bytes | _ImageStream] = []
        position = 0
        for found in re.finditer(f'"{re.escape(marker)}(\\d+)"', text):
            self._parts.append(text[position:found.start()].encode("ascii"))
            self._parts.append(_ImageStream(images[int(found[1])]))
            position = found.end()
        self._parts.append(text[position:].encode("ascii"))
        self._length = sum(len(part) if isinstance(part, bytes) else part.item.json_length for part in self._parts)
        self._current: _ImageStream | None = None
        self._index, self._position, self._pending, self._offset = 0, 0, b"", 0
        if max_bytes is not None and self._length > max_bytes:
            raise UsageError(
                f"the request would be {_mib(self._length)}; at most {_mib(max_bytes)} can be sent",
                hint=_too_large_hint(any(item.may_fit for item in images), can_fit=bool(images)),
            )
        self.seek(0)

    def __len__(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Only back to the start: a retried request sends the body again from its first byte."""
        if offset != 0 or whence != os.SEEK_SET:
            raise OSError("a JsonBody can only seek to its start")
        self.close()
        self._index, self._current = 0, None
        self._pending, self._offset, self._position = b"", 0, 0
        return 0

    def close(self) -> None:
        for part in self._parts:
            if isinstance(part, _ImageStream):
                part.close()

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._length if size is None or size < 0 else size
        pieces: list[bytes] = []
        have = 0
        while have < wanted:
            if self._offset >= len(self._pending):
                self._pending, self._offset = self._next_piece(), 0
                if not self._pending:
                    break
            piece = self._pending[self._offset:self._offset + wanted - have]
            self._offset += len(piece)
            pieces.append(piece)
            have += len(piece)
        self._position += have
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _next_piece(self) -> bytes:
        while self._index < len(self._parts):
            if self._current is not None:
                chunk = self._current.next_chunk()
                if chunk:
                    return chunk
                self._current = None
                self._index += 1
                continue
            part = self._parts[self._index]
            if isinstance(part, bytes):
                self._index += 1
                if part:
                    return part
                continue
            self._current = part
            return part.start()
        return b""

    def preview(self) -> dict[str, Any]:
        """The payload with each local image as its record: what --dry-run shows and logs may keep."""

        def shown(value: Any) -> Any:
            if isinstance(value, ImageInput):
                return value.url if value.url is not None else value.record()
            if isinstance(value, list):
                return [shown(element) for element in value]
            if isinstance(value, dict):
                return {key: shown(element) for key, element in value.items()}
            return value

        return {key: shown(value) for key, value in self.payload.items()}


def recorded_inputs(value: Any) -> list[dict[str, Any]]:
    """An edit's recorded inputs (history or provenance, both untrusted) as records, each in its place.

    History and provenance keep a URL as the bare string (api/models.py `_image_record`) and a
    local file as its record; a URL comes back as `{"url": …}`, and anything else as an empty
    record, which names no image. Not a list: no inputs."""
    if not isinstance(value, list):
        return []
    return [{"url": record} if isinstance(record, str) else record if isinstance(record, dict) else {} for record in value]
