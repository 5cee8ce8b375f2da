"""The RunComfy Model API client: one session, explicit timeouts, typed errors, safe retries."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import requests

from ..errors import (
    APIError,
    AuthError,
    BadResponseError,
    InsufficientCreditError,
    InvalidInputError,
    NanobananaError,
    NotFoundError,
    SubmitUncertainError,
    UnavailableError,
)
from .deadline import CallTimedOut, WatchedAdapter, watching
from .described import UNCERTAIN_SUBMIT_HINT, USER_AGENT, submit_url
from .models import (
    DEFAULT_BASE_URL,
    REQUEST_ID_PATTERN,
    CancelOutcome,
    GenerationInput,
    JobResult,
    JobStatus,
    ModelInfo,
    Submission,
    parse_cancel,
    parse_model_info,
    parse_result,
    parse_status,
    printable,
    validate_request_id,
)
from .retry import (
    RETRYABLE_STATUSES,
    SUBMIT_RETRYABLE_STATUSES,
    SYSTEM_CLOCK,
    Clock,
    DeadlineReached,
    Retryable,
    RetryListener,
    RetryPolicy,
    call_with_retries,
)
from .schema import MODEL_ID
from .urls import EXCERPT_LENGTH, check_asset_url, check_base_url, is_loopback_host, same_origin

T = TypeVar("T")


API_TIMEOUT = (5.0, 30.0)
# A whole API exchange, answer read, however the server paces its bytes (the read timeout is per recv).
API_TOTAL_SECONDS = 60.0
# A download with no byte for this long has stalled; its total time is bounded in engine/downloads.
DOWNLOAD_STALL_SECONDS = 30.0
ASSET_TIMEOUT = (5.0, DOWNLOAD_STALL_SECONDS)
# Documented answers are a few hundred bytes; a cap keeps a broken or hostile server from filling memory.
MAX_API_BODY_BYTES = 4 * 1024 * 1024
MAX_REDIRECTS = 5


def _excerpt(text: str, secret: str | None) -> str:
    return printable(" ".join(text.split()), secret=secret, limit=EXCERPT_LENGTH)


def _error_fields(body: Any) -> tuple[int | None, str | None]:
    """(error_code, message) from the several error shapes RunComfy endpoints use."""
    if not isinstance(body, dict):
        return None, None
    code = body.get("error_code", body.get("code"))
    try:
        error_code = int(code) if code is not None and not isinstance(code, bool) else None
    except (TypeError, ValueError):
        error_code = None
    message: Any = None
    for key in ("error_message", "message", "error", "detail"):
        if body.get(key):
            message = body[key]
            break
    if isinstance(message, list):
        message = "; ".join(_detail_item(item) for item in message)
    elif isinstance(message, dict):
        message = message.get("message") or json.dumps(message)
    return error_code, (str(message) if message else None)


def _detail_item(item: Any) -> str:
    """One entry of a 422 `detail` list, its field first: `resolution: value is not a valid enumeration member`."""
    if not isinstance(item, dict):
        return str(item)
    text = str(item.get("msg") or item.get("message") or item)
    loc = item.get("loc")
    field = ".".join(str(part) for part in loc if part != "body") if isinstance(loc, list) else ""
    return f"{field}: {text}" if field and not text.startswith(field) else text


def _connection_never_opened(exc: requests.RequestException) -> bool:
    """True when the request provably never left this machine, so even a submit may be re-sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (NewConnectionError, NameResolutionError))


REJECTED_TOKEN_HINT = "check the token: --token, RUNCOMFY_API_TOKEN, or `nanobanana auth login`"


def _transport_reason(exc: requests.RequestException) -> str:
    """What went wrong with a connection, in words: the exception's class name says little to a user."""
    import socket
    import ssl

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer in time"
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in seen and len(seen) < 10:  # requests -> urllib3 -> the socket's error
        seen.append(cause)
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, socket.gaierror):
            return "host name not found"
        if isinstance(cause, ssl.SSLError):
            return "TLS error"
        reason = getattr(cause, "reason", None)
        cause = reason if isinstance(reason, BaseException) else (cause.__cause__ or cause.__context__)
    return type(exc).__name__


def _read_capped(response: requests.Response, limit: int) -> bytes:
    """The body, refusing to hold more than `limit` bytes of it."""
    received = bytearray()
    for chunk in response.iter_content(64 * 1024):
        received += chunk
        if len(received) > limit:
            response.close()
            raise BadResponseError(f"the API's answer is larger than {limit // (1024 * 1024)} MB; not reading it")
    return bytes(received)


class SubmitJournal(Protocol):
    """Told about every billable submit around its POST, so a lost answer or a crash leaves a trace.

    `submitting` runs before the POST is sent and returns a ticket naming the record it wrote;
    then exactly one of the others runs (none if the process dies first). They must not raise.
    """

    def submitting(self, generation: GenerationInput, base_url: str, intent: dict[str, Any] | None = None) -> str: ...

    def submitted(self, ticket: str, request_id: str) -> None: ...

    def uncertain(self, ticket: str, reason: str) -> None: ...

    def not_sent(self, ticket: str) -> None: ...


def _parse_json(data: bytes) -> Any:
    """Decoded JSON, or None; absurdly deep nesting counts as unreadable rather than crashing."""
    try:
        return json.loads(data) if data.strip() else None
    except (ValueError, RecursionError):
        return None


class _NoJournal:
    """The journal of a client nobody asked to keep one: hears everything, keeps nothing."""

    def submitting(self, generation: GenerationInput, base_url: str, intent: dict[str, Any] | None = None) -> str:
        return ""

    def submitted(self, ticket: str, request_id: str) -> None:
        pass

    def uncertain(self, ticket: str, reason: str) -> None:
        pass

    def not_sent(self, ticket: str) -> None:
        pass


class Client:
    """Synchronous client for google/nano-banana/text-to-image on RunComfy's Model API.

    >>> from nanobanana_cli import Client, GenerationInput
    >>> client = Client(token="...")                               # doctest: +SKIP
    >>> job = client.submit(GenerationInput("a red fox", aspect_ratio="1:1"))  # doctest: +SKIP
    """

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        retry: RetryPolicy | None = None,
        on_retry: RetryListener | None = None,
        debug_log: Callable[[str], None] | None = None,
        timeout: tuple[float, float] = API_TIMEOUT,
        total_timeout: float = API_TOTAL_SECONDS,
        model_id: str = MODEL_ID,
        clock: Clock = SYSTEM_CLOCK,
        max_connections: int = 16,
        journal: SubmitJournal | None = None,
        token_label: str = "the token",
        token_hint: str = REJECTED_TOKEN_HINT,
    ) -> None:
        if not token:
            raise AuthError("no API token given")
        # which token (--token, a variable, the stored one) and its fix, for a rejection: never the token itself
        self.token_label = token_label
        self.token_hint = token_hint
        self.base_url = check_base_url(base_url)
        self.model_id = model_id
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self.timeout = timeout
        self.total_timeout = total_timeout
        self.clock = clock
        self.journal: SubmitJournal = journal or _NoJournal()
        self._token = token
        self._debug_log = debug_log
        self.session = requests.Session()
        # one pooled connection per worker thread, so concurrency never queues on the pool
        adapter = WatchedAdapter(pool_connections=4, pool_maxsize=max(16, max_connections))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def mask(self, text: str) -> str:
        """Server text with our token blotted out: a server may echo it back in an error."""
        return text.replace(self._token, "***")

    # -- URLs -----------------------------------------------------------------------------------

    def _api_url(self, path: str) -> str:
        return f"{self.base_url}/v1/{path}"

    def _request_url(self, request_id: str, action: str) -> str:
        return self._api_url(f"requests/{quote(validate_request_id(request_id), safe='')}/{action}")

    # -- transport ------------------------------------------------------------------------------

    def _log(self, message: str) -> None:
        if self._debug_log:
            self._debug_log(message)

    def _transport_failure(self, exc: requests.RequestException, url: str, *, billable: bool) -> Exception:
        """A broken connection: a submit that may have arrived is uncertain; anything else may be retried."""
        reason = _transport_reason(exc)
        if billable and not _connection_never_opened(exc):
            return SubmitUncertainError(
                f"the connection failed after the submit was sent ({reason}); "
                "a job may have been created and billed, so it was not sent again",
                hint=UNCERTAIN_SUBMIT_HINT,
            )
        host = url.split("/")[2]
        if reason == "connection refused" and is_loopback_host(urlsplit(url).hostname):
            # nothing listens on this machine's port: waiting will not start it, so no retries
            return UnavailableError(
                f"cannot reach {host}: connection refused (nothing is listening there)",
                hint="start the sandbox (`nanobanana sandbox`) or check the base URL (--base-url / NANOBANANA_BASE_URL)",
            )
        final = UnavailableError(
            f"cannot reach {host} ({reason}) after {self.retry.retries + 1} attempts",
            hint="check your network, or the base URL (--base-url / NANOBANANA_BASE_URL)",
        )
        return Retryable(reason, final)

    def _send_once(
        self, method: str, url: str, *, billable: bool, timeout: tuple[float, float] | None = None, **kwargs: Any
    ) -> requests.Response:
        """One request. A failure that may be retried raises `Retryable`; a billable request that
        may have reached the server raises `SubmitUncertainError`, never `Retryable`."""
        started = time.monotonic()
        try:
            response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
        except requests.RequestException as exc:
            self._log(f"{method} {url} -> {type(exc).__name__}")
            raise self._transport_failure(exc, url, billable=billable) from None
        self._log(f"{method} {url} -> {response.status_code} in {time.monotonic() - started:.3f}s")
        return response

    def _attempt_seconds(self, deadline: float | None, *, what: str, billable: bool) -> tuple[float, bool]:
        """How long one attempt may take, and whether the caller's deadline (not our cap) sets it.

        A submit is never cut short by the caller's deadline: that would only turn a job we could
        have learned the id of into an uncertain one.
        """
        if deadline is None or billable:
            return self.total_timeout, False
        remaining = deadline - self.clock.monotonic()
        if remaining <= 0:
            raise DeadlineReached(f"the deadline passed before {what}")
        return (remaining, True) if remaining < self.total_timeout else (self.total_timeout, False)

    def _cut_off(self, exc: CallTimedOut, *, what: str, billable: bool, by_caller: bool) -> Exception:
        """An attempt cut off at its deadline, as the error its caller expects."""
        if billable:
            return SubmitUncertainError(
                f"{what}: {exc}; a job may have been created and billed, so it was not sent again",
                hint=UNCERTAIN_SUBMIT_HINT,
            )
        if by_caller:
            return DeadlineReached(str(exc))
        final = UnavailableError(
            f"{what}: {exc}, {self.retry.retries + 1} times", hint="the API is answering too slowly; try again later"
        )
        return Retryable(str(exc), final)

    def _call(
        self,
        method: str,
        url: str,
        parse: Callable[[Any], T],
        *,
        what: str,
        billable: bool = False,
        deadline: float | None = None,
        on_answer: Callable[[float], None] | None = None,
        **kwargs: Any,
    ) -> T:
        """Send, decode and parse one API call, retrying what may be retried.

        An unreadable 2xx answer (a proxy's HTML page, truncated JSON, missing fields) is retried
        like a 5xx on idempotent calls; on a submit it means a job may exist, so it is never re-sent.
        Each attempt, answer included, is over by `total_timeout` or the caller's `deadline`.
        """
        retry_statuses = SUBMIT_RETRYABLE_STATUSES if billable else RETRYABLE_STATUSES
        headers = {**kwargs.pop("headers", {}), "Authorization": f"Bearer {self._token}"}

        def exchange() -> T:
            body: Any = kwargs.get("data")
            if hasattr(body, "seek"):
                body.seek(0)  # a streamed body (engine/image_inputs.JsonBody) is sent whole by every attempt
            response = self._send_once(method, url, billable=billable, headers=headers, stream=True, **kwargs)
            if on_answer is not None:
                on_answer(self.clock.monotonic())
            with response:
                try:
                    if response.status_code in retry_statuses:
                        final = self._error_for(response, *self._body(response), what=what)
                        raise Retryable(f"HTTP {response.status_code}", final, response.headers.get("Retry-After"))
                    return parse(self._decode(response, what=what, billable=billable))
                except requests.RequestException as exc:  # the answer broke off mid-body
                    raise self._transport_failure(exc, url, billable=billable) from None
                except BadResponseError as exc:
                    if billable:
                        raise SubmitUncertainError(
                            f"{exc}; a job may have been created, so the submit was not sent again",
                            hint=UNCERTAIN_SUBMIT_HINT,
                        ) from None
                    raise Retryable("unreadable answer", exc) from None

        def attempt() -> T:
            seconds, by_caller = self._attempt_seconds(deadline, what=what, billable=billable)
            try:
                with watching(seconds):
                    return exchange()
            except CallTimedOut as exc:
                raise self._cut_off(exc, what=what, billable=billable, by_caller=by_caller) from None

        return call_with_retries(
            attempt, what=what, policy=self.retry, clock=self.clock, on_retry=self.on_retry, deadline=deadline
        )

    def _body(self, response: requests.Response) -> tuple[Any, str]:
        """(decoded JSON or None, text) of an answer, read within the size cap."""
        raw = _read_capped(response, MAX_API_BODY_BYTES)
        return _parse_json(raw), raw.decode("utf-8", "replace")

    def _decode(self, response: requests.Response, *, what: str, billable: bool = False) -> dict[str, Any]:
        body, text = self._body(response)
        if not 200 <= response.status_code < 300:
            error = self._error_for(response, body, text, what=what)
            if billable and response.status_code >= 500:
                raise SubmitUncertainError(
                    f"{error}; the job may have been created and billed, so it was not sent again",
                    hint=UNCERTAIN_SUBMIT_HINT,
                )
            raise error
        error_code, _ = _error_fields(body)
        if error_code is not None and not (isinstance(body, dict) and "status" in body):
            raise self._error_for(response, body, text, what=what)
        if not isinstance(body, dict):
            raise BadResponseError(
                f"HTTP {response.status_code} from {what} is not a JSON object: {_excerpt(text, self._token)!r}",
                status_code=response.status_code,
            )
        return body

    def _error_for(self, response: requests.Response, body: Any, text: str, *, what: str) -> NanobananaError:
        """The one place an HTTP status or RunComfy error code becomes an exception class."""
        status = response.status_code
        error_code, message = _error_fields(body)
        detail = _excerpt(message or text or response.reason or "", self._token) or "no details"
        where = f"HTTP {status}" + (f", error {error_code}" if error_code else "")
        if error_code == 400004 or status == 401:
            return AuthError(
                f"the API at {self.base_url} rejected {self.token_label} ({where}): {detail}",
                hint=self.token_hint,
            )
        if error_code == 403001 or status == 403:
            return AuthError(f"permission denied ({where}): {detail}", hint="use the token of the account that made the job")
        if error_code == 404001 or (status == 404 and what != "submit"):
            return NotFoundError(
                f"{what}: unknown or expired request id ({where})",
                hint="list recent jobs with `nanobanana history`",
            )
        if error_code == 400002 or status == 402:
            return InsufficientCreditError(
                f"out of credit ({where}): {detail}", status_code=status, error_code=error_code,
                hint="top up your RunComfy balance",
            )
        if error_code == 400001 or status in (400, 422):
            return InvalidInputError(f"the API refused the request ({where}): {detail}")
        if status == 429 or status >= 500:
            return UnavailableError(f"the API is unavailable ({where}): {detail}", hint="try again in a minute")
        return APIError(f"{what} failed ({where}): {detail}", status_code=status, error_code=error_code)

    # -- API ------------------------------------------------------------------------------------

    def submit(
        self, generation: GenerationInput, intent: dict[str, Any] | None = None, *,
        on_answer: Callable[[float], None] | None = None,
    ) -> Submission:
        """Queue one job. Never re-sent once it may have reached the server: every submit is billed.

        The journal hears of the submit, with the caller's `intent` for the job (where its images
        go), before the POST goes out, then of how it ended. `on_answer` hears the client clock's
        moment each attempt's answer arrived (its head, before its body is read and the journal
        written): the job was created before it.
        """
        # a request with local images streams its body (engine/image_inputs.JsonBody), with a Content-Length
        wire = generation.wire
        sent: dict[str, Any] = {"data": wire, "headers": dict(wire.headers)} if wire is not None else {"json": generation.to_body()}
        ticket = self.journal.submitting(generation, self.base_url, intent)
        try:
            submission = self._call(
                "POST", submit_url(self.base_url, generation.model), self._parse_submission,
                what="submit", billable=True, on_answer=on_answer, **sent,
            )
        except SubmitUncertainError as exc:
            self.journal.uncertain(ticket, str(exc))
            raise
        except NanobananaError:
            self.journal.not_sent(ticket)  # refused, or it never left this machine: nothing was billed
            raise
        except BaseException:
            self.journal.uncertain(ticket, "interrupted while the submit was in flight")
            raise
        self.journal.submitted(ticket, submission.request_id)
        return submission

    def _parse_submission(self, body: dict[str, Any]) -> Submission:
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not REQUEST_ID_PATTERN.match(request_id):
            shown = printable(str(request_id), secret=self._token, limit=40)
            raise BadResponseError(f"the submit answer has no usable request id ('{shown}')")
        return Submission(
            request_id=request_id,
            status_url=self._endpoint(body.get("status_url"), request_id, "status"),
            result_url=self._endpoint(body.get("result_url"), request_id, "result"),
            cancel_url=self._endpoint(body.get("cancel_url"), request_id, "cancel"),
        )

    def _endpoint(self, returned: Any, request_id: str, action: str) -> str:
        return returned if same_origin(returned, self.base_url) else self._request_url(request_id, action)

    def status(self, request_id: str, *, deadline: float | None = None) -> JobStatus:
        return self._call(
            "GET", self._request_url(request_id, "status"), lambda body: parse_status(body, request_id, secret=self._token),
            what=f"status of {request_id}", deadline=deadline,
        )

    def result(self, request_id: str, *, include_cost: bool = False, deadline: float | None = None) -> JobResult:
        params = {"include_cost": "true"} if include_cost else None
        return self._call(
            "GET", self._request_url(request_id, "result"), lambda body: parse_result(body, request_id, secret=self._token),
            what=f"result of {request_id}", params=params, deadline=deadline,
        )

    def model_info(self, model_id: str | None = None) -> ModelInfo:
        """The catalog entry of a model (default: this client's): name, price and input schema (RunComfy's CLI reads it)."""
        model_id = model_id or self.model_id
        return self._call(
            "GET", self._api_url(f"models/{model_id}"), lambda body: parse_model_info(body, model_id, secret=self._token),
            what=f"catalog entry of {model_id}",
        )

    def cancel(self, request_id: str) -> CancelOutcome:
        # Cancelling twice is harmless, so a cancel may be retried like a poll.
        return self._call(
            "POST", self._request_url(request_id, "cancel"), lambda body: parse_cancel(body, request_id, secret=self._token),
            what=f"cancel of {request_id}",
        )

    def verify_token(self) -> bool:
        """One cheap authenticated request: the status of a made-up id.

        "Unknown id" (404) proves the token was accepted; a 401/403 or error 400004 proves it was not.
        Network and server failures propagate: they say nothing about the token.
        """
        try:
            self.status("nanobanana-token-check")
        except AuthError:
            return False
        except NotFoundError:
            return True
        return True

    def open_asset(self, url: str) -> requests.Response:
        """Open one output file for streaming, following redirects by hand so every hop is checked.

        Assets are public: no Authorization header is ever attached. A failure another attempt
        may fix raises `Retryable`.
        """
        for _ in range(MAX_REDIRECTS + 1):
            check_asset_url(url, self.base_url, secret=self._token)
            response = self._send_once("GET", url, billable=False, stream=True, timeout=ASSET_TIMEOUT, allow_redirects=False)
            if not response.is_redirect:
                return response
            location = response.headers.get("Location", "")
            response.close()
            url = requests.compat.urljoin(url, location)
        raise APIError(f"download: more than {MAX_REDIRECTS} redirects")
