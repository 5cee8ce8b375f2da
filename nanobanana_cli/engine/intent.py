"""A job's intent: where its images go and how they are named, recorded before its submit.

The history keeps it with the job (the submit journal writes it before the POST), so every later
command (`watch`, `result --download`, a resumed batch, each hint) saves into the directory the
job was submitted for, under the names it was given, without being told again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from .naming import FileNamer

METADATA_MODES = ("embed", "sidecar", "none")
MAX_DIRECTORY_LENGTH = 4096


# not a dataclass: imported before every submit (see ARCHITECTURE.md, Layers)
class JobIntent(NamedTuple):
    output_dir: Path  # absolute
    namer: FileNamer
    metadata: str = "embed"

    def to_record(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "names": self.namer.to_record(), "metadata": self.metadata}

    @classmethod
    def from_record(cls, record: Any) -> JobIntent | None:
        """The intent a history row holds, or None when it has none we could have written."""
        if not isinstance(record, dict):
            return None
        directory, metadata = record.get("output_dir"), record.get("metadata")
        namer = FileNamer.from_record(record.get("names"))
        if (
            namer is None or not isinstance(directory, str) or not 0 < len(directory) <= MAX_DIRECTORY_LENGTH
            or "\0" in directory or not Path(directory).is_absolute() or metadata not in METADATA_MODES
        ):
            return None
        return cls(Path(directory), namer, metadata)
