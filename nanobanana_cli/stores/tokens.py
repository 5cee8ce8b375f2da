"""The API token: where it may come from, in which order, and how the stored one is kept.

The stored token lives in its own file, created 0600 inside a 0700 directory, so it is never
readable by anyone else, not even for an instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from ..errors import AuthError
from .paths import config_dir, write_private_file

# RunComfy's docs tell users to set YOUR_API_TOKEN; RunComfy's own CLI reads RUNCOMFY_TOKEN.
TOKEN_ENV_VARS = ("RUNCOMFY_API_TOKEN", "YOUR_API_TOKEN", "RUNCOMFY_TOKEN")
TOKEN_FILE = "token"
NO_TOKEN_HINT = (
    "run `nanobanana auth login`, pass --token, or export RUNCOMFY_API_TOKEN (or YOUR_API_TOKEN); "
    "to try without an account, add --sandbox"
)


class ResolvedToken(NamedTuple):  # not a frozen dataclass: ~0.1 ms to define instead of ~0.8, at every start-up
    token: str
    source: str  # "--token", an environment variable's name, or "stored"
    file: Path | None = None  # the stored token's file
    file_mode: int | None = None  # its permission bits, as found when it was read

    @property
    def masked(self) -> str:
        return mask_token(self.token)

    def __repr__(self) -> str:  # the token is a secret: not in a repr, and so in no log or debugger either
        return f"ResolvedToken(token={self.masked!r}, source={self.source!r}, file={self.file!r})"

    @property
    def exposed(self) -> bool:
        """A stored token other users can read (copied in by hand, or chmod-ed after we wrote it)."""
        return self.file_mode is not None and bool(self.file_mode & 0o077)


def describe_source(source: str | None) -> str:
    """Which token, in words, for a message: never the token itself."""
    if source == "--token":
        return "the token given with --token"
    if source in TOKEN_ENV_VARS:
        return f"the token in ${source}"
    if source == "stored":
        return "the stored token (from `nanobanana auth login`)"
    return "the token"


def rejected_token_hint(source: str | None) -> str:
    """The fix for a token the API refused, by where it came from."""
    if source == "--token":
        return "check the value passed with --token"
    if source in TOKEN_ENV_VARS:
        stored = " (the stored token is used once it is unset)" if TokenStore().load() else ""
        return f"check ${source}, or unset it{stored}: `unset {source}`"
    if source == "stored":
        return "store a valid token with `nanobanana auth login`"
    return "check the token: --token, RUNCOMFY_API_TOKEN, or `nanobanana auth login`"  # the client's own default


def mask_token(token: str) -> str:
    """At most the last 4 characters, and none of a token too short to spare them."""
    return "****" + token[-4:] if len(token) >= 12 else "****"


class TokenStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or config_dir()) / TOKEN_FILE

    def load(self) -> str | None:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuthError(f"cannot read the stored token {self.path}: {exc.strerror or exc}") from None
        return token or None

    def mode(self) -> int | None:
        """The file's permission bits, or None when it cannot be looked at."""
        try:
            return self.path.stat().st_mode & 0o777
        except OSError:
            return None

    def save(self, token: str) -> None:
        write_private_file(self.path, token.strip() + "\n")

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def token_sources(flag: str | None) -> list[ResolvedToken]:
    """Every token that is set, highest precedence first."""
    found = []
    if flag and flag.strip():
        found.append(ResolvedToken(flag.strip(), "--token"))
    for name in TOKEN_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            found.append(ResolvedToken(value, name))
    store = TokenStore()
    stored = store.load()
    if stored:
        found.append(ResolvedToken(stored, "stored", file=store.path, file_mode=store.mode()))
    return found


def resolve_token(flag: str | None) -> ResolvedToken:
    found = token_sources(flag)
    if not found:
        raise AuthError("no API token found", hint=NO_TOKEN_HINT)
    return found[0]

