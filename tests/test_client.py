"""The HTTP client: status → exception mapping, URL safety, and which failures are retried."""

from __future__ import annotations

import json

import pytest
import requests

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.api.retry import Clock, RetryPolicy, parse_retry_after
from nanobanana_cli.api.urls import Origin, check_asset_url, check_base_url, parse_origin
from nanobanana_cli.errors import (
    APIError,
    AuthError,
    BadResponseError,
    InsufficientCreditError,
    InvalidInputError,
    NotFoundError,
    SubmitUncertainError,
    UnavailableError,
    UsageError,
)

from .conftest import SENTINEL_TOKEN


def response(status: int, body: object = None, *, text: str | None = None, headers: dict | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = (text if text is not None else json.dumps(body)).encode()
    resp._content_consumed = True
    resp.headers.update(headers or {})
    resp.url = "https://model-api.runcomfy.net/v1/x"
    return resp


class ScriptedClient(Client):
    """A client whose transport replays scripted answers (or raises scripted exceptions)."""

    def __init__(self, script: list, **kwargs) -> None:
        super().__init__(SENTINEL_TOKEN, retry=RetryPolicy(retries=kwargs.pop("retries", 2), base=0), **kwargs)
        self.script = list(script)
        self.sent: list[tuple[str, str, dict]] = []
        self.sleeps: list[float] = []
        self.clock = Clock(sleep=self.sleeps.append)
        self.session.request = self._replay  # type: ignore[method-assign]

    def _replay(self, method, url, **kwargs):
        self.sent.append((method, url, kwargs))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (response(401, {"error_code": 400004, "error_message": "bad token"}), AuthError),
        (response(400, {"error_code": 400004, "error_message": "token expired"}), AuthError),
        (response(403, {"error_code": 403001, "error_message": "not yours"}), AuthError),
        (response(404, {"error_code": 404001, "error_message": "gone"}), NotFoundError),
        (response(400, {"error_code": 400002, "error_message": "no balance"}), InsufficientCreditError),
        (response(402, {"detail": "pay up"}), InsufficientCreditError),
        (response(422, {"detail": [{"msg": "prompt too long"}]}), InvalidInputError),
        (response(400, {"error_code": 400001, "message": "bad id"}), InvalidInputError),
        (response(418, text="<html>teapot</html>"), APIError),
        (response(200, {"error_code": 400004, "error_message": "token revoked"}), AuthError),
    ],
)
def test_answers_map_to_typed_errors(answer, error):
    client = ScriptedClient([answer])
    with pytest.raises(error) as caught:
        client.status("abc")
    assert SENTINEL_TOKEN not in str(caught.value)


def test_unreadable_answers_to_polls_are_retried_then_exit_7():
    page = response(200, text="<html>proxy login</html>")
    client = ScriptedClient([page] * 3, retries=2)
    with pytest.raises(BadResponseError) as caught:
        client.status("abc")
    assert len(client.sent) == 3 and caught.value.exit_code == 7
    assert "HTTP 200" in str(caught.value) and "proxy login" in str(caught.value)
    recovered = ScriptedClient([page, response(200, {"status": "in_queue"})])
    assert recovered.status("abc").status == "in_queue"


@pytest.mark.parametrize(
    "answer",
    [response(200, text="<html>proxy</html>"), response(200, {"status": "queued"}), response(200, {"request_id": "../x"})],
)
def test_unreadable_submit_answer_is_never_resent(answer):
    client = ScriptedClient([answer, response(200, {"request_id": "r9"})])
    with pytest.raises(SubmitUncertainError) as caught:
        client.submit(GenerationInput("a fox"))
    assert len(client.sent) == 1 and caught.value.exit_code == 7
    assert "may have been created" in str(caught.value)


def test_error_messages_carry_status_and_a_short_excerpt_never_the_token():
    page = "<html>" + "x" * 500 + SENTINEL_TOKEN + "</html>"
    client = ScriptedClient([response(418, text=page)])
    with pytest.raises(APIError) as caught:
        client.status("abc")
    message = str(caught.value)
    assert "HTTP 418" in message and len(message) < 260 and SENTINEL_TOKEN not in message


def test_submit_uses_returned_urls_only_on_the_api_origin():
    client = ScriptedClient([response(200, {
        "request_id": "r1",
        "status_url": "https://model-api.runcomfy.net/v1/requests/r1/status",
        "result_url": "https://evil.example/v1/requests/r1/result",
    })])
    job = client.submit(GenerationInput("a fox"))
    assert job.status_url == "https://model-api.runcomfy.net/v1/requests/r1/status"
    assert job.result_url == "https://model-api.runcomfy.net/v1/requests/r1/result"
    assert job.cancel_url == "https://model-api.runcomfy.net/v1/requests/r1/cancel"
    method, url, kwargs = client.sent[0]
    assert (method, url) == ("POST", "https://model-api.runcomfy.net/v1/models/google/nano-banana/text-to-image")
    assert kwargs["json"] == {"prompt": "a fox", "aspect_ratio": "16:9", "output_format": "png", "num_images": 1}
    assert kwargs["headers"]["Authorization"] == f"Bearer {SENTINEL_TOKEN}"
    assert kwargs["timeout"] == (5.0, 30.0)


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected"),
        response(502, text="<html>bad gateway</html>"),
        response(500, {"detail": "boom"}),
    ],
)
def test_submit_that_may_have_arrived_is_not_retried(failure):
    client = ScriptedClient([failure, response(200, {"request_id": "r2"})])
    with pytest.raises(SubmitUncertainError, match="may have been created and billed"):  # maybe billed: exit 7, never re-sent
        client.submit(GenerationInput("a fox"))
    assert len(client.sent) == 1


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        response(429, {"detail": "slow down"}, headers={"Retry-After": "3"}),
        response(503, {"detail": "unavailable"}),
    ],
)
def test_submit_is_retried_when_the_server_surely_did_not_take_it(failure):
    notices = []
    client = ScriptedClient([failure, response(200, {"request_id": "r3"})], on_retry=notices.append)
    assert client.submit(GenerationInput("a fox")).request_id == "r3"
    assert len(client.sent) == 2 and len(notices) == 1 and notices[0].what == "submit"


@pytest.mark.parametrize(
    "failure",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        response(429, {"detail": "slow down"}, headers={"Retry-After": "0"}),
        response(503, {"detail": "unavailable"}),
    ],
)
def test_a_submit_surely_refused_beyond_the_retry_budget_is_an_outage_not_an_uncertain_submit(failure):
    client = ScriptedClient([failure] * 3, retries=2)
    with pytest.raises(UnavailableError) as caught:
        client.submit(GenerationInput("a fox"))
    assert not isinstance(caught.value, SubmitUncertainError) and "may have been created" not in str(caught.value)
    assert len(client.sent) == 3


def test_polls_are_retried_on_transient_failures_honouring_retry_after():
    script = [
        requests.exceptions.ReadTimeout("slow"),
        response(502, text="<html>bad gateway</html>"),
        response(429, {}, headers={"Retry-After": "7"}),
        response(200, {"request_id": "r", "status": "in_progress"}),
    ]
    client = ScriptedClient(script, retries=3)
    assert client.status("r").status == "in_progress"
    assert client.sleeps[2] == 7.0 and len(client.sent) == 4


def test_polls_give_up_after_the_retry_budget_with_exit_7():
    client = ScriptedClient([response(503, {})] * 3, retries=2)
    with pytest.raises(UnavailableError):
        client.result("r")
    assert len(client.sent) == 3


def test_retry_after_in_both_forms_and_garbage():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert parse_retry_after("100000") == 60.0


def test_request_ids_are_checked_before_building_a_url():
    client = ScriptedClient([])
    with pytest.raises(InvalidInputError):
        client.status("../models")
    assert client.sent == []


@pytest.mark.parametrize("url", ["http://api.example.com", "ftp://x", "model-api.runcomfy.net"])
def test_base_urls_that_would_leak_the_token_are_refused(url):
    with pytest.raises(UsageError):
        check_base_url(url)


@pytest.mark.parametrize("url", ["https://model-api.runcomfy.net/", "http://127.0.0.1:8765", "http://localhost:1", "http://[::1]:9"])
def test_https_and_loopback_base_urls_are_accepted(url):
    assert check_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", [
    "https://model-api.runcomfy.net/v1/models", "HTTPS://Model-API.RunComfy.net", "http://127.0.0.1:8765/a_b~c",
    "http://\u212aelvin.example/",  # the Kelvin sign: IDNA reads it as a "k"
    "http://\u017ftatic.example/",  # the long s: not a valid IDNA label
    "https://cdn.example:99999/", "https://bücher.example/",
])
def test_an_origin_is_read_as_urllib3_reads_it(url):
    """The quick reading of plain URLs (which spares a dry run the HTTP stack) never disagrees with
    urllib3's, which connects: not even on letters that only match [A-Za-z] when case is folded."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parsed = parse_url(url)
        expected = Origin(parsed.scheme, parsed.host.lower(), parsed.port) if parsed.host else None
    except LocationParseError:
        expected = None
    assert parse_origin(url) == expected


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://cdn.example.com/a.png", "javascript:alert(1)"])
def test_asset_urls_other_than_https_or_loopback_are_refused(url):
    with pytest.raises(APIError, match="only https"):
        check_asset_url(url, "https://model-api.runcomfy.net")
