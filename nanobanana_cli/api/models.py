"""Shapes of the nano-banana text-to-image API: the input schema and the answers we read.

Parsing is deliberately lenient (extra keys ignored, missing ones defaulted) because the API's
answers are only partly documented; validation of *our* input is strict, because every submit
is billed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..errors import BadResponseError, InvalidInputError
from ..sanitise import escape, is_safe
from ..states import RUNNING_WORDS, JobState
from .schema import MODEL_ID, TEXT_TO_IMAGE

DEFAULT_BASE_URL = "https://model-api.runcomfy.net"
ASPECT_RATIOS: tuple[str, ...] = TEXT_TO_IMAGE["aspect_ratio"].choices
OUTPUT_FORMATS: tuple[str, ...] = TEXT_TO_IMAGE["output_format"].choices
FORMAT_ALIASES: Mapping[str, str] = TEXT_TO_IMAGE["output_format"].aliases
NUM_IMAGES_CHOICES: tuple[int, ...] = TEXT_TO_IMAGE["num_images"].choices
PROMPT_MAX_LENGTH: int = TEXT_TO_IMAGE["prompt"].max_length or 0

# RunComfy's ids are `[A-Za-z0-9_-]{1,128}` (UUIDs in practice). One never starts with "-": an id
# goes into hooks' argv and hints (`nanobanana watch ID`), where "--delete" would be an option.
# \A and \Z, not ^ and $: "$" also matches before a trailing newline.
REQUEST_ID_PATTERN = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_-]{0,127}\Z")


STATUS_MAX_LENGTH = 64
TEXT_MAX_LENGTH = 1000
QUEUE_POSITION_MAX = 10**9


def has_unprintable(text: str) -> bool:
    return not is_safe(text)


def printable(text: str, *, secret: str | None = None, limit: int = TEXT_MAX_LENGTH) -> str:
    """Server text safe for a terminal: our token masked, then every control character escaped.

    Escaped rather than stripped: stripping could join a token split by control characters
    back together after masking looked for it.
    """
    if secret:
        text = text.replace(secret, "***")
    if len(text) > limit:
        text = text[:limit] + "…"
    return escape(text)


def normalise_status(raw: Any, *, secret: str | None = None) -> str:
    """Lower-case, trimmed, with the one-l spelling folded in; unknown values pass through, escaped."""
    text = printable(str(raw or "").strip().lower(), secret=secret, limit=STATUS_MAX_LENGTH)
    return JobState.CANCELLED if text == "canceled" else text


def validate_request_id(request_id: str) -> str:
    """Reject ids that could change the URL path or pass for an option; see REQUEST_ID_PATTERN."""
    candidate = request_id.strip()
    if not REQUEST_ID_PATTERN.match(candidate):
        raise InvalidInputError(
            f"invalid request id {request_id!r}: expected 1-128 letters, digits, '-' or '_', not starting with '-'",
            hint="copy the id that `nanobanana generate --no-wait` printed",
        )
    return candidate


def _check_utf8(prompt: str) -> None:
    """Undecodable bytes (from argv, stdin or a file) arrive as lone surrogates, which no request can carry."""
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"the prompt is not valid UTF-8 (an undecodable byte at character {exc.start + 1})",
            hint="save or type the prompt as UTF-8 text",
        ) from None


class _GenerationFields(NamedTuple):  # the defaults are GenerationInput.__new__'s, which always gives every field
    prompt: str
    aspect_ratio: str | None
    output_format: str | None
    num_images: int  # how many images the job makes, sent or not
    model: str
    # The other fields of a schema-validated request, in send order (resolution, seed, --set, …)
    extra: tuple[tuple[str, Any], ...]
    # Input images: ImageInput (engine/image_inputs) objects, or their records when read back
    images: tuple[Any, ...]
    # Which of aspect_ratio / output_format / num_images the body carries; None: all three (the classic request)
    sent: tuple[str, ...] | None
    # The streaming body (engine/image_inputs.JsonBody) of a request with local images: sent instead of JSON
    wire: Any


# A NamedTuple checked as it is made, rather than a frozen dataclass: this module is imported before
# every submit, and a dataclass costs ~1 ms to define (and `dataclasses` itself ~1 ms to import).
# `_replace` skips the checks: build a new one instead.
class GenerationInput(_GenerationFields):
    """One request to a model of the family.

    The default model with only the four classic options is validated here, against its built-in
    schema. Any other request (another model, input images, `--resolution`, `--seed`, `--set`) is
    validated against the schema in effect by the use case, which then builds it `from_body`: its
    `body` is exactly the fields to send (unset ones left to the server's defaults).
    """

    __slots__ = ()

    def __new__(
        cls,
        prompt: str,
        aspect_ratio: str | None = TEXT_TO_IMAGE["aspect_ratio"].default,
        output_format: str | None = TEXT_TO_IMAGE["output_format"].default,
        num_images: int = TEXT_TO_IMAGE["num_images"].default,
        model: str = MODEL_ID,
        extra: tuple[tuple[str, Any], ...] = (),
        images: tuple[Any, ...] = (),
        sent: tuple[str, ...] | None = None,
        wire: Any = None,
    ) -> GenerationInput:
        if not isinstance(prompt, str):
            raise InvalidInputError(f"the prompt must be text, not {type(prompt).__name__}")
        prompt = prompt.strip()
        _check_utf8(prompt)
        if not prompt:
            raise InvalidInputError("the prompt is empty", hint='pass one: nanobanana generate "a red fox"')
        if isinstance(output_format, str):
            folded = output_format.lower()
            output_format = FORMAT_ALIASES.get(folded, folded)
        made = super().__new__(cls, prompt, aspect_ratio, output_format, num_images, model, extra, images, sent, wire)
        if made.classic:
            made._check_classic()
        # otherwise checked against the schema in effect (api/input_schema.validate)
        return made

    def _check_classic(self) -> None:
        if len(self.prompt) > PROMPT_MAX_LENGTH:
            raise InvalidInputError(
                f"the prompt is {len(self.prompt)} characters long; the model accepts at most {PROMPT_MAX_LENGTH}",
                hint="shorten the prompt",
            )
        if self.aspect_ratio not in ASPECT_RATIOS:
            raise InvalidInputError(
                f"invalid aspect ratio {self.aspect_ratio!r}: choose one of {', '.join(ASPECT_RATIOS)}",
                hint="see `nanobanana model MODEL` for the ratios each model takes",
            )
        if self.output_format not in OUTPUT_FORMATS:
            raise InvalidInputError(
                f"invalid format {self.output_format!r}: choose one of png, jpeg (or jpg), webp"
            )
        # an int, not 2.0 nor True: both compare equal to a choice, and would be sent as they are
        if type(self.num_images) is not int or self.num_images not in NUM_IMAGES_CHOICES:
            raise InvalidInputError(
                f"invalid number of images {self.num_images!r}: choose {TEXT_TO_IMAGE['num_images'].choices_spoken}"
            )

    @property
    def classic(self) -> bool:
        """The default model with only its four classic fields: checked here, no catalog needed."""
        return self.model == MODEL_ID and self.sent is None and not self.extra and not self.images

    @classmethod
    def from_body(cls, body: Mapping[str, Any], model: str, *, images_field: str = "image_urls", wire: Any = None) -> GenerationInput:
        """A request whose `body` (validated against the schema in effect) is what is sent; its images
        as ImageInput objects or records. Also reads back a recorded `input` (history, provenance)."""
        images = body.get(images_field)
        num_images = body.get("num_images")
        return cls(
            prompt=body.get("prompt", ""),
            aspect_ratio=body.get("aspect_ratio"),
            output_format=body.get("output_format"),
            num_images=num_images if type(num_images) is int and num_images > 0 else 1,
            model=model,
            extra=tuple((key, value) for key, value in body.items() if key not in (*CLASSIC_FIELDS, images_field)),
            images=tuple(images) if isinstance(images, list) else (),
            sent=tuple(key for key in CLASSIC_FIELDS[1:] if body.get(key) is not None),
            wire=wire,
        )

    @classmethod
    def from_record(cls, payload: Mapping[str, Any], model: str | None = None) -> GenerationInput:
        """A recorded `input` (history, provenance) read back: classic when it is, else as a body."""
        model = model or MODEL_ID
        if model == MODEL_ID and set(payload) <= set(CLASSIC_FIELDS):
            return cls(**payload)
        return cls.from_body(payload, model)

    def option(self, name: str) -> Any:
        """A field's value as sent (None when not sent)."""
        return self.to_payload().get(name)

    def to_payload(self) -> dict[str, Any]:
        """The request as recorded (history, provenance, --json, dry runs): each input image as its
        URL or its record, never its data."""
        if self.sent is None and not self.extra and not self.images:
            return {"prompt": self.prompt, "aspect_ratio": self.aspect_ratio, "output_format": self.output_format,
                    "num_images": self.num_images}
        payload: dict[str, Any] = {"prompt": self.prompt}
        for key in CLASSIC_FIELDS[1:]:
            if self.sent is None or key in self.sent:
                payload[key] = getattr(self, key)
        payload.update(self.extra)
        if self.images:
            payload["image_urls"] = [_image_record(item) for item in self.images]
        return payload

    def to_body(self) -> dict[str, Any]:
        """The JSON body of a request without local images (those go as `wire`)."""
        payload = self.to_payload()
        if any(isinstance(item, dict) for item in payload.get("image_urls", ())):
            raise InvalidInputError("a local input image must be read again before it is sent", hint="pass it with -i")
        if self.images:
            payload["image_urls"] = [item.get("url") if isinstance(item, dict) else item for item in payload["image_urls"]]
        return payload


CLASSIC_FIELDS = ("prompt", "aspect_ratio", "output_format", "num_images")


def _image_record(item: Any) -> Any:
    """An input image as records keep it: a URL as given, a local file as its record (never its data)."""
    if isinstance(item, (str, dict)):
        return item
    record = item.record()
    return record["url"] if set(record) == {"url"} else record


# The API's answers are NamedTuples rather than frozen dataclasses: every command that talks to the
# API imports this module before its first request, and a frozen dataclass costs ~0.8 ms to define
# where a NamedTuple costs ~0.1 ms.
class Submission(NamedTuple):
    request_id: str
    status_url: str
    result_url: str
    cancel_url: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class JobStatus(NamedTuple):
    request_id: str
    status: str
    queue_position: int | None = None

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING_WORDS

    def to_dict(self) -> dict[str, Any]:
        return {"request_id": self.request_id, "status": self.status, "queue_position": self.queue_position}


class JobResult(NamedTuple):
    """What `/result` said. `status` is `succeeded`/`failed`/`cancelled` once finished, else the live state."""

    request_id: str
    status: str
    output_urls: tuple[str, ...] = ()
    error: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    cost: float | None = None
    queue_position: int | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

    @property
    def succeeded(self) -> bool:
        return self.status == JobState.SUCCEEDED

    @property
    def server_duration(self) -> float | None:
        """Seconds from creation to finish by the server's own clock, when it says both."""
        from ..times import seconds_between

        return seconds_between(self.created_at, self.finished_at)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "request_id": self.request_id,
            "status": self.status,
            "output_urls": list(self.output_urls),
        }
        for key in ("error", "created_at", "finished_at", "cost"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


class CancelOutcome(NamedTuple):
    request_id: str
    outcome: str
    status: str | None = None

    @property
    def cancelled(self) -> bool:
        return normalise_status(self.outcome) == JobState.CANCELLED

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def _queue_position(value: Any) -> int | None:
    """A position we can show: a whole number in a sane range, whatever type the server used."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        position = int(value)
    except (ValueError, OverflowError):  # "abc", NaN, infinity
        return None
    return position if 0 <= position <= QUEUE_POSITION_MAX else None


_DECIMAL = re.compile(r"^\s*\d{1,12}(?:\.\d{1,12})?\s*$")


def parse_amount(value: Any) -> float | None:
    """A price or cost in USD: a non-negative finite number, or a decimal string ("0.0780") read as
    the number it says. Anything else is unknown (None), never guessed."""
    if isinstance(value, str):
        return float(value) if _DECIMAL.match(value) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _cost(value: Any) -> float | None:
    """The job's cost; a NaN or infinity is kept as it came, so the one JSON emitter writes null and
    names the raw value in a warning (render/output.py) rather than it vanishing silently."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    return parse_amount(value)


def _optional_text(value: Any, secret: str | None) -> str | None:
    return printable(value, secret=secret, limit=STATUS_MAX_LENGTH) if isinstance(value, str) else None


def _require_mapping(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadResponseError(f"the API's {what} answer is not a JSON object")
    return data


def parse_status(data: Any, request_id: str, *, secret: str | None = None) -> JobStatus:
    """`/status`'s answer. The id is the one we asked about: an echoed one could be anything."""
    data = _require_mapping(data, "status")
    if "status" not in data:
        raise BadResponseError("the API's status answer has no 'status' field")
    return JobStatus(
        request_id=request_id,
        status=normalise_status(data.get("status"), secret=secret),
        queue_position=_queue_position(data.get("queue_position")),
    )


def collect_output_urls(output: Any, *, secret: str | None = None) -> tuple[str, ...]:
    """Every http(s) URL under `output`, in order, without duplicates.

    Only `output` is scanned: the record around it also carries `status_url` and friends. A URL
    that holds our token is refused here, before it could be printed, recorded or fetched.
    """
    from .urls import redacted

    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, str):
            if not node.startswith(("http://", "https://")):
                return
            if has_unprintable(node) or " " in node:
                shown = redacted(node, secret)
                raise BadResponseError(f"the API listed an output URL with control characters or spaces ({shown}); refusing it")
            if secret and secret in node:
                raise BadResponseError(
                    f"the API listed an output URL that contains the API token ({redacted(node, secret)}); refusing it"
                )
            if node not in found:
                found.append(node)
        elif isinstance(node, dict):
            for key in ("image", "images", "video", "videos"):
                if key in node:
                    visit(node[key])
            for key, value in node.items():
                if key not in ("image", "images", "video", "videos"):
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(output)
    return tuple(found)


def describe_error(error: Any, *, secret: str | None = None) -> str:
    """The job error, printable and with our token masked (a server may echo it)."""
    return printable(_error_text(error), secret=secret)


def _error_text(error: Any) -> str:
    """The job error is undocumented: a string, an object with a message, or a list of those."""
    if error is None:
        return "no reason given"
    if isinstance(error, str):
        return error.strip() or "no reason given"
    if isinstance(error, list):
        return "; ".join(_error_text(item) for item in error) or "no reason given"
    if isinstance(error, dict):
        message = error.get("message") or error.get("error_message") or error.get("detail")
        code = error.get("type") or error.get("code") or error.get("error_code")
        if message and code:
            return f"{code}: {_error_text(message)}"
        if message or code:
            return _error_text(message or str(code))
    return str(error)


def parse_result(data: Any, request_id: str, *, secret: str | None = None) -> JobResult:
    """`/result`'s answer, every string made printable and the id the one we asked about."""
    data = _require_mapping(data, "result")
    if "status" not in data:
        raise BadResponseError("the API's result answer has no 'status' field")
    status = normalise_status(data.get("status"), secret=secret)
    if status == JobState.COMPLETED:
        # /status's word turning up in /result: decide by what the record holds, or we would poll forever
        status = (JobState.SUCCEEDED if collect_output_urls(data.get("output"), secret=secret)
                  else JobState.FAILED if data.get("error") else status)
    urls = collect_output_urls(data.get("output"), secret=secret) if status == JobState.SUCCEEDED else ()
    if status == JobState.SUCCEEDED and not urls:
        raise BadResponseError("the job succeeded but the API listed no output files")
    return JobResult(
        request_id=request_id,
        status=status,
        output_urls=urls,
        error=describe_error(data.get("error"), secret=secret) if status == JobState.FAILED else None,
        created_at=_optional_text(data.get("created_at"), secret),
        finished_at=_optional_text(data.get("finished_at"), secret),
        cost=_cost(data.get("cost")),
        queue_position=_queue_position(data.get("queue_position")),
    )


def parse_cancel(data: Any, request_id: str, *, secret: str | None = None) -> CancelOutcome:
    data = _require_mapping(data, "cancel")
    outcome = data.get("outcome")
    if not outcome:
        raise BadResponseError("the API's cancel answer has no 'outcome' field")
    status = data.get("status")
    return CancelOutcome(
        request_id=request_id,
        outcome=normalise_status(outcome, secret=secret),
        status=normalise_status(status, secret=secret) if status else None,
    )


class ModelInfo(NamedTuple):
    """A model's catalog entry. Undocumented on the Model API pages, so every field is optional."""

    model_id: str
    display_name: str | None = None
    base_price_usd: float | None = None
    price_unit: str | None = None
    categories: tuple[str, ...] = ()
    input_schema: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**self._asdict(), "categories": list(self.categories)}


def parse_model_info(data: Any, model_id: str, *, secret: str | None = None) -> ModelInfo:
    data = _require_mapping(data, "catalog")
    categories = data.get("categories")
    schema = data.get("input_schema", data.get("schema"))
    return ModelInfo(
        model_id=model_id,
        display_name=_optional_text(data.get("display_name"), secret),
        base_price_usd=parse_amount(data.get("base_price_usd")),
        price_unit=_optional_text(data.get("price_unit"), secret),
        categories=tuple(printable(c, secret=secret, limit=64) for c in categories if isinstance(c, str))
        if isinstance(categories, list) else (),
        input_schema=schema if isinstance(schema, dict) else None,
    )
