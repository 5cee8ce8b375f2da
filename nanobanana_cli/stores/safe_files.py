"""Writing into directories that others may have touched: an output folder shared with a CI job,
a shard's directory downloaded as an artifact, a gallery folder anyone can write to.

Nothing here follows a symbolic link or writes outside the directory it is given: a new file is
created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`), under a random name, then renamed over its
target (a rename replaces a planted link itself, never what it points to); an append opens the
file with `O_NOFOLLOW`; and a file read to be passed on (a sidecar copied by `merge`) must be a
regular file, read up to a limit.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# A new file only: never one that exists, never through a symbolic link.
CREATE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC
# The mode a new file asks for; the kernel reduces it by the umask, so a gallery or a copied
# image gets the user's usual mode (tempfile would make it 0600).
DEFAULT_MODE = 0o666
NAME_ATTEMPTS = 100


class UnsafeFile(OSError):
    """Not a regular file of a sensible size where one was expected: a link, a directory, a device, a
    pipe, or a file far bigger than what it claims to be."""


def create_temporary(target: Path, *, suffix: str = ".part", mode: int = DEFAULT_MODE) -> tuple[int, Path]:
    """A new, empty file beside `target`: `.NAME.<random>SUFFIX`, created exclusively. Its descriptor and path."""
    for _ in range(NAME_ATTEMPTS):
        path = target.with_name(f".{target.name}.{os.urandom(4).hex()}{suffix}")
        try:
            return os.open(path, CREATE_NEW, mode), path
        except FileExistsError:  # someone else drew (or planted) that name: draw again
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


def write_atomically(target: Path, data: bytes, *, mode: int = DEFAULT_MODE) -> None:
    """Replace `target` with `data`: written to a new temporary file beside it, then renamed over it.

    Whatever stood at `target` (a file, or a link to anywhere) is replaced, never written through.
    """
    fd, temporary = create_temporary(target, suffix=".tmp", mode=mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def create_new(path: Path, data: bytes, *, mode: int = DEFAULT_MODE) -> bool:
    """Write `data` to `path` only if nothing (not even a dangling link) is there: True if written."""
    try:
        fd = os.open(path, CREATE_NEW, mode)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return True


@contextmanager
def open_for_append(path: Path) -> Iterator[BinaryIO]:
    """`path` opened to append to (created if missing), never through a symbolic link:
    a link there is an OSError (ELOOP), not a write into whatever it points to."""
    fd = os.open(path, APPEND, DEFAULT_MODE)
    with os.fdopen(fd, "ab") as handle:
        yield handle


@contextmanager
def open_existing(path: Path, flags: int = os.O_RDONLY) -> Iterator[int]:
    """A descriptor for a regular file at `path` itself (no link followed), for reading or rewriting it."""
    # O_NONBLOCK: opening a planted pipe must not wait for a writer (it changes nothing for a file)
    fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFile(errno.EINVAL, "not a regular file", str(path))
        yield fd
    finally:
        os.close(fd)


def is_regular_file(path: Path) -> bool:
    """True for a plain file at `path` itself: not a link (to anything), a directory, a device or a pipe."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read_regular_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file at `path` itself (no link followed), refused past `limit` bytes."""
    with open_existing(path) as fd:
        if os.fstat(fd).st_size > limit:
            raise UnsafeFile(errno.EFBIG, f"over {limit} bytes", str(path))
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise UnsafeFile(errno.EFBIG, f"over {limit} bytes", str(path))
    return data
