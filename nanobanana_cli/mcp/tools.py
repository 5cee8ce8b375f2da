"""The tools an agent sees: each one's input schema, the checks its arguments pass, and its answer.

A tool is one `Tool` in `build_tools`: a JSON Schema, and a function that checks its arguments
against it (every refusal names the field and what it accepts, before anything is sent or read),
asks the `Backend` for the work and turns what comes back into a `ToolAnswer`. A tool that reads
files the agent names passes each path through `backend.readable.check` first; one that submits
hands the backend a checked `GenerateRequest`, which goes through the same journal, budget and
output directory as every other submit. Nothing here imports the MCP SDK (server.py speaks the
protocol) or the CLI's engine (adapter.py does).
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError, NanobananaError, SubmitUncertainError, UsageError
from .adapter import GenerateRequest
from .thumbnails import thumbnail

if TYPE_CHECKING:
    from pathlib import Path

    from .adapter import Backend, Call, JobAnswer

Json = dict[str, Any]
# generate_image's argument for each of the model's options (the model's names are the API's)
MODEL_OPTIONS = {"aspect": "aspect_ratio", "format": "output_format", "count": "num_images"}
MAX_THUMBNAILS = 4
MAX_EDIT_IMAGES = 16  # a bound on the arguments; the model's schema sets the real limit
REQUEST_ID_PATTERN = "^[A-Za-z0-9_-]{1,128}$"
RUNNING = ("in_queue", "in_progress")


@dataclass(frozen=True)
class ToolAnswer:
    """What a tool returns: a line or two for the model to read, the document, and images to show."""

    summary: str
    document: Json | None = None
    images: tuple[Path, ...] = ()
    error: bool = False
    thumbnails: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Tool:
    name: str
    title: str
    description: str
    input_schema: Json
    run: Callable[[Backend, Json, Call], ToolAnswer]
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = True  # talks to the API


# -- arguments ----------------------------------------------------------------------------------


def check_arguments(schema: Json, arguments: Any) -> Json:
    """The arguments with defaults filled in, if the tool's schema accepts them; else the field and what it accepts."""
    if not isinstance(arguments, dict):
        raise InvalidInputError("the arguments must be a JSON object")
    properties: Json = schema["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise InvalidInputError(f"unknown argument {unknown[0]!r}: this tool takes {', '.join(properties)}")
    values: Json = {}
    for name, spec in properties.items():
        if arguments.get(name) is None:
            if name in schema.get("required", ()):
                raise InvalidInputError(f"{name}: required")
            if "default" in spec:
                values[name] = spec["default"]
            continue
        values[name] = _checked(name, spec, arguments[name])
    return values


def _checked(name: str, spec: Json, value: Any) -> Any:
    kind = spec.get("type")
    one_of = f"one of {', '.join(map(str, spec['enum']))}" if "enum" in spec else ""
    if kind == "string" and not isinstance(value, str):
        raise InvalidInputError(f"{name}: must be a string" + (f", {one_of}" if one_of else ""))
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInputError(f"{name}: must be an integer" + (f", {one_of}" if one_of else ""))
    if kind == "boolean" and not isinstance(value, bool):
        raise InvalidInputError(f"{name}: must be true or false")
    if kind == "array":
        if not isinstance(value, list) or not spec.get("minItems", 0) <= len(value) <= spec.get("maxItems", len(value)):
            raise InvalidInputError(
                f"{name}: must be a list of {spec.get('minItems', 0)} to {spec.get('maxItems', 'any number of')} items"
            )
        return [_checked(f"{name}[{index}]", spec["items"], item) for index, item in enumerate(value)]
    if one_of and value not in spec["enum"]:
        raise InvalidInputError(f"{name}: {value!r} is not valid; use {one_of}")
    if isinstance(value, str):
        if len(value.strip()) < spec.get("minLength", 0):
            raise InvalidInputError(f"{name}: must not be empty")
        if len(value) > spec.get("maxLength", len(value)):
            raise InvalidInputError(f"{name}: at most {spec['maxLength']} characters (this one has {len(value)})")
        if "pattern" in spec and not re.fullmatch(spec["pattern"], value):
            raise InvalidInputError(f"{name}: {value!r} does not match {spec['pattern']}")
    if isinstance(value, int) and not spec.get("minimum", value) <= value <= spec.get("maximum", value):
        raise InvalidInputError(f"{name}: must be from {spec['minimum']} to {spec['maximum']}")
    return value


def _schema(properties: Json, required: tuple[str, ...] = ()) -> Json:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


REQUEST_ID = {
    "type": "string", "pattern": REQUEST_ID_PATTERN,
    "description": "The job's request id, as generate_image or list_jobs gave it. Default: the newest job of this server's API.",
}


# -- answers ------------------------------------------------------------------------------------


def error_text(error: NanobananaError) -> str:
    if isinstance(error, SubmitUncertainError):
        return (
            f"uncertain submit: {error}. A job may have been created and billed; nanobanana never sends such a "
            "submit again. Do not submit this request again: ask the user to check `nanobanana history --status "
            "uncertain` or the RunComfy dashboard first."
        )
    return f"error: {error}" + (f"; {error.hint}" if error.hint else "")


def job_answer(answer: JobAnswer) -> ToolAnswer:
    document = answer.document
    request_id, status = document["request_id"], document["status"]
    fetch_later = f'job_result {{"request_id": "{request_id}", "wait": true}}'
    if answer.error is not None and not answer.finished_later:
        text = error_text(answer.error)
        if request_id and status not in ("succeeded", "failed", "cancelled"):
            text += f". The job was not cancelled and keeps running: fetch it later with {fetch_later}"
        return ToolAnswer(text, document, tuple(answer.saved), error=True)
    if status in RUNNING or answer.finished_later:
        position = f" (position {document['queue_position']} in the queue)" if document.get("queue_position") is not None else ""
        return ToolAnswer(f"job {request_id} is {status}{position}; wait for it and save its images with {fetch_later}", document)
    if answer.saved:
        cost = f", cost ${document['cost']:.4f}" if document.get("cost") is not None else ""
        paths = "\n".join(str(path) for path in answer.saved)
        return ToolAnswer(f"job {request_id} {status}: {len(answer.saved)} image(s) saved{cost}:\n{paths}", document, tuple(answer.saved))
    if status == "succeeded" and document["outputs"]:
        return ToolAnswer(f"job {request_id} succeeded; save its images with job_result", document)
    return ToolAnswer(f"job {request_id}: {status}", document)


def run_tool(tool: Tool, backend: Backend, arguments: Any, call: Call) -> ToolAnswer:
    """The tool's answer, a failure included (as an error answer), with the thumbnails of its images."""
    try:
        answer = tool.run(backend, arguments, call)
    except NanobananaError as exc:
        return ToolAnswer(error_text(exc), error=True)
    except Exception as exc:  # a bug: the agent gets one line, the log the traceback
        backend.log(f"{tool.name}: unexpected {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
        return ToolAnswer(f"unexpected {type(exc).__name__}: {exc}; see the server's log", error=True)
    shown = [image for image in (thumbnail(path) for path in answer.images[:MAX_THUMBNAILS]) if image is not None]
    return replace(answer, thumbnails=tuple(shown))


def _field_error(field: str, error: UsageError) -> InvalidInputError:
    return InvalidInputError(f"{field}: {error}", hint=error.hint)


# -- the tools ----------------------------------------------------------------------------------


def build_tools(backend: Backend) -> dict[str, Tool]:
    """Every tool, with schemas made from the model's published input and the settings in effect."""
    tools = [
        _generate_image(backend), _edit_image(backend), _job_status(), _job_result(backend), _cancel_job(), _list_jobs(backend),
        _inspect_image(backend), _model_info(),
    ]
    return {tool.name: tool for tool in tools}


def _submit_properties(backend: Backend) -> Json:
    """The options every submitting tool takes: the model, its classic options, resolution, seed, name and wait."""
    fields = {item.name: item for item in backend.generation_fields()}
    defaults = backend.generation_defaults()
    properties: Json = {
        "model": {
            "type": "string", "enum": list(backend.model_aliases()),
            "description": "The nano-banana model (family alias); its text-to-image or edit endpoint is chosen by the "
            "tool. Default: the user's configured model.",
        },
    }
    extra = {"format": " jpg means jpeg.", "count": " One job makes them all."}
    for argument, name in MODEL_OPTIONS.items():
        item = fields[name]
        properties[argument] = {
            "type": "integer" if item.kind is int else "string", "enum": [*item.choices, *item.aliases],
            "default": defaults[name], "description": item.description + extra.get(argument, ""),
        }
    properties["resolution"] = {
        "type": "string", "maxLength": 16,
        "description": "Output resolution (e.g. 1K, 2K, 4K), for a model whose schema takes one (see model_info); "
        "an invalid value is refused with the model's choices, before anything is sent.",
    }
    properties["seed"] = {
        "type": "integer", "minimum": 0, "maximum": 2**32 - 1,
        "description": "Random seed, for a model whose schema takes one.",
    }
    properties["name"] = {
        "type": "string",
        "description": "File name template, without extension, for the saved images: fields {slug} {id} {i} {n} {aspect} "
        "{format} {date} {time}. A file name only: no '/', '..' or leading '.'. Default: {slug}-{id}-{i}.",
    }
    properties["wait"] = {
        "type": "boolean", "default": True,
        "description": "Wait for the images and save them (with progress notifications). false: return right after "
        "the submit with the request id, and fetch the images later with job_result.",
    }
    return properties


def _submit_request(backend: Backend, values: Json, images: tuple[str, ...] = ()) -> GenerateRequest:
    try:
        name = backend.name_template(values["name"]) if values.get("name") is not None else None
    except UsageError as exc:
        raise _field_error("name", exc) from None
    options = {model_name: values[argument] for argument, model_name in MODEL_OPTIONS.items()}
    return GenerateRequest(
        values["prompt"], options, name, values["wait"], values.get("model"), values.get("resolution"),
        values.get("seed"), images,
    )


def _prompt_property(backend: Backend) -> Json:
    prompt = next(item for item in backend.generation_fields() if item.name == "prompt")
    return {"type": "string", "minLength": 1, "maxLength": prompt.max_length, "description": prompt.description}


SUBMIT_GUARANTEES = (
    "Each submit is billed: it is recorded before it is sent and never sent twice. If the answer says the submit is "
    "uncertain, do not call this again for the same request: ask the user. Submits beyond the server's budget (see "
    "model_info) are refused before anything is sent. If the call is cancelled, the job keeps running: fetch it with "
    "job_result."
)


def _generate_image(backend: Backend) -> Tool:
    schema = _schema({"prompt": _prompt_property(backend), **_submit_properties(backend)}, ("prompt",))

    def run(backend: Backend, arguments: Json, call: Call) -> ToolAnswer:
        values = check_arguments(schema, arguments)
        return job_answer(backend.generate(_submit_request(backend, values), call))

    return Tool(
        "generate_image", "Generate images",
        "Generate images with Google's nano-banana model from a text prompt, wait for them and save them in "
        f"{backend.output_dir}. Returns the saved paths, request id, status and cost (the job document) and a "
        f"small thumbnail of each image. {SUBMIT_GUARANTEES}",
        schema, run,
    )


def _edit_image(backend: Backend) -> Tool:
    allowed = ", ".join(str(directory) for directory in backend.readable.directories)
    properties: Json = {
        "prompt": {**_prompt_property(backend), "description": "What to change, or what to make from the images."},
        "images": {
            "type": "array", "minItems": 1, "maxItems": MAX_EDIT_IMAGES,
            "items": {"type": "string", "minLength": 1, "maxLength": 4096},
            "description": f"The input images, in order: local PNG, JPEG or WebP files inside {allowed} (sent inline), "
            "or https URLs. The model's schema says how many it takes and how large each may be.",
        },
        **_submit_properties(backend),
    }
    schema = _schema(properties, ("prompt", "images"))

    def run(backend: Backend, arguments: Json, call: Call) -> ToolAnswer:
        values = check_arguments(schema, arguments)
        images = tuple(_image_source(backend, raw, f"images[{index}]") for index, raw in enumerate(values["images"]))
        return job_answer(backend.generate(_submit_request(backend, values, images), call))

    return Tool(
        "edit_image", "Edit images",
        "Edit images (or combine several) with a prompt on Google's nano-banana edit endpoint, wait for the result "
        f"and save it in {backend.output_dir}. Local files are read only inside {allowed}. Returns the saved paths, "
        f"request id, status and cost (the job document) and a small thumbnail of each image. {SUBMIT_GUARANTEES}",
        schema, run,
    )


def _image_source(backend: Backend, raw: str, field: str) -> str:
    """An https URL as given; a local file only inside the allowed directories (links resolved), as its real path."""
    if raw.lower().startswith("https://"):
        return raw
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", raw) and not re.match(r"^[A-Za-z]:[\\/]", raw):
        raise InvalidInputError(f"{field}: {raw[:40]!r}…: expected a local image file or an https URL",
                                hint="pass a file path, or an https:// URL")
    return str(backend.readable.check(raw, field=field))


def _job_status() -> Tool:
    schema = _schema({"request_id": REQUEST_ID})

    def run(backend: Backend, arguments: Json, call: Call) -> ToolAnswer:
        values = check_arguments(schema, arguments)
        return job_answer(backend.status(values.get("request_id"), call))

    return Tool(
        "job_status", "Job status",
        "A job's state: in_queue (with its position), in_progress, succeeded, failed or cancelled. Saves nothing.",
        schema, run, read_only=True, idempotent=True,
    )


def _job_result(backend: Backend) -> Tool:
    schema = _schema({
        "request_id": REQUEST_ID,
        "wait": {"type": "boolean", "default": False,
                 "description": "Wait for an unfinished job (with progress notifications) instead of answering at once."},
    })

    def run(backend: Backend, arguments: Json, call: Call) -> ToolAnswer:
        values = check_arguments(schema, arguments)
        return job_answer(backend.result(values.get("request_id"), values["wait"], call))

    return Tool(
        "job_result", "Job result",
        f"A finished job's images, saved in {backend.output_dir} (downloaded only if not saved there yet), with "
        "the job document and thumbnails. An unfinished job answers with its state, or is waited for with wait.",
        schema, run, idempotent=True,
    )


def _cancel_job() -> Tool:
    schema = _schema({"request_id": REQUEST_ID})

    def run(backend: Backend, arguments: Json, call: Call) -> ToolAnswer:
        values = check_arguments(schema, arguments)
        return job_answer(backend.cancel(values.get("request_id"), call))

    return Tool(
        "cancel_job", "Cancel a job",
        "Cancel a queued job. A job already running cannot be cancelled: it completes and is billed.",
        schema, run, destructive=True, idempotent=True,
    )


def _list_jobs(backend: Backend) -> Tool:
    schema = _schema({
        "status": {"type": "string", "enum": list(backend.history_states()), "description": "Only jobs in this state."},
        "search": {"type": "string", "description": "Only jobs whose prompt contains this text."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20, "description": "How many jobs, newest first."},
    })

    def run(backend: Backend, arguments: Json, call: Call) -> ToolAnswer:
        values = check_arguments(schema, arguments)
        entries = backend.history(values.get("status"), values.get("search"), values["limit"])
        lines = [
            f"{entry['submitted_at']}  {entry['request_id']}  {entry['status']}  {str(entry['input'].get('prompt', ''))[:60]}"
            for entry in entries
        ]
        return ToolAnswer("\n".join([f"{len(entries)} job(s), newest first", *lines]), {"jobs": entries})

    return Tool(
        "list_jobs", "List jobs",
        "Jobs recorded in this machine's history, newest first (the same records as `nanobanana history`). A job "
        "whose submit was sent but never answered is listed as uncertain, under a local key: it may exist and be billed.",
        schema, run, read_only=True, idempotent=True, open_world=False,
    )


def _inspect_image(backend: Backend) -> Tool:
    allowed = ", ".join(str(directory) for directory in backend.readable.directories)
    schema = _schema({"path": {"type": "string", "description": f"An image file inside {allowed}."}}, ("path",))

    def run(backend: Backend, arguments: Json, call: Call) -> ToolAnswer:
        values = check_arguments(schema, arguments)
        path = backend.readable.check(values["path"], field="path")
        report = backend.inspect(path)
        made = report.get("provenance") or {}
        summary = (
            f"{report['path']}: {report['format'] or 'not an image'}, {report['bytes']} bytes, intact: {report['intact']}"
            + (f"; made by job {made.get('request_id')} from the prompt {made.get('prompt')!r}" if made else "; no provenance found")
        )
        return ToolAnswer(summary, report, (path,))

    return Tool(
        "inspect_image", "Inspect an image",
        "How an image was made: its embedded (or sidecar) provenance, the history record when this machine made it, "
        f"whether the picture is intact, and whether it carries a C2PA manifest. Reads only files inside {allowed}.",
        schema, run, read_only=True, idempotent=True, open_world=False,
    )


def _model_info() -> Tool:
    schema = _schema({
        "refresh": {"type": "boolean", "default": False, "description": "Ask the API again instead of the cached entry (a day)."},
    })

    def run(backend: Backend, arguments: Json, call: Call) -> ToolAnswer:
        values = check_arguments(schema, arguments)
        document = backend.model(values["refresh"], call)
        price = document.get("base_price_usd")
        budget = document["budget"]
        limits = [
            f"${budget['spent_cost']:.4f} of ${budget['max_cost']:.4f} spent" if budget["max_cost"] is not None else None,
            f"{budget['spent_images']} of {budget['max_images']} images made" if budget["max_images"] is not None else None,
        ]
        shown = [limit for limit in limits if limit] or ["no limit"]
        summary = (
            f"{document['model_id']}: " + (f"${price:.4f} per {document.get('price_unit') or 'image'}" if price is not None else "price unknown")
            + f"; this server's budget: {', '.join(shown)}"
        )
        return ToolAnswer(summary, document)

    return Tool(
        "model_info", "Model and price",
        "The model's catalog entry (name, price per image, input schema) and what is left of this server's budget.",
        schema, run, read_only=True, idempotent=True,
    )


def document_text(document: Json) -> str:
    return json.dumps(document, ensure_ascii=False, indent=1)
