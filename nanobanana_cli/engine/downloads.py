"""Saving a job's images: streamed, verified, complete or absent, never overwriting another file."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..api.retry import RETRYABLE_STATUSES, DeadlineReached, Retryable, call_with_retries
from ..api.schema import EXTENSIONS
from ..errors import (
    APIError,
    BadResponseError,
    NanobananaError,
    SaveFailedError,
    UnavailableError,
    UsageError,
    WaitTimeoutError,
)
from .image_format import sniff_image_format
from .workers import run_concurrently

if TYPE_CHECKING:
    from ..api.client import Client
    from .provenance import ImageDataHasher

CHUNK_SIZE = 1024 * 1024
HEAD_BYTES = 16  # enough to tell an image's format, and a WebP's first chunk
# The last bytes, hashed apart: a PNG's IEND chunk, in front of which its provenance goes (`_finish`).
TAIL_BYTES = 12
MAX_PARALLEL_DOWNLOADS = 4
# One attempt at one file, however the server paces it (a stall is cut sooner, by the client's read timeout).
DOWNLOAD_TOTAL_SECONDS = 15 * 60.0
SIZE_CAP_HINT = "raise the limit with `nanobanana config set max_download_mb N` or NANOBANANA_MAX_DOWNLOAD_MB"

# A new file only: never one that exists, never through a symbolic link.
_CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

ProgressListener = Callable[[str, int, "int | None"], None]
Warn = Callable[[str], None]


@dataclass(frozen=True)
class SavedFile:
    """A saved image. `bytes` and `sha256` describe the file on disk; `delivered_sha256` the server's bytes
    (they differ when provenance was embedded)."""

    url: str
    path: str
    bytes: int
    sha256: str
    delivered_sha256: str | None = None
    provenance: str | None = None  # "embedded", "sidecar" or "none"; None when not asked for
    provenance_reason: str | None = None  # why provenance is not where --metadata asked for it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    """A file's sha256, read in blocks (an image may be hundreds of megabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def _place(temp_path: Path, target: Path, digest: str) -> Path:
    """Move a finished download into place without ever replacing a different existing file.

    `os.link` fails atomically when the name is taken, so two processes cannot clobber each other;
    an identical file already there makes the download a no-op.
    """
    stem, suffix = target.stem, target.suffix
    for attempt in range(1000):
        candidate = target if attempt == 0 else target.with_name(f"{stem}-{attempt + 1}{suffix}")
        try:
            os.link(temp_path, candidate)
        except FileExistsError:
            if candidate.is_file() and file_sha256(candidate) == digest:
                return candidate
            continue
        except OSError:
            if candidate.exists():
                if candidate.is_file() and file_sha256(candidate) == digest:
                    return candidate
                continue
            os.replace(temp_path, candidate)  # no hard links here (e.g. some network filesystems)
            return candidate
        return candidate
    raise UsageError(f"too many files named like {target.name!r} in {str(target.parent)!r}")


class PartialFiles:
    """Every temporary `.part` file being written, so an interrupt can delete them all at once.

    Workers may be blocked on a slow server when Ctrl-C or SIGTERM arrives; the process does not
    wait for them, so the main thread removes their files itself.
    """

    def __init__(self) -> None:
        self._owners: dict[Path, object] = {}
        self._lock = threading.Lock()

    def add(self, path: Path, owner: threading.Event) -> None:
        """Register a new temporary file; one created after its owner was stopped is removed at once,
        since the stop's own clean-up may already have run."""
        with self._lock:
            if not owner.is_set():
                self._owners[path] = owner
                return
        path.unlink(missing_ok=True)
        raise KeyboardInterrupt

    def discard(self, path: Path) -> None:
        with self._lock:
            self._owners.pop(path, None)
        path.unlink(missing_ok=True)

    def remove_all(self, owner: object | None = None) -> None:
        """Delete every file (or only `owner`'s: one job's downloads, when one of them failed)."""
        with self._lock:
            paths = [path for path, who in self._owners.items() if owner is None or who is owner]
            for path in paths:
                del self._owners[path]
        for path in paths:
            path.unlink(missing_ok=True)


PARTIAL_FILES = PartialFiles()


class ChildStop(threading.Event):
    """One job's stop: set on its own when one of its files fails, and set whenever the command's is."""

    def __init__(self, parent: threading.Event | None) -> None:
        super().__init__()
        self.parent = parent

    def is_set(self) -> bool:
        return super().is_set() or (self.parent is not None and self.parent.is_set())


def _fetch_again(request_id: str | None) -> str:
    return f"fetch the images again later: nanobanana result {request_id or 'ID'} --download"


def _save_failed(exc: OSError, url: str, request_id: str | None) -> NanobananaError:
    again = f"nanobanana result {request_id} --download" if request_id else "nanobanana result ID --download"
    return SaveFailedError(
        f"cannot save {url.rsplit('/', 1)[-1][:60]}: {exc.strerror or exc}",
        hint=f"free some space (or raise the file-size limit), then fetch the images again: {again}",
    )


def download_file(
    client: Client,
    url: str,
    target: Path,
    output_format: str,
    *,
    max_bytes: int,
    on_progress: ProgressListener | None = None,
    stop: threading.Event | None = None,
    request_id: str | None = None,
    provenance: dict[str, Any] | None = None,
    metadata: str = "embed",
    deadline: float | None = None,
    warn: Warn | None = None,
) -> SavedFile:
    """Fetch `url` into `target` (or a free variant of its name). Complete and verified, or nothing.

    With `provenance`, it is embedded before the file is moved into place (so an identical second
    download still finds its twin), or written as a sidecar when embedding is unsafe or not wanted.
    An image that cannot take it is saved as delivered all the same: `warn` hears why.

    Each attempt is cut off after `DOWNLOAD_TOTAL_SECONDS`, and not retried: a server that slow
    would only be as slow again. `deadline` (a `client.clock.monotonic()` time, the command's
    `--timeout`) cuts it sooner, retries and their waits included, with `WaitTimeoutError`.
    """
    from ..api.deadline import CallTimedOut, watching

    stop = stop or threading.Event()

    def out_of_time() -> WaitTimeoutError:
        return WaitTimeoutError(f"still downloading {url}", request_id=request_id or "")

    def attempt() -> SavedFile:
        if stop.is_set():  # another file of the job failed, or the command is ending: no new attempt
            raise KeyboardInterrupt
        limit = DOWNLOAD_TOTAL_SECONDS
        if deadline is not None:
            limit = min(limit, deadline - client.clock.monotonic())
            if limit <= 0:
                raise out_of_time()
        fd, temp_path = _partial_file(target, stop)
        try:
            embedding = provenance is not None and metadata == "embed"
            recording = provenance is not None and metadata != "none"  # the image data hash is wanted
            with os.fdopen(fd, "wb") as handle, watching(limit):
                streamed = _stream_into(
                    client, url, handle, max_bytes, on_progress, stop, provenance if embedding else None, hashing=recording
                )
            if stop.is_set():
                raise KeyboardInterrupt
            delivered = digest = streamed.digest
            size = streamed.size
            sealed, refused, image_digest = None, None, None
            if recording:
                sealed, refused, image_digest = _finish(temp_path, streamed, provenance if embedding else None, stop)
            if sealed is not None:
                digest, size = sealed
            detected = streamed.detected
            destination = target if detected == output_format else target.with_suffix(f".{EXTENSIONS[detected]}")
            placed = _place(temp_path, destination, digest)
            place, reason = _sidecar(placed, provenance, image_digest, metadata, sealed is not None, refused, warn)
            return SavedFile(url, str(placed.resolve()), size, digest, delivered, place, reason)
        except CallTimedOut as exc:
            if limit < DOWNLOAD_TOTAL_SECONDS:
                raise out_of_time() from None
            raise UnavailableError(f"download of {url}: {exc}; stopped", hint=_fetch_again(request_id)) from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                raise _save_failed(exc, url, request_id) from None
            raise
        finally:
            PARTIAL_FILES.discard(temp_path)

    try:
        return call_with_retries(
            attempt, what="download", policy=client.retry, clock=client.clock, on_retry=client.on_retry, deadline=deadline
        )
    except DeadlineReached:
        raise out_of_time() from None


def _partial_file(target: Path, stop: threading.Event) -> tuple[int, Path]:
    """A new temporary `.part` file beside `target`, registered for clean-up: its descriptor and path.

    Created with mode 0666 for the kernel to reduce by the umask, so a saved image gets the user's
    normal mode. (tempfile makes 0600 files, and learning the umask to widen them means setting it,
    for every thread of the process at once.)
    """
    for _ in range(100):
        temp_path = target.with_name(f".{target.name}.{os.urandom(4).hex()}.part")
        try:
            fd = os.open(temp_path, _CREATE_NEW, 0o666)
        except FileExistsError:  # another download drew the same name: draw again
            continue
        try:
            PARTIAL_FILES.add(temp_path, owner=stop)
        except BaseException:
            os.close(fd)
            temp_path.unlink(missing_ok=True)
            raise
        return fd, temp_path
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


def _finish(
    temp_path: Path, streamed: Streamed, provenance: dict[str, Any] | None, stop: threading.Event
) -> tuple[tuple[str, int] | None, str | None, str | None]:
    """Seal a finished download with `provenance` where it lies, if given: (the sealed file's sha256
    and size, or None; why it could not take it; its image data hash, for a sidecar).

    The image data hash is the one computed while the bytes streamed (checked against the file's
    headers). The sealed file's sha256 finishes the delivered bytes' hash taken while they streamed
    up to the last `TAIL_BYTES`, when nothing was written in front of them (a PNG, its provenance
    before IEND); otherwise the sealed file is read once for it. A file that cannot take
    provenance is left byte for byte as delivered; one whose layout needs more room than was left
    in front of it is sealed by a copy (`_embed`), read from where its bytes lie.
    """
    from .provenance import NotEmbeddable, NotInPlace, seal_in_place, shifted, streamed_image_data_sha256

    assert streamed.hasher is not None  # streamed with hashing: _finish runs only when the hash is wanted
    refused, image_digest = None, None
    try:
        with temp_path.open("r+b") as handle:
            image_digest = streamed_image_data_sha256(shifted(handle, streamed.gap), streamed.hasher)
            if provenance is None:
                return None, None, image_digest
            try:
                made = {**provenance, "image_data_sha256": image_digest}
                return seal_in_place(handle, streamed.gap, made, streamed.prefix), None, image_digest
            except NotInPlace:
                pass
        return _embed(temp_path, provenance, stop, image_digest, gap=streamed.gap), None, image_digest
    except NotEmbeddable as exc:
        refused = str(exc)
    except OSError:
        raise  # the disk, not the file: a full disk is the download's failure (exit 9)
    except Exception as exc:  # the image is paid for: a flaw in our parser costs its metadata, not the picture
        refused = f"unexpected {type(exc).__name__} reading the file"
    if streamed.gap:
        _close_gap(temp_path, streamed.gap, stop)
    return None, refused, image_digest


def _close_gap(temp_path: Path, gap: int, stop: threading.Event) -> None:
    """Make the download the delivered bytes alone again, without the room left in front of them."""
    fd, whole_path = _partial_file(temp_path, stop)
    try:
        with os.fdopen(fd, "wb") as whole, temp_path.open("rb") as source:
            source.seek(gap)
            for block in iter(lambda: source.read(CHUNK_SIZE), b""):
                whole.write(block)
        os.replace(whole_path, temp_path)
    finally:
        PARTIAL_FILES.discard(whole_path)


def _embed(
    temp_path: Path, provenance: dict[str, Any], stop: threading.Event, image_digest: str | None = None, *, gap: int = 0
) -> tuple[str, int]:
    """Embed provenance into a finished download (its bytes `gap` bytes into the file) by copying it: the
    sealed file's sha256 and size, or `NotEmbeddable` saying why the file cannot take it (it is then
    left as it was; `_finish` takes the room out and turns an unexpected error into a refusal).

    Streamed into a second temporary file that then replaces the first, so memory stays bounded
    whatever the image's size.
    """
    from .provenance import embed, shifted, streamed_image_data_sha256

    fd, sealed_path = _partial_file(temp_path, stop)
    try:
        with os.fdopen(fd, "wb") as sealed, temp_path.open("rb") as source:
            image = shifted(source, gap)
            image_digest = image_digest or streamed_image_data_sha256(image, None)
            written = embed(image, sealed, {**provenance, "image_data_sha256": image_digest})
        os.replace(sealed_path, temp_path)
        return written
    finally:
        PARTIAL_FILES.discard(sealed_path)


def _sidecar(
    placed: Path,
    provenance: dict[str, Any] | None,
    image_digest: str | None,
    metadata: str,
    embedded: bool,
    refused: str | None,
    warn: Warn | None,
) -> tuple[str | None, str | None]:
    """Where the provenance went ("embedded", "sidecar" or "none") and why, when not where it was asked."""
    if provenance is None:
        return None, None
    if embedded:
        return "embedded", None
    if metadata == "none":
        return "none", None
    from .provenance import sidecar_path, write_sidecar

    try:
        write_sidecar(placed, {**provenance, "image_data_sha256": image_digest})
    except OSError as exc:  # the image is saved: losing its provenance is worth a warning, not the download
        reason = f"cannot write {sidecar_path(placed).name}: {exc.strerror or exc}"
        if warn:
            warn(f"{placed.name}: {reason}; the image is saved without provenance")
        return "none", reason if refused is None else f"{refused}; {reason}"
    if refused is not None and warn:
        warn(f"{placed.name}: cannot embed provenance ({refused}); saved as delivered, provenance in {sidecar_path(placed).name}")
    return "sidecar", refused


@dataclass
class Streamed:
    """A download on disk: `gap` bytes of room for provenance, then the delivered bytes, and their hashes."""

    digest: str  # sha256 of the delivered bytes
    prefix: tuple[hashlib._Hash, int]  # the sha256 object of all of them but the last TAIL_BYTES, and how many
    size: int
    detected: str  # the image format its bytes say
    gap: int
    hasher: ImageDataHasher | None  # only when the image data hash is wanted: hashing costs CPU per MB


def _stream_into(
    client: Client,
    url: str,
    handle: Any,
    max_bytes: int,
    on_progress: ProgressListener | None,
    stop: threading.Event,
    provenance: dict[str, Any] | None = None,
    *,
    hashing: bool = False,
) -> Streamed:
    """Stream `url` into `handle`, hashing its bytes and, with `hashing`, its image data on the way; with
    `provenance` (to embed), the bytes are written after the room embedding it will need (`room_for`), so
    sealing moves nothing."""
    import requests

    from .provenance import ImageDataHasher, room_for

    response = client.open_asset(url)
    with response:
        if response.status_code in RETRYABLE_STATUSES:
            final = UnavailableError(f"download of {url} failed: HTTP {response.status_code}")
            raise Retryable(f"HTTP {response.status_code}", final, response.headers.get("Retry-After"))
        if response.status_code != 200:
            raise UnavailableError(f"download of {url} failed: HTTP {response.status_code}")
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared and declared.isdigit() else None
        if total is not None and total > max_bytes:
            raise APIError(f"{url} is {total} bytes, over the {max_bytes}-byte download limit", hint=SIZE_CAP_HINT)
        digest, hasher = hashlib.sha256(), ImageDataHasher() if hashing else None
        size = 0
        tail = b""  # the last bytes so far, not yet in `digest`
        head = b""  # the first bytes, held until there are enough to tell the format and the room it needs
        gap: int | None = None
        try:
            for chunk in response.iter_content(CHUNK_SIZE):
                if stop.is_set():
                    raise KeyboardInterrupt
                size += len(chunk)
                if size > max_bytes:
                    raise APIError(f"{url} grew past the {max_bytes}-byte download limit; stopped", hint=SIZE_CAP_HINT)
                if len(chunk) >= TAIL_BYTES:
                    digest.update(tail)
                    digest.update(memoryview(chunk)[:-TAIL_BYTES])  # a view: the megabyte is not copied
                    tail = chunk[-TAIL_BYTES:]
                else:
                    tail += chunk
                    digest.update(tail[:-TAIL_BYTES])
                    tail = tail[-TAIL_BYTES:]
                if hasher is not None:
                    hasher.feed(chunk)
                if gap is None:
                    head += chunk
                    if len(head) < HEAD_BYTES:
                        continue
                    gap = room_for(head, provenance) if provenance is not None else 0
                    handle.seek(gap)
                    chunk, head = head, head[:HEAD_BYTES]
                handle.write(chunk)
                if on_progress:
                    on_progress(url, size, total)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            reason = f"connection lost or stalled after {size} bytes ({type(exc).__name__})"
            raise Retryable(reason, UnavailableError(f"download of {url} failed: {reason}")) from None
        if total is not None and size < total:
            reason = f"received {size} of {total} bytes"
            raise Retryable(reason, UnavailableError(f"download of {url} failed: {reason}"))
    if gap is None:  # fewer bytes than a header: no image, but written all the same for the message below
        gap = 0
        handle.write(head)
    detected = sniff_image_format(head)
    if detected is None:
        reason = f"not a PNG, JPEG or WebP image (starts with {head[:12]!r})"
        raise Retryable(reason, BadResponseError(f"{url} is {reason}", status_code=200))
    delivered = digest.copy()
    delivered.update(tail)
    return Streamed(delivered.hexdigest(), (digest, size - len(tail)), size, detected, gap, hasher)


def download_all(
    client: Client,
    urls: Sequence[str],
    directory: Path,
    *,
    names: Sequence[str],
    request_id: str,
    output_format: str,
    max_bytes: int,
    on_progress: ProgressListener | None = None,
    stop: threading.Event | None = None,
    provenance: Callable[[int], dict[str, Any]] | None = None,
    metadata: str = "embed",
    expected: int | None = None,
    deadline: float | None = None,
    warn: Warn | None = None,
) -> list[SavedFile]:
    """Download a job's outputs concurrently over the client's kept-alive connections, in URL order,
    each to `directory` under its name in `names` (`engine/naming.py` chose them).

    At most `expected` images (the number asked for) are saved: a server listing more is warned of,
    not obeyed. On a failure the other downloads stop at their next chunk; on Ctrl-C every
    temporary file is deleted at once.
    """
    if expected is not None and len(urls) > expected:
        if warn:
            warn(f"job {request_id}: the server listed {len(urls)} images for {expected} asked for; saving the first {expected}")
        urls = urls[:expected]
    targets = [directory / name for name in names[: len(urls)]]
    stop = ChildStop(stop)

    def fetch(item: tuple[int, str, Path]) -> SavedFile:
        index, url, target = item
        return download_file(
            client, url, target, output_format, max_bytes=max_bytes, on_progress=on_progress, stop=stop,
            request_id=request_id, provenance=provenance(index) if provenance else None, metadata=metadata,
            deadline=deadline, warn=warn,
        )

    items = [(index, url, target) for index, (url, target) in enumerate(zip(urls, targets), start=1)]
    try:
        return list(run_concurrently(items, fetch, max_workers=MAX_PARALLEL_DOWNLOADS, stop=stop, in_order=True))
    except KeyboardInterrupt:
        PARTIAL_FILES.remove_all()  # the process is ending: workers blocked on a slow server never tidy up
        raise
    except BaseException:
        # One file failed: the others stop at their next chunk, but the command may end first.
        stop.set()
        PARTIAL_FILES.remove_all(owner=stop)
        raise
