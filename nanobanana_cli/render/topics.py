"""`nanobanana help TOPIC`: the texts, built from the tables they describe so they cannot drift.

The same texts go into docs/cli.md and the man page (scripts/reference.py renders both from
`nanobanana help TOPIC`).
"""

from __future__ import annotations

from collections.abc import Callable

JOB_FIELD_HELP = {
    "schema_version": "1; raised only when a field changes meaning or disappears (new fields may appear)",
    "request_id": "the job's id (null when the submit itself failed, so no job exists)",
    "model": "the model, google/nano-banana/text-to-image",
    "status": "in_queue, in_progress, succeeded, failed or cancelled; timeout when the wait gave up, "
    "error when the command failed for another reason",
    "queue_position": "position in the queue while in_queue, else null",
    "input": "the submitted input {prompt, aspect_ratio, output_format, num_images}, or null if unknown",
    "outputs": "one {url, path, bytes, sha256, delivered_sha256, provenance} per image: bytes and sha256 of the "
    "file on disk, delivered_sha256 of the server's bytes, provenance embedded, sidecar or none; null when not saved",
    "error": "why the job did not succeed (the API's reason, or the command's error), else null",
    "submitted_at": "when the job was submitted (UTC, ISO 8601), if known",
    "finished_at": "when it finished (the API's time, or when this command saw it), if known",
    "cost": "what the job cost in USD, when the API reported it, else null",
    "elapsed_seconds": "how long this command waited on the job; null if it did not wait",
    "exit_code": "the exit code this job gives the command (0 success, 5 failed, 6 timed out, 8 not finished...)",
}
EXTRA_FIELD_HELP = {
    "status_url, result_url, cancel_url": "generate --no-wait: where to follow the job",
    "outcome": "cancel: the API's answer (cancelled or not_cancellable)",
    "line, name, skipped": "batch: the prompt file's line, its name, whether a finished job was skipped",
}


def _rows(rows: dict[str, str], width: int) -> list[str]:
    """Two columns, the second wrapped under itself: topics print in an 80-column terminal too."""
    import textwrap

    lines = []
    for name, text in rows.items():
        wrapped = textwrap.wrap(text, 96 - width - 4) or [""]
        lines.append(f"  {name:<{width}}  {wrapped[0]}")
        lines += [f"  {'':<{width}}  {more}" for more in wrapped[1:]]
    return lines


def _shown(value: object) -> str:
    return "none" if value is None else str(value)


def _environment() -> str:
    from ..stores.paths import CONFIG_DIR_ENV, DATA_DIR_ENV
    from ..stores.settings import SETTINGS
    from ..stores.tokens import TOKEN_ENV_VARS

    lines = ["Environment variables (a flag beats them; they beat the config file).", "", "The API token, first found wins:"]
    lines += [f"  {name}" for name in TOKEN_ENV_VARS]
    lines += ["  then the token stored by `nanobanana auth login`", "", "Defaults (same keys as `nanobanana config`):"]
    lines += [f"  {setting.env:<28} {setting.key} (built-in: {_shown(setting.default)})" for setting in SETTINGS.values()]
    lines += [
        "",
        "Elsewhere:",
        f"  {CONFIG_DIR_ENV:<28} where the config file and the stored token live",
        f"  {DATA_DIR_ENV:<28} where the job history lives",
        "  NANOBANANA_DEBUG=1           tracebacks and an HTTP log on stderr (like --debug)",
        "  NO_COLOR                     no colour on stderr (stdout never has any)",
        "  TERM=dumb                    no live progress display, one line per event",
    ]
    return "\n".join(lines)


def _exit_codes() -> str:
    from ..errors import EXIT_CODE_HELP

    lines = ["Exit codes, the same for every command:", ""]
    lines += [f"  {int(code):>3}  {text}" for code, text in EXIT_CODE_HELP.items()]
    lines += [
        "",
        "A job that timed out (6) or was interrupted (130, 143) keeps running and is not cancelled;",
        "the error names the command that resumes it. A closed stdout (`nanobanana history | head -1`)",
        "ends the command quietly with exit 0. Every error is one line on stderr: `error: what; the fix`.",
    ]
    return "\n".join(lines)


def _json() -> str:
    lines = [
        "--json prints one document on stdout; commands that report several jobs (watch with several",
        "ids, batch, generate with a prompt matrix or -n above 4) print one compact JSON line per job,",
        "as each finishes. Failed, timed-out and",
        "cancelled jobs print their document too. JSON Schemas: docs/schema/ in the source tree.",
        "",
        "The job document (generate, status, result, watch, cancel, batch):",
        "",
    ]
    lines += _rows(JOB_FIELD_HELP, 15)
    lines += ["", "Added by some commands:", ""]
    lines += _rows(EXTRA_FIELD_HELP, 34)
    lines += [
        "",
        "--template FORMAT prints each job document as one line of FORMAT, Python str.format over its",
        "fields; nested ones by key or index. Empty for null or missing; lists and objects as JSON.",
        "An unknown field is a usage error (exit 2) before anything is sent.",
        "",
        "  nanobanana status \"$ID\" --template '{request_id} {status} {queue_position}'",
        "  nanobanana generate \"a fox\" --template '{outputs[0][path]}'",
        "  nanobanana watch A B --template '{request_id}: {input[prompt]} -> {error}'",
    ]
    return "\n".join(lines)


def _file_names() -> str:
    from ..engine.naming import DEFAULT_NAME, MAX_NAME_LENGTH

    return "\n".join([
        f"Saved images are named {DEFAULT_NAME}.EXT unless --name TEMPLATE (generate, watch, result,",
        "batch) says otherwise. EXT follows the format: png, jpg or webp. Fields:",
        "",
        "  {slug}    the prompt (or the batch line's name): letters and digits of any script,",
        "            lower-cased, joined by '-'; emoji and punctuation dropped (日本の庭 🌸 -> 日本の庭)",
        "  {model}   the model's alias (nano-banana-2), or its id as a slug when it has none",
        "  {id}      the first 8 letters or digits of the request id",
        "  {i}       the image's number, from 1; across a run of several jobs (-n above 4, a prompt",
        "            matrix) it counts on through the run (format specs work: {i:02d})",
        "  {n}       how many images the job (or the run) made",
        "  {vars}    a prompt matrix's values joined by '-' (red-fog); {var.NAME} one named value",
        "            (--var style=… gives {var.style}), {var.1} the first unnamed {a,b} group's;",
        "            a run over several models (--model a,b) has the model first: {var.model}",
        "  {aspect}  the aspect ratio with x for ':' (16x9)",
        "  {format}  png, jpeg or webp",
        "  {date}    the submission's local date, 2026-01-31",
        "  {time}    the submission's local time, 235959",
        "",
        "A template names a file inside the output directory: '/', '\\', '..', NUL or a leading '.'",
        f"are refused (exit 2), as are unknown fields; names are cut to {MAX_NAME_LENGTH} UTF-8 bytes.",
        "A job's names (and its output directory) are recorded when it is submitted: watch, result",
        "--download and a resumed run reuse them (unless given --name or -o), so fetching a job again",
        "finds its files. An existing file is never overwritten: an identical one is reused, a",
        "different one makes NAME-2.EXT. `nanobanana gallery DIR` groups the images by job.",
    ])


TOPICS: dict[str, tuple[str, Callable[[], str]]] = {
    "environment": ("environment variables, and the order settings are looked up in", _environment),
    "exit-codes": ("what each exit code means", _exit_codes),
    "json": ("the job document printed by --json, and --template", _json),
    "file-names": ("how saved images are named, and --name", _file_names),
}


def topic_text(name: str) -> str:
    return TOPICS[name][1]()


def topic_list() -> str:
    width = max(map(len, TOPICS))
    lines = ["Help topics (nanobanana help TOPIC):", ""]
    lines += [f"  {name:<{width}}  {summary}" for name, (summary, _) in TOPICS.items()]
    lines += ["", "Help on a command: nanobanana help COMMAND, or nanobanana COMMAND --help."]
    return "\n".join(lines)
