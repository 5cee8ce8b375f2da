"""The JSON contract: docs/schema/ describes every --json output, and every one the suite produces is checked.

`validate_json_output` is what the `cli` fixture (tests/conftest.py) calls on the stdout of every
run with `--json`, so a document that drifts from its schema fails the test that printed it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schema"
JOB_COMMANDS = {"generate", "status", "result", "watch", "cancel", "batch", "edit"}
# command (or "group command") -> (schema file, the document is one per line)
DOCUMENTS = {
    **{command: ("job.json", True) for command in JOB_COMMANDS},
    "history": ("history-row.json", False),
    "doctor": ("doctor.json", False),
    "auth status": ("auth-status.json", False),
    "config list": ("config-list.json", False),
    "config get": ("config-get.json", False),
    "history stats": ("history-stats.json", False),
    "inspect": ("inspect.json", True),
    "explain": ("explain.json", False),
    "model": ("model.json", False),
    "models": ("models.json", False),
    "regen": ("job.json", True),
}
COMMANDS = {
    "generate", "status", "result", "watch", "cancel", "batch", "history", "doctor", "auth", "config", "gallery", "sandbox",
    "help", "edit", "inspect", "regen", "explain", "model", "models",
}


@lru_cache(maxsize=1)
def _registry() -> referencing.Registry:
    resources = []
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], referencing.Resource.from_contents(schema)))
    return referencing.Registry().with_resources(resources)


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = _registry().contents(name)
    return jsonschema.Draft202012Validator(schema, registry=_registry(), format_checker=jsonschema.FormatChecker())


def command_of(args: list[str]) -> str | None:
    """The command words in an argument list (`auth status`, `generate`), skipping global options."""
    words = [arg for arg in args if not arg.startswith("-")]
    for position, word in enumerate(words):
        if word in COMMANDS:
            following = words[position + 1] if position + 1 < len(words) else None
            sub = following if word in ("auth", "config") or (word == "history" and following == "stats") else None
            return f"{word} {sub}" if sub else word
    return None


def documents_in(stdout: str, per_line: bool) -> list[object]:
    """One pretty document, or (for commands that report several jobs) one compact document per line."""
    try:
        return [json.loads(stdout)]
    except ValueError:
        if not per_line:
            raise
        return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def validate_json_output(args: list[str], stdout: str) -> None:
    """Fail unless `stdout` of `nanobanana ARGS --json` is what docs/schema/ says it is."""
    command = command_of(args)
    if "--dry-run" in args:
        name, per_line = "dry-run.json", True
    elif command in DOCUMENTS:
        name, per_line = DOCUMENTS[command]
    else:
        raise AssertionError(f"no schema in docs/schema/ for `{command} --json`: add one and map it here")
    check = validator(name)
    for document in documents_in(stdout, per_line):
        items = document if name in ("history-row.json",) else [document]
        for item in items:  # type: ignore[union-attr]
            errors = sorted(check.iter_errors(item), key=lambda error: list(error.path))
            assert not errors, f"`{' '.join(args)}` printed JSON that {name} rejects: {errors[0].message} at {list(errors[0].path)}"


# -- the schemas themselves -----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.json")), ids=lambda p: p.name)
def test_every_schema_is_valid_draft_2020_12(path):
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))


def test_the_job_schema_lists_exactly_the_documents_fields_and_the_help_explains_them():
    from nanobanana_cli.engine.outcome import EXTRA_JOB_FIELDS, JOB_FIELDS
    from nanobanana_cli.render.topics import EXTRA_FIELD_HELP, JOB_FIELD_HELP

    schema = _registry().contents("job.json")
    assert schema["required"] == list(JOB_FIELDS)
    assert set(schema["properties"]) == {*JOB_FIELDS, *EXTRA_JOB_FIELDS}
    assert list(JOB_FIELD_HELP) == list(JOB_FIELDS)
    assert {name for names in EXTRA_FIELD_HELP for name in names.split(", ")} == set(EXTRA_JOB_FIELDS)


def test_a_job_document_of_every_shape_validates():
    from nanobanana_cli.api.models import GenerationInput
    from nanobanana_cli.engine.downloads import SavedFile
    from nanobanana_cli.engine.outcome import JobOutcome
    from nanobanana_cli.errors import JobFailedError, WaitTimeoutError

    generation = GenerationInput("a fox")
    saved = SavedFile("https://cdn.example/1.png", "/tmp/a-fox-1.png", 10, "0" * 64)
    shapes = [
        JobOutcome("abc", "succeeded", generation, [saved.url], [saved], elapsed_seconds=1.5, finished_at="2026-01-01T00:00:00Z"),
        JobOutcome("abc", "in_queue", None, queue_position=3),
        JobOutcome("abc", "failed", generation, error=JobFailedError("x", request_id="abc", status="failed", reason="bad")),
        JobOutcome("abc", "timeout", generation, error=WaitTimeoutError("gave up", request_id="abc"), elapsed_seconds=2),
        JobOutcome("", "error", generation, error=JobFailedError("no submit", request_id="", status="error")),
    ]
    for outcome in shapes:
        document = outcome.to_dict()
        assert not list(validator("job.json").iter_errors(document)), document
        assert document["schema_version"] == 1 and document["model"] == "google/nano-banana/text-to-image"
    assert [shape.to_dict()["exit_code"] for shape in shapes] == [0, 0, 5, 6, 5]
    assert shapes[2].to_dict()["error"] == "bad" and shapes[4].to_dict()["request_id"] is None


def test_the_validator_catches_a_drifted_document():
    with pytest.raises(AssertionError, match="job.json rejects"):
        validate_json_output(["status", "x", "--json"], json.dumps({"request_id": "x", "status": "in_queue"}))
    with pytest.raises(AssertionError, match="no schema"):
        validate_json_output(["gallery", "--json"], "{}")
