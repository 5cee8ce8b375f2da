"""nanobanana: Google's nano-banana text-to-image model on RunComfy, from the terminal or Python.

The client is imported on first use so that `nanobanana --help` never pays for `requests`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Client", "DownloadPlan", "GenerationInput", "JobResult", "JobStatus", "Jobs", "Submission", "__version__"]

if TYPE_CHECKING:
    from .api.client import Client
    from .api.models import GenerationInput, JobResult, JobStatus, Submission
    from .engine.lifecycle import DownloadPlan, Jobs


def __getattr__(name: str) -> Any:
    if name == "Client":
        from .api.client import Client

        return Client
    if name in ("GenerationInput", "JobResult", "JobStatus", "Submission"):
        from .api import models

        return getattr(models, name)
    if name in ("DownloadPlan", "Jobs"):
        from .engine import lifecycle

        return getattr(lifecycle, name)
    raise AttributeError(f"module 'nanobanana_cli' has no attribute {name!r}")
