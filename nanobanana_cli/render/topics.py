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
    "line, name, skipped": "batch, generate: the job's line in the file or run (1 for a single job), the line's name (batch), "
    "whether an earlier run had done it (resumed)",
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
        "--json prints one document on stdout. generate, edit and regen print JSON Lines whatever -n:",
        "one compact document per job, one per line, in order (a single job is one line, so json.load",
        "reads it; jq reads any number). batch and watch with several ids print one compact line per",
        "job as each finishes. Failed, timed-out and cancelled jobs print their document too.",
        "",
        "An error that ends generate, edit, regen, status, result, cancel or watch before any document",
        "(a rejected token, an unreachable API, an unknown id, a bad flag) prints one too: status",
        "\"error\", request_id null, error (the message) and exit_code; the error line still goes to",
        "stderr. JSON Schemas: docs/schema/ in the source tree.",
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


def _models() -> str:
    from ..api.family import DEFAULT_ALIAS, FAMILY
    from ..stores.catalog import CATALOG_TTL_SECONDS

    width = max(len(member.alias) for member in FAMILY)
    lines = [
        "The nano-banana family on RunComfy. --model (or the config key `model`, or",
        f"NANOBANANA_MODEL) takes an alias or a full model id of the family; {DEFAULT_ALIAS} is the",
        "default. The alias picks the text-to-image endpoint for generate and regen, and the edit",
        "endpoint for edit:",
        "",
        f"  {'alias':<{width}}  text-to-image / edit",
    ]
    lines += [f"  {member.alias:<{width}}  {member.text_to_image} / {member.edit}" for member in FAMILY]
    lines += [
        "",
        "The schema in effect (the fields a model takes, their types, values and defaults) comes",
        "from RunComfy's catalog (GET /v1/models/ID), asked once per model and API and cached for",
        f"{CATALOG_TTL_SECONDS // 3600} hours (`nanobanana model X --refresh` asks again). When the catalog cannot",
        "be asked (no token, no network, an unusable answer), the newest cached entry serves, else the",
        "snapshot bundled with this version, and a note says so. If the API refuses a request the",
        "schema allowed (HTTP 422, or error 400001 about the model), that is a usage error (exit 2)",
        "naming the field, and the cached schema is marked stale: the next run asks the catalog again.",
        "",
        "Every request is checked against that schema before anything is sent (required fields,",
        "types, values, ranges, lengths, the number of images), and only the fields you set are sent: the",
        "server's defaults apply to the rest. The default model with only -a, -f and -n needs no",
        "catalog at all. Options:",
        "",
        "  -a/--aspect, -f/--format, -n   where the model has them (nano-banana-2-lite has only -a)",
        "  --resolution 1K|2K|4K          output size, for the models that have `resolution`",
        "  --seed N                       for the models that have `seed`",
        "  --set KEY=VALUE                any other field of the schema, typed by it (repeatable):",
        "                                 --set safety_tolerance=5 --set enable_web_search=true",
        "                                 an array as JSON or a comma list: --set 'tags=[\"a\",\"b\"]' or",
        "                                 --set tags=a,b; an object as JSON. The prompt and a field with",
        "                                 a flag of its own (-a, -f, -n, --resolution, --seed, -i) are",
        "                                 refused: give them with their flag.",
        "",
        "Price: the catalog's base_price_usd per price_unit (`output`: per image) makes the estimates",
        "of --dry-run and confirmations, and the --max-cost check; a price sent as text (\"0.1\") is",
        "read as its number. A model whose price the catalog does not give is said to be unknown, never",
        "guessed, and --max-cost then refuses to run it.",
        "",
        "Comparing models: --model A,B (or --var model=A,B) runs every prompt on each model, each job",
        "checked against its own model's schema and priced at its price; file names lead with the",
        "model (nano-banana-2-a-fox-1a2b3c4d-1.png), and --name takes {model}.",
        "",
        "  nanobanana models                                   the family, prices, schema sources",
        "  nanobanana model nano-banana-2                      one model's fields, values and defaults",
        "  nanobanana generate --model nano-banana-2 --help    the same, after generate's help",
        "  nanobanana generate \"a lighthouse\" --model nano-banana-pro --resolution 4K",
        "  nanobanana generate \"a lighthouse\" --model nano-banana-2 --set safety_tolerance=5 --seed 7",
        "  nanobanana generate \"a {red,blue} fox\" --model nano-banana,nano-banana-2 --dry-run",
    ]
    return "\n".join(lines)


def _editing() -> str:
    from ..engine.image_inputs import DEFAULT_MAX_IMAGE_BYTES, MAX_REQUEST_BYTES, MIB, PILLOW_HINT

    return "\n".join([
        "nanobanana edit PROMPT -i IMAGE [-i IMAGE …] sends the images and the prompt to the model's",
        "edit endpoint (--model picks the model; its schema says how many images it takes).",
        "generate --image does the same for a model whose text-to-image schema takes images.",
        "",
        "IMAGE is a local file or an https URL:",
        "",
        "  a local file   sent inline as a data URI (data:image/png;base64,…), as RunComfy's own",
        "                 ComfyUI nodes send local images. Checked before anything is sent: it must be",
        f"                 a PNG, JPEG or WebP by its bytes, at most {DEFAULT_MAX_IMAGE_BYTES // MIB} MiB per image (unless the",
        f"                 schema says otherwise), and the whole request at most {MAX_REQUEST_BYTES // MIB} MiB.",
        "  --fit          shrinks and re-encodes an image over the per-image limit and, when the",
        "                 images together are over the request limit, each to its share of it; with",
        f"                 Pillow ({PILLOW_HINT}); without it, the",
        "                 error names the limit, the size and the fix.",
        "  an https URL   sent as given; the tool never fetches it and never sends the token anywhere",
        "                 but the API. Plain http is refused, except to this machine (the sandbox);",
        "                 so is a URL with user:password@ (shown masked, never sent or recorded).",
        "",
        "Records (history, provenance, --json, --dry-run, logs) keep each URL as given and each local",
        "file as its name, path, size and sha256, never the data URI. `regen` of an edited image sends",
        "the same inputs again: a local file from its recorded path if its sha256 still matches;",
        "otherwise it asks for the images with -i.",
        "",
        "  nanobanana edit \"make it night, with stars\" -i photo.jpg",
        "  nanobanana edit \"the cat in this room\" -i cat.png -i room.png --model nano-banana-2",
        "  nanobanana edit \"as a watercolour\" -i https://example.com/a.jpg --model nano-banana-pro",
        "  nanobanana edit \"as a watercolour\" -i big.jpg --fit --dry-run",
        "  nanobanana edit \"make it dusk\" -i photo.jpg --model nano-banana,nano-banana-2",
    ])


TOPICS: dict[str, tuple[str, Callable[[], str]]] = {
    "environment": ("environment variables, and the order settings are looked up in", _environment),
    "exit-codes": ("what each exit code means", _exit_codes),
    "json": ("the job document printed by --json, and --template", _json),
    "file-names": ("how saved images are named, and --name", _file_names),
    "models": ("the model family, the schema in effect, --set, --resolution, prices, comparing models", _models),
    "editing": ("edit and input images: local files, URLs, limits, --fit, records", _editing),
}


def topic_text(name: str) -> str:
    return TOPICS[name][1]()


def topic_list() -> str:
    width = max(map(len, TOPICS))
    lines = ["Help topics (nanobanana help TOPIC):", ""]
    lines += [f"  {name:<{width}}  {summary}" for name, (summary, _) in TOPICS.items()]
    lines += ["", "Help on a command: nanobanana help COMMAND, or nanobanana COMMAND --help."]
    return "\n".join(lines)
