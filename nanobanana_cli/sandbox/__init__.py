"""A faithful local stand-in for RunComfy's Model API, for trying the tool and for tests.

    from nanobanana_cli.sandbox import Faults, Sandbox
    with Sandbox(faults=Faults(rate_limit=2)) as sandbox:
        ...  # point a client at sandbox.base_url with sandbox.token; read sandbox.jobs(), sandbox.stats

The names load on first use: importing the package alone starts no server machinery.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .faults import FAULT_TABLE, Faults, FaultSpec, fault_help
    from .jobs import JobView
    from .models import MODELS, SandboxModel
    from .server import Sandbox
    from .transport import RecordedRequest, SandboxStats, TLSConfig

_HOMES = {
    "FAULT_TABLE": "faults", "Faults": "faults", "FaultSpec": "faults", "fault_help": "faults",
    "JobView": "jobs", "MODELS": "models", "SandboxModel": "models", "Sandbox": "server",
    "RecordedRequest": "transport", "SandboxStats": "transport", "TLSConfig": "transport",
}

__all__ = [
    "FAULT_TABLE",
    "MODELS",
    "FaultSpec",
    "Faults",
    "JobView",
    "RecordedRequest",
    "Sandbox",
    "SandboxModel",
    "SandboxStats",
    "TLSConfig",
    "fault_help",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
