"""`--debug` / NANOBANANA_DEBUG=1: tracebacks and an HTTP log on stderr (never the token)."""

from __future__ import annotations

import os
import sys

DEBUG_ENV = "NANOBANANA_DEBUG"

_forced = False


def enable() -> None:
    global _forced
    _forced = True


def enabled() -> bool:
    return _forced or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def log(message: str) -> None:
    from .sanitise import escape

    sys.stderr.write(f"debug: {escape(message)}\n")  # an HTTP log quotes the server
