"""The Model API listener: routing, bearer auth, submit/status/result/cancel and the catalog."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..api.urls import parse_origin
from ..errors import UsageError
from . import answers
from .faults import Endpoint, Moment, fire
from .images import decode_data_uri
from .jobs import Job
from .models import IMAGES_FIELD, SandboxModel
from .transport import SandboxHandler

REQUEST_PATH = re.compile(r"^/v1/requests/(?P<id>[^/]+)/(?P<action>status|result|cancel)$")
MODELS_PATH = "/v1/models"
CATALOG_PAGE_MAX = 500

Query = dict[str, list[str]]


@dataclass(frozen=True)
class Route:
    endpoint: Endpoint
    target: str  # the request id or model id in the path; "" for the model list


def resolve(method: str, path: str) -> Route | None:
    """Which endpoint a request is for; None for a path, or a method on it, that the API lacks."""
    match = REQUEST_PATH.match(path)
    if match:
        endpoint = Endpoint(match["action"])
        wanted = "POST" if endpoint is Endpoint.CANCEL else "GET"
        return Route(endpoint, match["id"]) if method == wanted else None
    if path == MODELS_PATH:
        return Route(Endpoint.CATALOG, "") if method == "GET" else None
    if path.startswith(MODELS_PATH + "/"):
        # one path, two endpoints: GET reads the catalog entry, POST submits a job
        return Route(Endpoint.SUBMIT if method == "POST" else Endpoint.CATALOG, path[len(MODELS_PATH) + 1:])
    return None


def _first(query: Query, name: str, default: str = "") -> str:
    return query.get(name, [default])[0]


class ApiHandler(SandboxHandler):
    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        self.begin()
        self.sandbox.note_api_request()
        body = self.read_body() if method == "POST" else b""
        url = urlsplit(self.path)
        route = resolve(method, url.path)
        self.endpoint = route.endpoint if route else None
        fire(Moment.ARRIVAL, self)
        if not self.sandbox.accepts(self.bearer_token()):
            self._refuse_token()
            return
        if route is None:
            self.answer_json(404, {"detail": "Not Found"})
            return
        if fire(Moment.GATE, self):
            return
        serve = {
            Endpoint.SUBMIT: self._submit, Endpoint.STATUS: self._status, Endpoint.RESULT: self._result,
            Endpoint.CANCEL: self._cancel, Endpoint.CATALOG: self._catalog,
        }[route.endpoint]
        serve(route.target, body, parse_qs(url.query))

    def _refuse_token(self) -> None:
        """RunComfy answers a bad token with HTTP 400 and error 400004; the status is a fault setting."""
        status = self.sandbox.faults.bad_token_status
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        self.answer_json(status, answers.error(400004, "missing, invalid or expired API token"), headers)

    def _answer_payload(self, status: int, payload: dict[str, Any]) -> None:
        self.payload = payload
        if not fire(Moment.BODY, self):
            self.answer_json(status, self.payload)

    def _submit(self, model_id: str, body: bytes, query: Query) -> None:
        model = self.sandbox.models.get(model_id)
        if model is None:
            self.answer_json(400, answers.error(400001, f"unknown model {model_id!r}"))
            return
        if fire(Moment.BEFORE_CREATE, self):
            return
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            self.answer_json(422, {"detail": "body is not valid JSON"})
            return
        problems: list[tuple[Any, str]] = [((name,), message) for name, message in model.problems(payload)]
        inputs: tuple[bytes, ...] = ()
        refusal = None
        if not problems:
            inputs, refusal, problems = self._input_images(model, payload)
        if problems:
            detail = [{"loc": ["body", *where], "msg": message, "type": "value_error"} for where, message in problems]
            self.answer_json(422, {"detail": detail})
            return
        try:
            self.job = self.sandbox.create_job(model, payload, inputs=inputs, refusal=refusal)
        except UsageError as exc:  # a format this sandbox cannot draw: refused before any job exists
            self.answer_json(422, {"detail": f"{exc}: {exc.hint}"})
            return
        if not fire(Moment.AFTER_CREATE, self):
            self._answer_payload(200, answers.submission(self.sandbox, self.job))

    def _input_images(self, model: SandboxModel, payload: dict[str, Any]) -> tuple[tuple[bytes, ...], str | None, list[tuple[Any, str]]]:
        """(decoded inputs, why the job will fail, 422 problems) for a submit's `image_urls`.

        A data URI must hold a PNG, JPEG or WebP (else 422, as a server reading it at submit would
        answer); a URL is read only from this sandbox's own image host. Any other URL fails the job,
        as a real fetch from a host it cannot reach would: the sandbox fetches nothing from the internet.
        """
        from .asset_handler import FILE_PATH

        urls = payload.get(IMAGES_FIELD) if model.takes_images else None
        inputs: list[bytes] = []
        problems: list[tuple[Any, str]] = []
        own_hosts = {parse_origin(self.sandbox.asset_base_url), parse_origin(self.sandbox.plain_asset_base_url)}
        for position, url in enumerate(urls if isinstance(urls, list) else []):
            if not isinstance(url, str):
                problems.append(((IMAGES_FIELD, position), f"{IMAGES_FIELD}: item {position + 1} is not a string"))
                continue
            if url.startswith("data:"):
                data = decode_data_uri(url)
                if data is None:
                    message = f"{IMAGES_FIELD}: item {position + 1} is not a base64 data URI of a PNG, JPEG or WebP image"
                    problems.append(((IMAGES_FIELD, position), message))
                else:
                    inputs.append(data)
                continue
            match = FILE_PATH.match(urlsplit(url).path) if parse_origin(url) in own_hosts else None
            found = self.sandbox.asset(match["id"], int(match["index"])) if match else None
            if found is None:
                shown = url[:100].encode("ascii", "backslashreplace").decode()
                return (), f"cannot fetch {IMAGES_FIELD} item {position + 1} ({shown}): the sandbox reads only data URIs and its own image host", []
            inputs.append(found[1].data)
        return tuple(inputs), None, problems

    def _find(self, request_id: str) -> Job | None:
        """The job, or None after answering 404 (error 404001) for an id never issued."""
        self.job = self.sandbox.find_job(request_id)
        if self.job is None:
            self.answer_json(404, answers.error(404001, f"request {request_id} not found"))
        return self.job

    def _status(self, request_id: str, body: bytes, query: Query) -> None:
        job = self._find(request_id)
        if job is not None and not fire(Moment.ANSWER, self):
            self._answer_payload(200, answers.status(self.sandbox, job, time.monotonic()))

    def _result(self, request_id: str, body: bytes, query: Query) -> None:
        job = self._find(request_id)
        if job is not None and not fire(Moment.ANSWER, self):
            include_cost = _first(query, "include_cost") == "true"
            self._answer_payload(200, answers.result(self.sandbox, job, time.monotonic(), include_cost=include_cost))

    def _cancel(self, request_id: str, body: bytes, query: Query) -> None:
        job = self._find(request_id)
        if job is not None:
            self._answer_payload(202, answers.cancellation(job, self.sandbox.cancel(job)))

    def _catalog(self, model_id: str, body: bytes, query: Query) -> None:
        if not model_id:
            self._model_list(query)
        elif model_id == "categories":
            categories = sorted({category for model in self.sandbox.models.values() for category in model.categories})
            self._answer_payload(200, {"categories": categories})
        elif model_id in self.sandbox.models:
            self._answer_payload(200, self.sandbox.models[model_id].catalog_entry(with_schema=True))
        else:
            self.answer_json(400, answers.error(400001, f"unknown model {model_id!r}"))

    def _model_list(self, query: Query) -> None:
        try:
            limit, offset = int(_first(query, "limit", "100")), int(_first(query, "offset", "0"))
        except ValueError:
            limit, offset = 0, -1
        if not 1 <= limit <= CATALOG_PAGE_MAX or offset < 0:
            self.answer_json(422, {"detail": f"limit must be 1..{CATALOG_PAGE_MAX} and offset 0 or more"})
            return
        found = [
            model for model in self.sandbox.models.values()
            if model.matches(_first(query, "search"), _first(query, "category"), _first(query, "kind"))
        ]
        with_schema = _first(query, "include_schema") == "true"
        page = [model.catalog_entry(with_schema=with_schema) for model in found[offset:offset + limit]]
        self._answer_payload(200, {"models": page, "total": len(found), "limit": limit, "offset": offset})
