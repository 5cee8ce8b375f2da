"""The sandbox's injectable faults, declared once in FAULT_TABLE.

Each entry names a fault, the endpoints it hits, the moment of the exchange it acts at, its value
type and what it does. `Faults(...)`, `Faults.parse`, value checking and the `--fault` help are
all generated from the table, and the handlers only call `fire(moment, exchange)`: a new fault is
one table entry plus its action function, both in this module.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from .jobs import Asset, Job
    from .server import Sandbox

FaultValue = int | float | str | bool

HTML_502_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
# What a hostile server slips into its strings: retitle the terminal (OSC 0), then clear it.
TERMINAL_ESCAPES = "\x1b]0;pwned\x07\x1b[2J"
STREAM_CHUNK = 64 * 1024


class Endpoint(Enum):
    SUBMIT = "submit"
    STATUS = "status"
    RESULT = "result"
    CANCEL = "cancel"
    CATALOG = "catalog"
    DOWNLOAD = "download"


API = frozenset(Endpoint) - {Endpoint.DOWNLOAD}
POLLS = frozenset({Endpoint.STATUS, Endpoint.RESULT})
JOB_ANSWERS = frozenset({Endpoint.SUBMIT, Endpoint.STATUS, Endpoint.RESULT, Endpoint.CANCEL})
SCOPE_LABELS = {
    API: "API requests",
    POLLS: "status/result polls",
    JOB_ANSWERS: "submit/status/result/cancel answers",
    frozenset({Endpoint.SUBMIT}): "submits",
    frozenset({Endpoint.RESULT}): "result polls",
    frozenset({Endpoint.DOWNLOAD}): "downloads",
}


class Moment(Enum):
    """When, during one request, a fault acts."""

    ARRIVAL = "arrival"  # an API request has arrived; nothing is checked yet
    GATE = "gate"  # the token was accepted; the endpoint has not started its work
    BEFORE_CREATE = "before create"  # a valid-looking submit whose job does not exist yet
    AFTER_CREATE = "after create"  # a submit whose job now exists (and would be billed)
    ANSWER = "answer"  # a poll about to be answered
    BODY = "body"  # a JSON answer built and about to be sent: faults may rewrite or replace it
    DELIVERY = "delivery"  # an output file found: how, or whether, its bytes go out
    SETTING = "setting"  # never fired: a parameter of another fault, or read where it applies


class Kind(Enum):
    """A fault's value type: how it is written after `NAME=` and checked."""

    COUNT = "count"  # fires for the first N matching requests
    NUMBER = "number"  # a size, a depth or a status code
    SECONDS = "seconds"
    TEXT = "text"
    FLAG = "flag"

    @property
    def placeholder(self) -> str:
        return {"count": "N", "number": "N", "seconds": "S", "text": "TEXT", "flag": "1"}[self.value]

    @property
    def zero(self) -> FaultValue:
        zeros: dict[str, FaultValue] = {"count": 0, "number": 0, "seconds": 0.0, "text": "", "flag": False}
        return zeros[self.value]


class Exchange(Protocol):
    """One request being answered, as a fault's action sees it (implemented by the handlers)."""

    endpoint: Endpoint | None
    job: Job | None
    payload: dict[str, Any] | None  # the JSON answer, at Moment.BODY
    asset: Asset | None  # the file being downloaded, at Moment.DELIVERY
    path: str

    @property
    def sandbox(self) -> Sandbox: ...
    def bearer_token(self) -> str: ...
    def answer_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None: ...
    def answer_bytes(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None: ...
    def send_head(self, status: int, length: int, content_type: str, headers: dict[str, str] | None = None) -> None: ...
    def write(self, data: bytes) -> None: ...
    def trickle(self, interval: float) -> None: ...
    def end_connection(self) -> None: ...
    def drop(self) -> None: ...


Action = Callable[[Exchange], bool]  # True when the action answered the request itself


# -- actions: what each fault does (True: the request is answered, nothing else runs) ----------


def _slow(exchange: Exchange) -> bool:
    faults = exchange.sandbox.faults
    if not faults.slow_requests or exchange.sandbox.take_fault("slow_requests"):
        exchange.sandbox.pause(faults.slow_seconds)
    return False


def _trickle(exchange: Exchange) -> bool:
    exchange.trickle(exchange.sandbox.faults.trickle_interval)
    return False


def _rate_limit(exchange: Exchange) -> bool:
    exchange.answer_json(429, {"detail": "rate limit exceeded"}, {"Retry-After": exchange.sandbox.faults.retry_after})
    return True


def _unavailable(exchange: Exchange) -> bool:
    exchange.answer_json(503, {"detail": "service temporarily unavailable"})
    return True


def _drop(exchange: Exchange) -> bool:
    exchange.drop()
    return True


def _bad_gateway(exchange: Exchange) -> bool:
    exchange.answer_bytes(502, HTML_502_PAGE, "text/html")
    return True


def _unknown_status(exchange: Exchange) -> bool:
    assert exchange.job is not None
    exchange.answer_json(200, {"request_id": exchange.job.request_id, "status": "warming_up"})
    return True


def _malformed_json(exchange: Exchange) -> bool:
    exchange.answer_bytes(200, b'{"request_id": "', "application/json")
    return True


def _redirect_result(exchange: Exchange) -> bool:
    # the asset host mirrors /result: a client that follows with its token hands it to another origin
    location = f"{exchange.sandbox.asset_base_url}{exchange.path}"
    exchange.answer_bytes(307, b"", "text/plain", {"Location": location})
    return True


def _huge_json(exchange: Exchange) -> bool:
    """The real answer with a padding string in front, streamed: N MB are never held in memory."""
    rest = json.dumps(exchange.payload).encode()[1:]
    head, tail = b'{"padding": "', b'", ' + rest
    padding = exchange.sandbox.faults.huge_json_mb * 1024 * 1024
    exchange.send_head(200, len(head) + padding + len(tail), "application/json")
    exchange.write(head)
    chunk = b"x" * STREAM_CHUNK
    for _ in range(padding // STREAM_CHUNK):
        exchange.write(chunk)
    exchange.write(chunk[: padding % STREAM_CHUNK] + tail)
    return True


def _deep_json(exchange: Exchange) -> bool:
    depth = exchange.sandbox.faults.deep_json_depth
    nested = b'{"nesting": ' + b"[" * depth + b"]" * depth + b", " + json.dumps(exchange.payload).encode()[1:]
    exchange.answer_bytes(200, nested, "application/json")
    return True


def _poisoned(node: Any) -> Any:
    if isinstance(node, str):
        return node + TERMINAL_ESCAPES
    if isinstance(node, dict):
        return {key: _poisoned(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_poisoned(item) for item in node]
    return node


def _control_chars(exchange: Exchange) -> bool:
    exchange.payload = _poisoned(exchange.payload)
    return False


def _http_asset_urls(exchange: Exchange) -> bool:
    if exchange.job is not None and exchange.payload and "output" in exchange.payload:
        exchange.payload["output"] = exchange.sandbox.job_output(exchange.job, plain_http=True)
    return False


def _output_urls(exchange: Exchange) -> list[list[Any]]:
    """The lists of file URLs in a succeeded /result's `output`, to be rewritten in place."""
    output = (exchange.payload or {}).get("output")
    return [urls for urls in output.values() if isinstance(urls, list)] if isinstance(output, dict) else []


def _extra_outputs(exchange: Exchange) -> bool:
    """More files listed than the job made; the image host serves them too (Sandbox.asset)."""
    if exchange.job is not None:
        made = exchange.job.model.image_spec(exchange.job.input).count
        extra = [exchange.sandbox.asset_url(exchange.job, index) for index in range(made + 1, made + 1 + exchange.sandbox.faults.extra_outputs)]
        for urls in _output_urls(exchange):
            urls.extend(extra)
    return False


def _output_userinfo(exchange: Exchange) -> bool:
    userinfo = exchange.sandbox.faults.output_userinfo.replace("{token}", exchange.bearer_token())
    for urls in _output_urls(exchange):
        for position, url in enumerate(urls):
            if isinstance(url, str):
                parts = urlsplit(url)
                urls[position] = urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))
    return False


def result_fields(text: str) -> dict[str, Any]:
    """`FIELD:JSON[,FIELD:JSON...]` read into {field: value}; JSON as Python reads it, so NaN,
    Infinity and -Infinity (not JSON, but what a careless server writes) are values too."""
    decoder, position = json.JSONDecoder(), 0
    fields: dict[str, Any] = {}
    while True:
        name, colon, _ = text[position:].partition(":")
        if not colon or not name.strip():
            raise ValueError("a field name before ':'")
        position += len(name) + 1
        while text[position:position + 1].isspace():
            position += 1
        try:
            fields[name.strip()], position = decoder.raw_decode(text, position)
        except ValueError:
            raise ValueError(f"a JSON value for {name.strip()}") from None
        while text[position:position + 1].isspace():
            position += 1
        if position == len(text):
            return fields
        if text[position] != ",":
            raise ValueError(f"',' after the value of {name.strip()}")
        position += 1


def _result_field(exchange: Exchange) -> bool:
    if exchange.payload is not None:
        exchange.payload.update(result_fields(exchange.sandbox.faults.result_field))
    return False


def _request_id(exchange: Exchange) -> bool:
    """The submit answer names another id (its URLs too); the job itself keeps its own."""
    if exchange.payload is not None:
        shown = exchange.sandbox.faults.request_id
        exchange.payload.update(request_id=shown, **exchange.sandbox.api_urls(shown))
    return False


def _token_echo(exchange: Exchange) -> bool:
    error = (exchange.payload or {}).get("error")
    if isinstance(error, dict):
        error["message"] = f"{error.get('message')} (request sent with Authorization: Bearer {exchange.bearer_token()})"
    return False


def _not_an_image(exchange: Exchange) -> bool:
    exchange.answer_bytes(200, HTML_502_PAGE, "text/html")
    return True


def _redirect_to_http(exchange: Exchange) -> bool:
    exchange.answer_bytes(302, b"", "text/plain", {"Location": f"{exchange.sandbox.plain_asset_base_url}{exchange.path}"})
    return True


def _truncate(exchange: Exchange) -> bool:
    assert exchange.asset is not None
    data = exchange.asset.data
    exchange.send_head(200, len(data), exchange.asset.content_type)
    exchange.write(data[: len(data) // 2])
    exchange.end_connection()
    return True


def _stall(exchange: Exchange) -> bool:
    assert exchange.asset is not None
    data, half = exchange.asset.data, len(exchange.asset.data) // 2
    exchange.send_head(200, len(data), exchange.asset.content_type)
    exchange.write(data[:half])
    exchange.sandbox.pause(exchange.sandbox.faults.stall_seconds)
    exchange.write(data[half:])
    return True


def _trickle_download(exchange: Exchange) -> bool:
    assert exchange.asset is not None
    exchange.send_head(200, len(exchange.asset.data), exchange.asset.content_type)
    exchange.trickle(exchange.sandbox.faults.trickle_interval)
    exchange.write(exchange.asset.data)
    return True


# -- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultSpec:
    name: str
    kind: Kind
    moment: Moment
    endpoints: frozenset[Endpoint]
    effect: str
    action: Action | None = None
    default: FaultValue | None = None  # None: the kind's zero (off)
    choices: tuple[FaultValue, ...] = ()
    syntax: Callable[[str], object] | None = None  # a TEXT value's reader: raises ValueError for what it cannot read
    syntax_name: str = ""  # what `syntax` reads, for errors

    @property
    def option(self) -> str:
        return self.name.replace("_", "-")

    @property
    def initial(self) -> FaultValue:
        return self.kind.zero if self.default is None else self.default

    def from_text(self, text: str) -> FaultValue:
        """The value of `NAME=text` on the command line."""
        try:
            if self.kind is Kind.FLAG:
                return {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}[
                    text.strip().lower()
                ]
            if self.kind in (Kind.COUNT, Kind.NUMBER):
                return self.checked(int(text))
            if self.kind is Kind.SECONDS:
                return self.checked(float(text))
        except (KeyError, ValueError):
            raise ValueError(f"fault {self.option!r} needs {self.expected}, got {text!r}") from None
        return text

    def checked(self, value: Any) -> FaultValue:
        """`value` if it suits this fault, else ValueError naming what would."""
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        fits = {
            Kind.COUNT: numeric and isinstance(value, int) and value >= 0,
            Kind.NUMBER: numeric and isinstance(value, int) and value >= 0,
            Kind.SECONDS: numeric and math.isfinite(value) and value >= 0,
            Kind.TEXT: isinstance(value, str),
            Kind.FLAG: isinstance(value, bool) or value in (0, 1),
        }[self.kind]
        if not fits or (self.choices and value not in self.choices):
            raise ValueError(f"fault {self.option!r} needs {self.expected}, got {value!r}")
        if self.syntax is not None and value:
            try:
                self.syntax(value)
            except ValueError as exc:
                raise ValueError(f"fault {self.option!r} needs {self.expected} ({exc}), got {value!r}") from None
        return bool(value) if self.kind is Kind.FLAG else value

    @property
    def expected(self) -> str:
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        if self.syntax_name:
            return self.syntax_name
        return {
            Kind.COUNT: "a whole number >= 0", Kind.NUMBER: "a whole number >= 0", Kind.SECONDS: "seconds >= 0",
            Kind.TEXT: "a text", Kind.FLAG: "1 or 0",
        }[self.kind]

    @property
    def summary(self) -> str:
        scope = SCOPE_LABELS.get(self.endpoints, "/".join(sorted(e.value for e in self.endpoints)))
        if self.moment is Moment.SETTING and self.kind is not Kind.FLAG:
            return self.effect + ("" if self.default is None else f" (default {self.default})")
        return f"first N {scope}: {self.effect}" if self.kind is Kind.COUNT else f"{scope}: {self.effect}"


FAULT_TABLE: tuple[FaultSpec, ...] = (
    FaultSpec("slow_seconds", Kind.SECONDS, Moment.ARRIVAL, API, "wait S seconds before answering", _slow),
    FaultSpec("slow_requests", Kind.COUNT, Moment.SETTING, API, "slow only the first N API requests; 0 slows all"),
    FaultSpec("trickle_api", Kind.COUNT, Moment.ARRIVAL, API, "send the whole answer one byte per trickle-interval", _trickle),
    FaultSpec("trickle_interval", Kind.SECONDS, Moment.SETTING, API, "seconds between trickled bytes", default=0.05),
    FaultSpec(
        "bad_token_status", Kind.NUMBER, Moment.SETTING, API,
        "HTTP status for a missing or wrong token, always with error 400004", default=400, choices=(400, 401, 403),
    ),
    FaultSpec("rate_limit", Kind.COUNT, Moment.GATE, API, "429 with a Retry-After header", _rate_limit),
    FaultSpec("retry_after", Kind.TEXT, Moment.SETTING, API, "Retry-After of rate-limit: seconds or an HTTP date", default="1"),
    FaultSpec(
        "submit_unavailable", Kind.COUNT, Moment.BEFORE_CREATE, frozenset({Endpoint.SUBMIT}),
        "503, no job created (safe to retry)", _unavailable,
    ),
    FaultSpec(
        "drop_after_submit", Kind.COUNT, Moment.AFTER_CREATE, frozenset({Endpoint.SUBMIT}),
        "job created, then the connection closes unanswered", _drop,
    ),
    FaultSpec(
        "error_after_submit", Kind.COUNT, Moment.AFTER_CREATE, frozenset({Endpoint.SUBMIT}),
        "job created, then a 502 HTML page", _bad_gateway,
    ),
    FaultSpec("server_error", Kind.COUNT, Moment.ANSWER, POLLS, "502 with an HTML page", _bad_gateway),
    FaultSpec("drop_connection", Kind.COUNT, Moment.ANSWER, POLLS, "connection closed unanswered", _drop),
    FaultSpec("unknown_status", Kind.COUNT, Moment.ANSWER, POLLS, 'an undocumented state ("warming_up")', _unknown_status),
    FaultSpec("malformed_json", Kind.COUNT, Moment.ANSWER, POLLS, "200 with truncated JSON", _malformed_json),
    FaultSpec(
        "redirect_result", Kind.COUNT, Moment.ANSWER, frozenset({Endpoint.RESULT}),
        "307 to the image host, which must not get the token", _redirect_result,
    ),
    FaultSpec(
        "control_chars", Kind.COUNT, Moment.BODY, JOB_ANSWERS,
        "terminal escapes appended to every string (ids, status, error, URLs)", _control_chars,
    ),
    FaultSpec(
        "http_asset_urls", Kind.COUNT, Moment.BODY, frozenset({Endpoint.RESULT}),
        "output URLs on a plain-http image host (with TLS on)", _http_asset_urls,
    ),
    FaultSpec(
        "extra_outputs", Kind.NUMBER, Moment.BODY, frozenset({Endpoint.RESULT}),
        "N more output URLs than images asked for, each served by the image host", _extra_outputs,
    ),
    FaultSpec(
        "output_userinfo", Kind.TEXT, Moment.BODY, frozenset({Endpoint.RESULT}),
        "output URLs carry TEXT@ before the host; {token} in TEXT is the bearer token sent (such as {token}:x)",
        _output_userinfo,
    ),
    FaultSpec(
        "result_field", Kind.TEXT, Moment.BODY, frozenset({Endpoint.RESULT}),
        "FIELD:JSON[,FIELD:JSON...]: each FIELD set to its JSON value as given, NaN and Infinity included "
        "(such as cost:NaN,queue_position:Infinity)",
        _result_field, syntax=result_fields, syntax_name="FIELD:JSON[,FIELD:JSON...]",
    ),
    FaultSpec(
        "request_id", Kind.TEXT, Moment.BODY, frozenset({Endpoint.SUBMIT}),
        "the request id every submit answer names instead of the job's (such as --delete)", _request_id,
    ),
    FaultSpec(
        "token_echo", Kind.FLAG, Moment.BODY, frozenset({Endpoint.RESULT}),
        "a failed job's error text quotes the bearer token sent", _token_echo,
    ),
    FaultSpec("huge_json", Kind.COUNT, Moment.BODY, POLLS, "valid JSON padded to huge-json-mb MB, streamed", _huge_json),
    FaultSpec("huge_json_mb", Kind.NUMBER, Moment.SETTING, POLLS, "size of a huge-json answer in MB", default=64),
    FaultSpec("deep_json", Kind.COUNT, Moment.BODY, POLLS, "valid JSON nested deep-json-depth levels deep", _deep_json),
    FaultSpec("deep_json_depth", Kind.NUMBER, Moment.SETTING, POLLS, "nesting depth of a deep-json answer", default=100_000),
    FaultSpec("fail_jobs", Kind.FLAG, Moment.SETTING, frozenset({Endpoint.SUBMIT}), "every new job ends failed"),
    FaultSpec("not_an_image", Kind.COUNT, Moment.DELIVERY, frozenset({Endpoint.DOWNLOAD}), "200 with an HTML page", _not_an_image),
    FaultSpec(
        "asset_redirect_http", Kind.COUNT, Moment.DELIVERY, frozenset({Endpoint.DOWNLOAD}),
        "302 to the same file over plain http", _redirect_to_http,
    ),
    FaultSpec(
        "truncate_download", Kind.COUNT, Moment.DELIVERY, frozenset({Endpoint.DOWNLOAD}),
        "half the file, then the connection closes", _truncate,
    ),
    FaultSpec(
        "stall_download", Kind.COUNT, Moment.DELIVERY, frozenset({Endpoint.DOWNLOAD}),
        "half the file, a stall of stall-seconds, then the rest", _stall,
    ),
    FaultSpec("stall_seconds", Kind.SECONDS, Moment.SETTING, frozenset({Endpoint.DOWNLOAD}), "length of a stall", default=30.0),
    FaultSpec(
        "trickle_download", Kind.COUNT, Moment.DELIVERY, frozenset({Endpoint.DOWNLOAD}),
        "the file one byte per trickle-interval", _trickle_download,
    ),
)
FAULTS_BY_NAME = {spec.name: spec for spec in FAULT_TABLE}
# Which faults to try, in table order, at each (moment, endpoint): a dict lookup per request.
# Order matters within a moment: at BODY the rewrites come before the answers that replace the body.
_SCHEDULE: dict[tuple[Moment, Endpoint], tuple[FaultSpec, ...]] = {
    (moment, endpoint): tuple(
        spec for spec in FAULT_TABLE if spec.moment is moment and endpoint in spec.endpoints and spec.action
    )
    for moment in Moment
    for endpoint in Endpoint
}


class Faults:
    """The active faults, by the names in FAULT_TABLE: `Faults(rate_limit=2, retry_after="0")`.

    Counted faults apply to the first N matching requests, then stop; unnamed faults are off.
    """

    def __init__(self, **values: FaultValue) -> None:
        unknown = sorted(set(values) - FAULTS_BY_NAME.keys())
        if unknown:
            raise TypeError(f"unknown fault {', '.join(unknown)}; known: {', '.join(FAULTS_BY_NAME)}")
        self._values = {
            spec.name: spec.checked(values[spec.name]) if spec.name in values else spec.initial for spec in FAULT_TABLE
        }

    def __getattr__(self, name: str) -> Any:
        # only reached for names that are not real attributes: the fault values
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Faults) and self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Faults({', '.join(f'{name}={value!r}' for name, value in self.changed().items())})"

    def changed(self) -> dict[str, FaultValue]:
        """The faults set to something other than their default."""
        return {spec.name: self._values[spec.name] for spec in FAULT_TABLE if self._values[spec.name] != spec.initial}

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Faults:
        """Build from `NAME=VALUE` strings such as `rate-limit=2` (dashes or underscores)."""
        values: dict[str, FaultValue] = {}
        for text in specs:
            name, _, value = text.partition("=")
            spec = FAULTS_BY_NAME.get(name.strip().replace("-", "_"))
            if spec is None or not value:
                known = ", ".join(s.option for s in FAULT_TABLE)
                raise ValueError(f"unknown fault {text!r}: use NAME=VALUE with NAME one of {known}")
            values[spec.name] = spec.from_text(value)
        return cls(**values)


def fire(moment: Moment, exchange: Exchange) -> bool:
    """Run the faults due at this moment of this exchange, in table order; True once one answered."""
    if exchange.endpoint is None:
        return False
    sandbox = exchange.sandbox
    for spec in _SCHEDULE[(moment, exchange.endpoint)]:
        if not getattr(sandbox.faults, spec.name):
            continue  # off: the usual case, decided without taking the lock
        if spec.kind is Kind.COUNT and not sandbox.take_fault(spec.name):
            continue
        if spec.action is not None and spec.action(exchange):
            return True
    return False


def fault_help(width: int = 78) -> str:
    """One entry per fault, `NAME=VALUE  what it does`, for `nanobanana sandbox --help`.

    78 columns: with help's 2-space indent the list fits the 80 columns help is formatted for.
    """
    column = 23
    lines = []
    for spec in FAULT_TABLE:
        left = f"{spec.option}={spec.kind.placeholder}".ljust(column - 1)
        lines.append(textwrap.fill(f"{left} {spec.summary}", width=width, subsequent_indent=" " * column, break_on_hyphens=False))
    return "\n".join(lines)
