"""Where the token and the API address come from: flag, then environment, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .client import DEFAULT_BASE_URL
from .errors import AuthError, UsageError
from .retry import DEFAULT_RETRIES

# RunComfy's docs tell users to set YOUR_API_TOKEN; RunComfy's own CLI reads RUNCOMFY_TOKEN.
TOKEN_ENV_VARS = ("RUNCOMFY_API_TOKEN", "YOUR_API_TOKEN", "RUNCOMFY_TOKEN")
BASE_URL_ENV = "NANOBANANA_BASE_URL"
RETRIES_ENV = "NANOBANANA_RETRIES"


@dataclass(frozen=True)
class ResolvedToken:
    token: str
    source: str  # "--token" or the environment variable's name

    @property
    def masked(self) -> str:
        return mask_token(self.token)


def mask_token(token: str) -> str:
    """At most the last 4 characters, and none of a token too short to spare them."""
    return "****" + token[-4:] if len(token) >= 12 else "****"


def find_token(flag: str | None) -> ResolvedToken | None:
    if flag:
        return ResolvedToken(flag.strip(), "--token")
    for name in TOKEN_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return ResolvedToken(value, name)
    return None


def resolve_token(flag: str | None) -> ResolvedToken:
    found = find_token(flag)
    if found is None:
        raise AuthError(
            "no API token found",
            hint="pass --token, or export RUNCOMFY_API_TOKEN (or YOUR_API_TOKEN); "
            "to try without an account, add --sandbox",
        )
    return found


def resolve_base_url(flag: str | None) -> str:
    return flag or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


def resolve_retries(flag: int | None) -> int:
    if flag is not None:
        return flag
    raw = os.environ.get(RETRIES_ENV, "").strip()
    if not raw:
        return DEFAULT_RETRIES
    if not raw.isdigit() or int(raw) > 20:
        raise UsageError(f"{RETRIES_ENV}={raw!r} is not a whole number from 0 to 20", hint=f"fix or unset {RETRIES_ENV}")
    return int(raw)
