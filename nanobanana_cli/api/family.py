"""The nano-banana family on RunComfy: aliases, their text-to-image and edit ids, and model-id checks.

API for the commands (`--model`, `edit`, `model`, `models`):

    resolve(name, task="generate") -> str      # alias or full id -> the model id to call
    resolve(None)                              # the default model, `nano-banana` text-to-image
    FAMILY, DEFAULT_ALIAS, ALIASES              # the family, in display order
    member_of(model_id) -> FamilyMember | None  # which alias a known id belongs to
    alias_or_id(model_id) -> str                # how a model is shown: its alias if known, else the id
    task_of(model_id) -> "generate" | "edit"    # by the id's last segment
    family_ids() -> tuple[str, ...]             # every known id: each member's t2i, then edit
    bundled_entry(model_id) -> dict | None      # the bundled snapshot's catalog entry (family_snapshot.json)
    bundled_entries() -> list[dict]             # all of them, in the family's order

An alias picks the endpoint by task (the command decides: `edit` passes "edit"). A full model id
of the family (`google/nano-banana…`) is taken as given, whatever the task: the catalog is the
authority on which ids exist, so an id this table does not know yet (a new member) is allowed if
it has the family's shape. Anything else is a `UsageError` listing the aliases.
Ids are from ../shared/runcomfy-models.md; note the Pro id is `google/nano-banana/pro/…`.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from ..errors import UsageError

Task = Literal["generate", "edit"]
TASKS: tuple[Task, ...] = ("generate", "edit")


class FamilyMember(NamedTuple):
    alias: str
    text_to_image: str
    edit: str

    def model_id(self, task: Task) -> str:
        return self.edit if task == "edit" else self.text_to_image


FAMILY: tuple[FamilyMember, ...] = (
    FamilyMember("nano-banana", "google/nano-banana/text-to-image", "google/nano-banana/edit"),
    FamilyMember("nano-banana-2", "google/nano-banana-2/text-to-image", "google/nano-banana-2/edit"),
    FamilyMember("nano-banana-pro", "google/nano-banana/pro/text-to-image", "google/nano-banana/pro/edit"),
    FamilyMember("nano-banana-2-lite", "google/nano-banana-2-lite/text-to-image", "google/nano-banana-2-lite/edit"),
)
DEFAULT_ALIAS = "nano-banana"
ALIASES: tuple[str, ...] = tuple(member.alias for member in FAMILY)
_BY_ALIAS = {member.alias: member for member in FAMILY}
_BY_ID = {member.model_id(task): member for member in FAMILY for task in TASKS}

# google/nano-banana… then path segments that each start with a letter or digit: no "..", no
# empty segment, nothing a URL path would read as more than one segment. The id goes into
# `/v1/models/{id}` as it is, so this shape is also what keeps it from changing the path.
_FAMILY_ID = re.compile(r"^google/nano-banana[a-z0-9.-]*(?:/[a-z0-9][a-z0-9._-]{0,63}){1,3}$")
MODEL_ID_MAX_LENGTH = 200
SNAPSHOT_FILE = "family_snapshot.json"


def family_ids() -> tuple[str, ...]:
    return tuple(member.model_id(task) for member in FAMILY for task in TASKS)


def member_of(model_id: str) -> FamilyMember | None:
    return _BY_ID.get(model_id)


def alias_or_id(model_id: str) -> str:
    """The family alias of a known id (its text-to-image and edit ids are one model), else the id as given
    (not escaped: where it comes from outside, the caller escapes it)."""
    member = _BY_ID.get(model_id)
    return member.alias if member is not None else model_id


def task_of(model_id: str) -> Task:
    """An id's task by its last segment: `…/edit` edits, anything else makes images from text."""
    return "edit" if model_id.rsplit("/", 1)[-1] == "edit" else "generate"


def is_family_id(text: str) -> bool:
    return len(text) <= MODEL_ID_MAX_LENGTH and _FAMILY_ID.match(text) is not None


def resolve(name: str | None, task: Task = "generate") -> str:
    """The model id for an alias (by task) or a full family id (as given); None means the default alias."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}")  # a caller's bug, not the user's input
    wanted = (name or DEFAULT_ALIAS).strip()
    member = _BY_ALIAS.get(wanted.lower())
    if member is not None:
        return member.model_id(task)
    if is_family_id(wanted):
        return wanted
    shown = wanted[:80].encode("ascii", "backslashreplace").decode()
    raise UsageError(
        f"unknown model {shown!r}: choose one of {', '.join(ALIASES)}, or a full model id such as {FAMILY[1].text_to_image}",
        hint="`nanobanana models` lists the family",
    )


@lru_cache(maxsize=1)
def _snapshot() -> dict[str, dict[str, Any]]:
    from importlib.resources import files

    document = json.loads(files(__package__).joinpath(SNAPSHOT_FILE).read_text(encoding="utf-8"))
    return {entry["model_id"]: entry for entry in document["models"]}


def bundled_entry(model_id: str) -> dict[str, Any] | None:
    """The catalog entry the bundled snapshot has for `model_id` (a fresh copy), or None.

    The snapshot is what ../shared/runcomfy-models.md knew, shaped like `GET /v1/models/{id}`'s
    answer, with `snapshot_notes` saying what is inferred; prices are null where none is known.
    """
    entry = _snapshot().get(model_id)
    return json.loads(json.dumps(entry)) if entry is not None else None


def bundled_entries() -> list[dict[str, Any]]:
    """Every entry of the bundled snapshot, in the family's order (copies)."""
    return [entry for entry in map(bundled_entry, _snapshot()) if entry is not None]
