"""The sandbox itself, through real HTTP on 127.0.0.1: fidelity to runcomfy-api.md, every fault,
the catalog, TLS, the public job API, and PNG drawing without Pillow.

tests/tls/sandbox-cert.pem and sandbox-key.pem (conftest's CERT and KEY) are a self-signed pair for 127.0.0.1 and
localhost, made once with:

    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 36500 \\
      -keyout sandbox-key.pem -out sandbox-cert.pem -subj "/CN=nanobanana sandbox" \\
      -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "basicConstraints=critical,CA:TRUE" \\
      -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign" -addext "extendedKeyUsage=serverAuth"

A client trusts it with REQUESTS_CA_BUNDLE=tests/tls/sandbox-cert.pem (requests) or an
ssl context loading it (urllib, http.client).
"""

from __future__ import annotations

import io
import json
import math
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from nanobanana_cli.api.schema import MODEL_ID, TEXT_TO_IMAGE
from nanobanana_cli.errors import UsageError
from nanobanana_cli.sandbox import FAULT_TABLE, Faults, Sandbox, fault_help
from nanobanana_cli.sandbox.faults import TERMINAL_ESCAPES, Moment
from nanobanana_cli.sandbox.images import draw_png, ensure_can_render
from nanobanana_cli.sandbox.jobs import IN_PROGRESS, IN_QUEUE, Job, JobQueue
from nanobanana_cli.sandbox.models import MODELS

from .conftest import CERT, HELD, KEY, SENTINEL_TOKEN, WAIT_LIMIT, wait_until

SUBMIT_PATH = f"/v1/models/{MODEL_ID}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INSTALL_HINT = "pip install 'nanobanana-cli[sandbox]'"


def call(sandbox: Sandbox, method: str, path: str, *, token: str | None = SENTINEL_TOKEN, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.request(method, sandbox.base_url + path, headers=headers, timeout=10, **kwargs)


def submit(sandbox: Sandbox, prompt: str = "a fox", **fields) -> str:
    answer = call(sandbox, "POST", SUBMIT_PATH, json={"prompt": prompt, **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()["request_id"]


def result(sandbox: Sandbox, request_id: str, query: str = "") -> dict:
    answer = call(sandbox, "GET", f"/v1/requests/{request_id}/result{query}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def raw_pieces(base_url: str, path: str, pieces: int) -> list[bytes]:
    """What arrives, recv by recv, for a GET: shows whether an answer is trickled."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as connection:
        request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {SENTINEL_TOKEN}\r\n\r\n"
        connection.sendall(request.encode())
        return [connection.recv(65536) for _ in range(pieces)]


def png_chunks(data: bytes) -> dict[bytes, bytes]:
    """A PNG's chunks by type, each CRC checked."""
    assert data[:8] == PNG_SIGNATURE
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, payload = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + payload), f"bad CRC in {kind!r}"
        chunks[kind] = chunks.get(kind, b"") + payload
        offset += 12 + length
    return chunks


@pytest.fixture
def no_pillow(monkeypatch):
    """As if Pillow were not installed: `import PIL` fails."""
    monkeypatch.setitem(sys.modules, "PIL", None)


# -- fidelity: auth, ids, /result, cancel ---------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_a_missing_or_wrong_token_answers_400_with_error_400004(sandbox, token):
    answer = call(sandbox, "GET", "/v1/requests/x/status", token=token)
    assert answer.status_code == 400
    assert answer.json()["error_code"] == 400004


def test_a_non_bearer_authorization_is_refused(sandbox):
    answer = requests.get(f"{sandbox.base_url}/v1/models", headers={"Authorization": f"Basic {SENTINEL_TOKEN}"}, timeout=10)
    assert answer.status_code == 400 and answer.json()["error_code"] == 400004


def test_bad_token_status_fault_answers_401_for_servers_that_do(start_sandbox):
    sandbox = start_sandbox(faults=Faults(bad_token_status=401))
    answer = call(sandbox, "GET", "/v1/models", token="wrong")
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.json()["error_code"] == 400004


def test_request_ids_are_uuid4_strings(sandbox):
    request_id = submit(sandbox)
    assert str(uuid.UUID(request_id)) == request_id and uuid.UUID(request_id).version == 4


def test_result_carries_created_at_and_model_id_in_every_state(start_sandbox):
    sandbox = start_sandbox(queue_seconds=HELD)
    queued = result(sandbox, submit(sandbox))
    assert queued["status"] == "in_queue" and queued["model_id"] == MODEL_ID and queued["created_at"].endswith("Z")
    assert "finished_at" not in queued and "output" not in queued
    assert call(sandbox, "POST", f"/v1/requests/{queued['request_id']}/cancel").json()["outcome"] == "cancelled"
    cancelled = result(sandbox, queued["request_id"])
    assert cancelled["status"] == "cancelled" and cancelled["created_at"] == queued["created_at"] and cancelled["finished_at"]
    sandbox.queue_seconds = 0
    done = result(sandbox, submit(sandbox, num_images=2), "?include_cost=true")
    assert done["status"] == "succeeded" and done["model_id"] == MODEL_ID and done["created_at"] <= done["finished_at"]
    assert len(done["output"]["images"]) == 2 and done["cost"] == pytest.approx(0.078)
    assert "cost" not in result(sandbox, done["request_id"])


def test_status_says_completed_for_failed_jobs_and_result_says_failed(sandbox):
    request_id = submit(sandbox, "a fox sandbox:fail")
    assert call(sandbox, "GET", f"/v1/requests/{request_id}/status").json()["status"] == "completed"
    failed = result(sandbox, request_id)
    assert failed["status"] == "failed" and "could not render" in failed["error"]["message"] and "output" not in failed


def test_cancel_answers_202_with_an_outcome(start_sandbox):
    sandbox = start_sandbox(queue_seconds=HELD)
    queued = submit(sandbox)
    answer = call(sandbox, "POST", f"/v1/requests/{queued}/cancel")
    assert answer.status_code == 202 and answer.json() == {"request_id": queued, "status": "completed", "outcome": "cancelled"}
    sandbox.queue_seconds = 0
    sandbox.run_seconds = HELD
    running = submit(sandbox)
    answer = call(sandbox, "POST", f"/v1/requests/{running}/cancel")
    assert answer.status_code == 202 and answer.json()["outcome"] == "not_cancellable"
    assert sandbox.job(queued).cancelled and not sandbox.job(running).cancelled


def test_queue_positions_follow_cancels(start_sandbox):
    sandbox = start_sandbox(queue_seconds=HELD)
    ids = [submit(sandbox) for _ in range(3)]
    positions = [call(sandbox, "GET", f"/v1/requests/{i}/status").json()["queue_position"] for i in ids]
    assert positions == [1, 2, 3]
    call(sandbox, "POST", f"/v1/requests/{ids[0]}/cancel")
    assert call(sandbox, "GET", f"/v1/requests/{ids[2]}/status").json()["queue_position"] == 2
    assert [view.queue_position for view in sandbox.jobs()] == [None, 1, 2]


def test_unknown_ids_paths_and_models(sandbox):
    missing = call(sandbox, "GET", f"/v1/requests/{uuid.uuid4()}/result")
    assert missing.status_code == 404 and missing.json()["error_code"] == 404001
    assert call(sandbox, "GET", "/v1/nothing").status_code == 404
    assert call(sandbox, "GET", "/v1/requests/x/cancel").status_code == 404  # cancel is a POST
    for method in ("GET", "POST"):
        wrong = call(sandbox, method, "/v1/models/google/nano-banana/nope", json={"prompt": "x"})
        assert wrong.status_code == 400 and wrong.json()["error_code"] == 400001


def test_invalid_input_answers_422_with_the_schemas_problems(sandbox):
    answer = call(sandbox, "POST", SUBMIT_PATH, json={"prompt": "x", "num_images": 9, "aspect_ratio": "1:7"})
    assert answer.status_code == 422
    fields = {item["loc"][-1] for item in answer.json()["detail"]}
    assert fields == {"num_images", "aspect_ratio"}
    assert sandbox.stats.submits == 0


# -- the catalog ------------------------------------------------------------------------------------


def test_catalog_entry_publishes_the_schema_of_api_schema_py(sandbox):
    entry = call(sandbox, "GET", SUBMIT_PATH).json()
    assert entry["model_id"] == MODEL_ID and entry["display_name"] and entry["categories"] == ["text-to-image"]
    assert entry["base_price_usd"] == 0.039 and entry["price_unit"] == "output"
    schema = entry["input_schema"]
    assert schema["required"] == ["prompt"]
    for field in TEXT_TO_IMAGE.fields:
        prop = schema["properties"][field.name]
        assert prop.get("enum", []) == list(field.choices)
        assert prop.get("maxLength") == field.max_length
        assert prop.get("default") == field.default


def test_catalog_list_searches_pages_and_validates(sandbox):
    listing = call(sandbox, "GET", "/v1/models", params={"search": "NANO-banana/Text", "limit": 10}).json()
    assert listing["total"] == 1 and listing["limit"] == 10 and listing["offset"] == 0
    assert listing["models"][0]["model_id"] == MODEL_ID and "input_schema" not in listing["models"][0]
    with_schema = call(sandbox, "GET", "/v1/models", params={"category": "text-to-image", "include_schema": "true"}).json()
    assert "input_schema" in with_schema["models"][0]
    assert call(sandbox, "GET", "/v1/models", params={"search": "kontext"}).json() == {"models": [], "total": 0, "limit": 100, "offset": 0}
    assert call(sandbox, "GET", "/v1/models", params={"offset": 8}).json()["models"] == []
    assert call(sandbox, "GET", "/v1/models", params={"limit": 501}).status_code == 422
    assert call(sandbox, "GET", "/v1/models/categories").json() == {"categories": ["image-to-image", "text-to-image"]}


# -- the public job API -------------------------------------------------------------------------------


def test_jobs_and_job_give_public_views_in_submit_order(start_sandbox):
    sandbox = start_sandbox(queue_seconds=30)
    first, second = submit(sandbox, "one"), submit(sandbox, "two", num_images=3)
    views = sandbox.jobs()
    assert [view.request_id for view in views] == [first, second]
    view = sandbox.job(second)
    assert view.input == {"prompt": "two", "aspect_ratio": "16:9", "output_format": "png", "num_images": 3}
    assert view.state == "in_queue" and view.queue_position == 2 and view.model_id == MODEL_ID
    assert not view.cancelled and view.finished_at == pytest.approx(view.created_at + 30 + 0)
    assert sandbox.job("no-such-id") is None


def test_durations_are_fixed_at_submit_and_a_hook_can_vary_them_per_job(start_sandbox):
    sandbox = start_sandbox(queue_seconds=HELD)
    slow = submit(sandbox)
    sandbox.queue_seconds = 0
    fast = submit(sandbox)
    assert sandbox.job(slow).state == "in_queue" and sandbox.job(fast).state == "succeeded"
    sandbox.durations = lambda job_input: (0.0, HELD) if "long" in job_input["prompt"] else (HELD, 0.0)
    long_run, short = submit(sandbox, "a long one"), submit(sandbox, "short")
    assert (sandbox.job(long_run).queue_seconds, sandbox.job(long_run).run_seconds) == (0.0, HELD)
    assert sandbox.job(long_run).state == "in_progress" and sandbox.job(short).state == "in_queue"


def test_a_held_job_moves_on_only_when_the_test_moves_it(start_sandbox):
    sandbox = start_sandbox(queue_seconds=math.inf)
    first, second, doomed = submit(sandbox, "one"), submit(sandbox, "two"), submit(sandbox, "a fox sandbox:fail")
    assert result(sandbox, first)["status"] == "in_queue" and "finished_at" not in result(sandbox, first)
    assert sandbox.start_job(first) and not sandbox.start_job(first)
    assert result(sandbox, first)["status"] == "in_progress"
    assert sandbox.job(second).queue_position == 1  # the started job left the queue
    assert sandbox.finish_job(first) and not sandbox.finish_job(first) and not sandbox.start_job(first)
    done = result(sandbox, first)
    assert done["status"] == "succeeded" and done["finished_at"] >= done["created_at"]
    assert requests.get(done["output"]["images"][0], timeout=10).content[:8] == PNG_SIGNATURE
    assert sandbox.finish_job(second) and result(sandbox, second)["status"] == "succeeded"  # straight from the queue
    assert sandbox.finish_job(doomed) and result(sandbox, doomed)["status"] == "failed"  # the outcome fixed at submit
    assert sandbox.stats.peak_in_flight == 3 and [job.state for job in sandbox.jobs()] == ["succeeded", "succeeded", "failed"]


def test_queue_bookkeeping_matches_a_full_scan_under_random_timetables():
    """Timetables fixed at submit, endless ones (held), and held jobs moved on by hand, mixed."""
    model = MODELS[MODEL_ID]
    rng = random.Random(7)
    jobs: list[Job] = []
    queue = JobQueue()
    now = 0.0
    for _ in range(400):
        now += rng.random() * 0.5
        action = rng.random()
        if action < 0.5 or not jobs:
            queue_seconds, run_seconds = (rng.choice([rng.random() * 5, math.inf]) for _ in range(2))
            job = Job(f"j{len(jobs)}", model, {"prompt": "x"}, False, queue_seconds, run_seconds, created=now)
            queue.add(job, now)
            jobs.append(job)
        elif action < 0.65:
            target = rng.choice(jobs)
            assert queue.cancel(target, now) == (target.state(now) == "cancelled" and target.cancelled_at == now)
        elif action < 0.8:
            target = rng.choice(jobs)
            was = target.state(now)
            assert queue.start(target, now) == (was == IN_QUEUE)
            assert target.state(now) == (IN_PROGRESS if was == IN_QUEUE else was)
        else:
            target = rng.choice(jobs)
            was = target.state(now)
            assert queue.finish(target, now) == (was in (IN_QUEUE, IN_PROGRESS))
            assert target.state(now) == ("succeeded" if was in (IN_QUEUE, IN_PROGRESS) else was)
        queued = [job for job in jobs if job.state(now) == IN_QUEUE]
        for job in jobs:
            expected = 1 + sum(other.sequence < job.sequence for other in queued) if job in queued else None
            assert queue.position(job, now) == expected
        assert queue.in_flight == sum(job.state(now) in (IN_QUEUE, IN_PROGRESS) for job in jobs)


# -- faults through real HTTP -------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "status"), [("error_after_submit", 502), ("drop_after_submit", None)])
def test_answers_lost_after_the_job_was_created(start_sandbox, fault, status):
    sandbox = start_sandbox(faults=Faults(**{fault: 1}))
    if status is None:
        with pytest.raises(requests.ConnectionError):
            call(sandbox, "POST", SUBMIT_PATH, json={"prompt": "a fox"})
    else:
        answer = call(sandbox, "POST", SUBMIT_PATH, json={"prompt": "a fox"})
        assert answer.status_code == status and answer.headers["Content-Type"] == "text/html"
    assert sandbox.stats.submits == 1 and len(sandbox.jobs()) == 1
    submit(sandbox)  # the budget is spent: the next submit is answered
    assert len(sandbox.jobs()) == 2


def test_an_hour_long_retry_after(start_sandbox):
    sandbox = start_sandbox(faults=Faults(rate_limit=1, retry_after="3600"))
    limited = call(sandbox, "POST", SUBMIT_PATH, json={"prompt": "a fox"})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3600"
    assert sandbox.stats.submits == 0
    submit(sandbox)


def test_trickled_api_answers_arrive_one_byte_at_a_time(start_sandbox):
    sandbox = start_sandbox(faults=Faults(trickle_api=1, trickle_interval=0.03))
    pieces = raw_pieces(sandbox.base_url, "/v1/models", 4)
    assert pieces == [b"H", b"T", b"T", b"P"]


def test_trickled_downloads_send_headers_then_one_byte_at_a_time(sandbox):
    url = result(sandbox, submit(sandbox))["output"]["images"][0]
    sandbox.inject(Faults(trickle_download=1, trickle_interval=0.03))
    pieces = raw_pieces(sandbox.asset_base_url, urlsplit(url).path, 4)
    head, _, first = pieces[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and len(first) <= 1
    assert [len(piece) for piece in pieces[1:]] == [1, 1, 1]


def test_huge_json_is_valid_and_streamed_without_being_held_in_memory(sandbox):
    request_id = submit(sandbox)
    sandbox.inject(Faults(huge_json=2, huge_json_mb=2))
    body = call(sandbox, "GET", f"/v1/requests/{request_id}/status").content
    assert len(body) > 2 * 1024 * 1024 and json.loads(body)["status"] == "completed"
    sandbox.inject(Faults(huge_json=1, huge_json_mb=24))
    tracemalloc.start()
    try:
        with call(sandbox, "GET", f"/v1/requests/{request_id}/result", stream=True) as answer:
            received = sum(len(chunk) for chunk in answer.iter_content(64 * 1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == int(answer.headers["Content-Length"]) > 24 * 1024 * 1024
    assert peak < 4 * 1024 * 1024, f"{peak} bytes held to serve a 24 MB answer"


def test_deep_json_nests_past_what_a_recursive_parser_survives(sandbox):
    request_id = submit(sandbox)
    sandbox.inject(Faults(deep_json=1))
    body = call(sandbox, "GET", f"/v1/requests/{request_id}/status").content
    assert body.startswith(b'{"nesting": [[[') and body.count(b"[") == 100_000
    with pytest.raises(RecursionError):
        json.loads(body)
    assert result(sandbox, request_id)["status"] == "succeeded"  # one answer only


def test_control_characters_in_every_server_string(sandbox):
    good, bad = submit(sandbox), submit(sandbox, "a fox sandbox:fail")
    sandbox.inject(Faults(control_chars=3))
    status = call(sandbox, "GET", f"/v1/requests/{good}/status").json()
    assert status["status"] == "completed" + TERMINAL_ESCAPES and status["request_id"] == good + TERMINAL_ESCAPES
    assert all(url.endswith(TERMINAL_ESCAPES) for url in result(sandbox, good)["output"]["images"])
    failed = result(sandbox, bad)
    assert failed["error"]["message"].endswith(TERMINAL_ESCAPES) and failed["status"] == "failed" + TERMINAL_ESCAPES
    assert "\x1b" not in json.dumps(result(sandbox, good), ensure_ascii=False)  # the budget is spent
    sandbox.inject(Faults(control_chars=1))
    answer = call(sandbox, "POST", SUBMIT_PATH, json={"prompt": "a fox"}).json()
    assert answer["request_id"] == sandbox.jobs()[-1].request_id + "\x1b]0;pwned\x07\x1b[2J"


def test_token_echo_puts_the_sent_token_in_the_job_error(start_sandbox):
    sandbox = start_sandbox(faults=Faults(token_echo=True))
    request_id = submit(sandbox, "a fox sandbox:fail")
    assert f"Bearer {SENTINEL_TOKEN}" in result(sandbox, request_id)["error"]["message"]


def test_stalled_download_times_out_a_reader_then_completes_for_a_patient_one(sandbox):
    url = result(sandbox, submit(sandbox))["output"]["images"][0]
    whole = requests.get(url, timeout=10).content
    sandbox.inject(Faults(stall_download=2, stall_seconds=0.4))
    with pytest.raises(requests.ConnectionError):  # requests reports a read timeout mid-body this way
        _ = requests.get(url, timeout=(5, 0.1)).content
    started = time.monotonic()
    assert requests.get(url, timeout=10).content == whole
    assert time.monotonic() - started >= 0.35


def test_stop_wakes_stalled_answers(start_sandbox):
    sandbox = start_sandbox()
    url = result(sandbox, submit(sandbox))["output"]["images"][0]
    sandbox.inject(Faults(stall_download=1, stall_seconds=3600))
    reader = threading.Thread(target=lambda: requests.get(url, timeout=3600).content, daemon=True)
    reader.start()
    wait_until(lambda: any(r.listener == "assets" for r in sandbox.stats.requests), "the download to start")
    sandbox.stop()
    reader.join(WAIT_LIMIT)  # an hour's stall, cut by the stop
    assert not reader.is_alive()


def test_the_cli_survives_the_hostile_answers(cli, start_sandbox):
    """The CLI's side of the new faults, briefly: the `cli` fixture also fails the test if the
    token ever reaches the output (token-echo)."""
    sandbox = start_sandbox(faults=Faults(token_echo=True))
    failed = submit(sandbox, "a fox sandbox:fail")
    assert cli("result", failed).exit_code == 5
    done = submit(sandbox)
    for faults in (Faults(control_chars=2), Faults(huge_json=1, huge_json_mb=16), Faults(deep_json=1)):
        sandbox.inject(faults)
        run = cli("status", done)
        assert run.exit_code == 0 and "\x1b" not in run.stdout + run.stderr, (faults, run.stderr)
    sandbox.inject(Faults(error_after_submit=1))
    before = sandbox.stats.submits
    assert cli("generate", "a fox").exit_code == 7 and sandbox.stats.submits == before + 1


# -- TLS ----------------------------------------------------------------------------------------------


def test_tls_mode_serves_https_trusted_through_requests_ca_bundle(tls_sandbox):
    assert tls_sandbox.base_url.startswith("https://127.0.0.1:") and tls_sandbox.asset_base_url.startswith("https://")
    assert tls_sandbox.plain_asset_base_url.startswith("http://")
    url = result(tls_sandbox, submit(tls_sandbox))["output"]["images"][0]
    assert url.startswith(tls_sandbox.asset_base_url) and requests.get(url, timeout=10).content[:8] == PNG_SIGNATURE
    strict = ssl.create_default_context(cafile=str(CERT))
    strict.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 turns on by default
    port = urlsplit(tls_sandbox.base_url).port
    with socket.create_connection(("localhost", port)) as raw, strict.wrap_socket(raw, server_hostname="localhost") as secure:
        assert secure.version()


def test_generate_runs_end_to_end_against_the_tls_sandbox(cli, tls_sandbox, tmp_path):
    run = cli("generate", "a fox", "-q", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert Path(run.stdout.split()[0]).read_bytes()[:8] == PNG_SIGNATURE


def test_http_asset_urls_and_https_to_http_redirects(tls_sandbox):
    request_id = submit(tls_sandbox)
    tls_sandbox.inject(Faults(http_asset_urls=1, asset_redirect_http=1))
    (plain,) = result(tls_sandbox, request_id)["output"]["images"]
    assert plain.startswith(tls_sandbox.plain_asset_base_url + "/files/")
    assert requests.get(plain, timeout=10).content[:8] == PNG_SIGNATURE
    (secure,) = result(tls_sandbox, request_id)["output"]["images"]
    assert secure.startswith("https://")
    redirect = requests.get(secure, timeout=10, allow_redirects=False)
    assert redirect.status_code == 302 and redirect.headers["Location"] == plain
    listeners = [r.listener for r in tls_sandbox.stats.requests if "/files/" in r.path]
    assert listeners == ["assets-http", "assets"]


def test_sandbox_command_serves_https_and_exports_the_ca_bundle():
    process = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_cli", "sandbox", "--port", "0", "-q", "--tls-cert", str(CERT), "--tls-key", str(KEY)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        exports = dict(process.stdout.readline().removeprefix("export ").strip().split("=", 1) for _ in range(3))
        assert exports["NANOBANANA_BASE_URL"].startswith("https://127.0.0.1:")
        assert Path(exports["REQUESTS_CA_BUNDLE"]) == CERT.resolve()
        answer = requests.get(f"{exports['NANOBANANA_BASE_URL']}/v1/models", verify=exports["REQUESTS_CA_BUNDLE"], timeout=10,
                              headers={"Authorization": f"Bearer {exports['RUNCOMFY_API_TOKEN']}"})
        assert answer.json()["total"] == 8  # the whole family
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=WAIT_LIMIT)


# -- PNG without Pillow -------------------------------------------------------------------------------


def test_png_is_drawn_without_pillow(start_sandbox, no_pillow):
    sandbox = start_sandbox()
    first = result(sandbox, submit(sandbox, "a red fox", aspect_ratio="21:9"))["output"]["images"][0]
    data = requests.get(first, timeout=10).content
    chunks = png_chunks(data)
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour_type) == (8, 2) and width * 9 == height * 21 and max(width, height) <= 256
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + 3 * width)
    assert data == draw_png(width, height, "a red fox", 1)  # the standard-library drawing, not Pillow's
    other = result(sandbox, submit(sandbox, "a blue whale", aspect_ratio="21:9"))["output"]["images"][0]
    assert requests.get(other, timeout=10).content != data


def test_a_padded_png_is_grown_in_its_image_data_and_keeps_its_pixels(start_sandbox):
    """The downloads benchmark pads images: the padding must cost a client what real image data does."""
    from PIL import Image

    plain = start_sandbox()
    url = result(plain, submit(plain, "a red fox"))["output"]["images"][0]
    unpadded = requests.get(url, timeout=10).content
    padded_sandbox = start_sandbox(asset_padding_bytes=1024 * 1024)
    url = result(padded_sandbox, submit(padded_sandbox, "a red fox"))["output"]["images"][0]
    padded = requests.get(url, timeout=10).content
    at, idat_bytes, kinds = 8, 0, []
    while at < len(padded):
        length, kind = struct.unpack(">I4s", padded[at:at + 8])
        assert struct.unpack(">I", padded[at + 8 + length:at + 12 + length])[0] == zlib.crc32(padded[at + 4:at + 8 + length])
        kinds.append(kind)
        idat_bytes += length if kind == b"IDAT" else 0
        at += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and set(kinds) <= {b"IHDR", b"IDAT", b"IEND", b"pHYs", b"sRGB", b"gAMA"}
    assert idat_bytes >= 1024 * 1024 and len(padded) - len(unpadded) >= 1024 * 1024 - 5
    with Image.open(io.BytesIO(unpadded)) as before, Image.open(io.BytesIO(padded)) as after:
        assert after.size == before.size and after.tobytes() == before.tobytes()


def test_jpeg_without_pillow_is_refused_at_submit_with_the_install_hint(start_sandbox, no_pillow):
    sandbox = start_sandbox()
    answer = call(sandbox, "POST", SUBMIT_PATH, json={"prompt": "a fox", "output_format": "jpeg"})
    assert answer.status_code == 422 and INSTALL_HINT in answer.json()["detail"]
    assert sandbox.jobs() == [] and sandbox.stats.submits == 0
    with pytest.raises(UsageError) as raised:
        ensure_can_render("webp")
    assert raised.value.hint == INSTALL_HINT and raised.value.exit_code == 2


def test_generate_webp_without_pillow_exits_2_at_once(cli, start_sandbox, no_pillow):
    sandbox = start_sandbox()
    run = cli("generate", "a fox", "-f", "webp")
    assert run.exit_code == 2 and INSTALL_HINT in run.stderr
    assert [r.method for r in sandbox.stats.requests] == ["POST"]  # refused once, never retried


# -- the fault table ----------------------------------------------------------------------------------


def test_the_table_is_consistent():
    names = [spec.name for spec in FAULT_TABLE]
    assert len(names) == len(set(names))
    for spec in FAULT_TABLE:
        assert spec.endpoints and spec.effect
        assert (spec.action is None) == (spec.moment is Moment.SETTING), spec.name
        assert spec.checked(spec.initial) == spec.initial


def test_sandbox_help_lists_every_fault_from_the_table(cli):
    run = cli("sandbox", "--help")
    assert run.exit_code == 0
    for line in fault_help().splitlines():
        assert line in run.stdout
    for spec in FAULT_TABLE:
        assert f"{spec.option}={spec.kind.placeholder}" in run.stdout


def test_parse_reads_every_kind_and_matches_the_constructor():
    parsed = Faults.parse(["rate-limit=2", "retry_after=3600", "fail-jobs=yes", "bad-token-status=401", "stall-seconds=0.5"])
    assert parsed == Faults(rate_limit=2, retry_after="3600", fail_jobs=True, bad_token_status=401, stall_seconds=0.5)
    assert parsed.slow_seconds == 0.0 and parsed.trickle_interval == 0.05
    assert Faults.parse([]) == Faults()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope=1", "unknown fault"), ("rate-limit", "unknown fault"), ("rate-limit=two", "whole number"),
        ("rate-limit=-1", "whole number"), ("bad-token-status=404", "one of 400, 401, 403"), ("fail-jobs=maybe", "1 or 0"),
        ("slow-seconds=nan", "seconds"),
    ],
)
def test_parse_refuses_what_the_table_does_not_allow(spec, message):
    with pytest.raises(ValueError, match=message):
        Faults.parse([spec])


def test_constructor_checks_names_and_values():
    with pytest.raises(TypeError, match="unknown fault"):
        Faults(nope=1)
    with pytest.raises(ValueError, match="whole number"):
        Faults(rate_limit=1.5)
    assert Faults().changed() == {} and Faults(rate_limit=0) == Faults()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fault", "nope=1"), "unknown fault"),
        (("--tls-cert", str(CERT)), "go together"),
        (("--tls-cert", str(KEY), "--tls-key", str(KEY)), "cannot serve https"),
    ],
)
def test_sandbox_command_refuses_bad_options_with_exit_2(cli, args, message):
    run = cli("sandbox", "--port", "0", *args)
    assert run.exit_code == 2 and message in run.stderr
