"""The RunComfy Model API client: one session, explicit timeouts, typed errors, safe retries."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests

from .. import __version__
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
    UsageError,
)
from .models import (
    DEFAULT_BASE_URL,
    MODEL_ID,
    REQUEST_ID_PATTERN,
    CancelOutcome,
    GenerationInput,
    JobResult,
    JobStatus,
    Submission,
    parse_cancel,
    parse_result,
    parse_status,
    validate_request_id,
)
from .retry import RETRYABLE_STATUSES, SUBMIT_RETRYABLE_STATUSES, RetryNotice, RetryPolicy

API_TIMEOUT = (5.0, 30.0)
EXCERPT_LENGTH = 160
USER_AGENT = f"nanobanana-cli/{__version__}"

RetryListener = Callable[[RetryNotice], None]
T = TypeVar("T")


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """The API root, refusing plain http off this machine so a token never travels in clear text."""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"invalid base URL {base_url!r}: expected https://host[:port]",
            hint="e.g. --base-url https://model-api.runcomfy.net",
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise UsageError(
            f"refusing plain http to {parts.hostname}: the API token would travel unencrypted",
            hint="use https://, or http:// only with 127.0.0.1/localhost (the sandbox)",
        )
    return url


def submit_url(base_url: str, model_id: str = MODEL_ID) -> str:
    return f"{check_base_url(base_url)}/v1/models/{model_id}"


def describe_submit(base_url: str, generation: GenerationInput, model_id: str = MODEL_ID) -> dict[str, Any]:
    """The exact submit request, for --dry-run: method, URL, headers (token redacted) and JSON body."""
    return {
        "method": "POST",
        "url": submit_url(base_url, model_id),
        "headers": {"Authorization": "Bearer ***", "Content-Type": "application/json", "User-Agent": USER_AGENT},
        "body": generation.to_payload(),
    }


def curl_command(request: dict[str, Any], token_variable: str = "RUNCOMFY_API_TOKEN") -> str:
    """An equivalent curl command that reads the token from the environment, never inlining it."""
    import shlex

    return " \\\n  ".join([
        f"curl --request {request['method']}",
        f"--url {shlex.quote(request['url'])}",
        '--header "Content-Type: application/json"',
        f'--header "Authorization: Bearer ${token_variable}"',
        f"--data {shlex.quote(json.dumps(request['body']))}",
    ])


def check_asset_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise APIError(f"refusing to download output from {url[:EXCERPT_LENGTH]!r}: only https URLs are fetched")


def _excerpt(text: str, secret: str | None) -> str:
    flat = " ".join(text.split())
    if secret:
        flat = flat.replace(secret, "***")
    return flat[:EXCERPT_LENGTH] + ("…" if len(flat) > EXCERPT_LENGTH else "")


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
        message = "; ".join(
            str(item.get("msg") or item.get("message") or item) if isinstance(item, dict) else str(item)
            for item in message
        )
    elif isinstance(message, dict):
        message = message.get("message") or json.dumps(message)
    return error_code, (str(message) if message else None)


def _connection_never_opened(exc: requests.RequestException) -> bool:
    """True when the request provably never left this machine, so even a submit may be re-sent."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    from urllib3.exceptions import NameResolutionError, NewConnectionError

    reason: Any = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    return isinstance(reason, (NewConnectionError, NameResolutionError))


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
        model_id: str = MODEL_ID,
    ) -> None:
        if not token:
            raise AuthError("no API token given")
        self.base_url = check_base_url(base_url)
        self.model_id = model_id
        self.retry = retry or RetryPolicy()
        self.on_retry = on_retry
        self.timeout = timeout
        self._token = token
        self._debug_log = debug_log
        self._sleep = time.sleep
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # -- URLs -----------------------------------------------------------------------------------

    def _api_url(self, path: str) -> str:
        return f"{self.base_url}/v1/{path}"

    def _request_url(self, request_id: str, action: str) -> str:
        return self._api_url(f"requests/{quote(validate_request_id(request_id), safe='')}/{action}")

    def _same_origin(self, url: Any) -> bool:
        """Only URLs on the API's own origin may receive the token."""
        if not isinstance(url, str):
            return False
        mine, theirs = urlsplit(self.base_url), urlsplit(url)
        return (mine.scheme, mine.netloc.lower()) == (theirs.scheme, theirs.netloc.lower())

    # -- transport ------------------------------------------------------------------------------

    def _log(self, message: str) -> None:
        if self._debug_log:
            self._debug_log(message)

    def _send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        billable: bool = False,
        timeout: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send with retries. A billable request is repeated only when the server surely did not take it."""
        retry_statuses = SUBMIT_RETRYABLE_STATUSES if billable else RETRYABLE_STATUSES
        attempts = self.retry.retries + 1
        for attempt in range(1, attempts + 1):
            retry_after: str | None = None
            started = time.monotonic()
            try:
                response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
            except requests.RequestException as exc:
                self._log(f"{method} {url} -> {type(exc).__name__}")
                safe_to_repeat = not billable or _connection_never_opened(exc)
                if not safe_to_repeat:
                    raise SubmitUncertainError(
                        f"the connection failed after the submit was sent ({type(exc).__name__}); "
                        "a job may have been created and billed, so it was not sent again",
                        hint="check with `nanobanana history` or your RunComfy dashboard before retrying",
                    ) from None
                if attempt == attempts:
                    raise UnavailableError(
                        f"cannot reach {urlsplit(url).netloc} ({type(exc).__name__}) after {attempts} attempts",
                        hint="check your network, or the base URL (--base-url / NANOBANANA_BASE_URL)",
                    ) from None
                reason = type(exc).__name__
            else:
                self._log(f"{method} {url} -> {response.status_code} in {time.monotonic() - started:.3f}s")
                if response.status_code not in retry_statuses or attempt == attempts:
                    return response
                reason = f"HTTP {response.status_code}"
                retry_after = response.headers.get("Retry-After")
                response.close()
            delay = self.retry.delay(attempt, retry_after)
            if self.on_retry:
                self.on_retry(RetryNotice(what=what, reason=reason, attempt=attempt + 1, attempts=attempts, delay=delay))
            self._sleep(delay)
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _call(
        self, method: str, url: str, parse: Callable[[Any], T], *, what: str, billable: bool = False, **kwargs: Any
    ) -> T:
        """Send, decode and parse one API call.

        An unreadable 2xx answer (a proxy's HTML page, truncated JSON, missing fields) is retried
        like a 5xx on idempotent calls; on a submit it means a job may exist, so it is never re-sent.
        """
        attempts = 1 if billable else self.retry.retries + 1
        for attempt in range(1, attempts + 1):
            response = self._send(
                method, url, what=what, billable=billable, headers={"Authorization": f"Bearer {self._token}"}, **kwargs
            )
            try:
                return parse(self._decode(response, what=what))
            except BadResponseError as exc:
                if billable:
                    raise SubmitUncertainError(
                        f"{exc}; a job may have been created, so the submit was not sent again",
                        hint="check with `nanobanana history` or your RunComfy dashboard before retrying",
                    ) from None
                if attempt == attempts:
                    raise
                delay = self.retry.delay(attempt)
                if self.on_retry:
                    self.on_retry(RetryNotice(what=what, reason="unreadable answer", attempt=attempt + 1, attempts=attempts, delay=delay))
                self._sleep(delay)
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _decode(self, response: requests.Response, *, what: str) -> dict[str, Any]:
        text = response.text
        try:
            body: Any = response.json() if text.strip() else None
        except ValueError:
            body = None
        if not 200 <= response.status_code < 300:
            raise self._error_for(response, body, text, what=what)
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
                f"the API rejected the token ({where}): {detail}",
                hint="check the token: --token, RUNCOMFY_API_TOKEN, or `nanobanana auth login`",
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

    def submit(self, generation: GenerationInput) -> Submission:
        """Queue one job. Never re-sent once it may have reached the server: every submit is billed."""
        return self._call(
            "POST", submit_url(self.base_url, self.model_id), self._parse_submission,
            what="submit", billable=True, json=generation.to_payload(),
        )

    def _parse_submission(self, body: dict[str, Any]) -> Submission:
        request_id = body.get("request_id")
        if not isinstance(request_id, str) or not REQUEST_ID_PATTERN.match(request_id):
            raise BadResponseError(f"the submit answer has no usable request id ({str(request_id)[:40]!r})")
        return Submission(
            request_id=request_id,
            status_url=self._endpoint(body.get("status_url"), request_id, "status"),
            result_url=self._endpoint(body.get("result_url"), request_id, "result"),
            cancel_url=self._endpoint(body.get("cancel_url"), request_id, "cancel"),
        )

    def _endpoint(self, returned: Any, request_id: str, action: str) -> str:
        return returned if self._same_origin(returned) else self._request_url(request_id, action)

    def status(self, request_id: str) -> JobStatus:
        return self._call(
            "GET", self._request_url(request_id, "status"), lambda body: parse_status(body, request_id),
            what=f"status of {request_id}",
        )

    def result(self, request_id: str, *, include_cost: bool = False) -> JobResult:
        params = {"include_cost": "true"} if include_cost else None
        return self._call(
            "GET", self._request_url(request_id, "result"), lambda body: parse_result(body, request_id),
            what=f"result of {request_id}", params=params,
        )

    def cancel(self, request_id: str) -> CancelOutcome:
        # Cancelling twice is harmless, so a cancel may be retried like a poll.
        return self._call(
            "POST", self._request_url(request_id, "cancel"), lambda body: parse_cancel(body, request_id),
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

    def open_asset(self, url: str, *, headers: dict[str, str] | None = None, timeout: tuple[float, float] = (5.0, 60.0)) -> requests.Response:
        """Stream one output file. Assets are public: no Authorization header is ever attached."""
        return self._send("GET", check_asset_url(url), what="download", stream=True, headers=headers, timeout=timeout)
