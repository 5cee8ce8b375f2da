"""The sandbox scripts what a hostile or careless server sends, so no test needs a fake of its own:
extra output URLs (extra-outputs), credentials in output URLs (output-userinfo), raw JSON values in
/result (result-field, NaN and Infinity included), and given bytes as every output file
(`Sandbox(image_bytes=...)`, `nanobanana sandbox --image-file`). Without them, it answers as
runcomfy-api.md documents."""

from __future__ import annotations

import math
import signal
import subprocess
import sys

import pytest
import requests

from nanobanana_cli.api.schema import MODEL_ID
from nanobanana_cli.sandbox import Faults, Sandbox

from .conftest import SENTINEL_TOKEN, WAIT_LIMIT

SUBMIT_PATH = f"/v1/models/{MODEL_ID}"
CRAFTED = b"RIFF\x04\x00\x00\x00WEBP"  # a WebP whose RIFF payload holds no chunk at all


def call(sandbox: Sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, sandbox.base_url + path, headers={"Authorization": f"Bearer {SENTINEL_TOKEN}"}, timeout=10, **kwargs)


def finished_job(sandbox: Sandbox, **fields) -> str:
    answer = call(sandbox, "POST", SUBMIT_PATH, json={"prompt": "a fox", **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()["request_id"]


def result(sandbox: Sandbox, request_id: str) -> requests.Response:
    answer = call(sandbox, "GET", f"/v1/requests/{request_id}/result")
    assert answer.status_code == 200, answer.text
    return answer


def test_without_faults_a_result_lists_exactly_the_images_made_and_serves_no_more(sandbox):
    request_id = finished_job(sandbox, num_images=2)
    urls = result(sandbox, request_id).json()["output"]["images"]
    assert [url.rsplit("/", 1)[1] for url in urls] == ["1.png", "2.png"]
    assert all("@" not in url for url in urls)
    assert requests.get(urls[1].replace("/2.png", "/3.png"), timeout=10).status_code == 404


def test_extra_outputs_lists_more_urls_and_the_image_host_serves_each(sandbox):
    request_id = finished_job(sandbox, num_images=1)
    sandbox.inject(Faults(extra_outputs=3))
    urls = result(sandbox, request_id).json()["output"]["images"]
    assert [url.rsplit("/", 1)[1] for url in urls] == ["1.png", "2.png", "3.png", "4.png"]
    for url in urls:
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200 and answer.content.startswith(b"\x89PNG")
    assert requests.get(urls[0].replace("/1.png", "/5.png"), timeout=10).status_code == 404


@pytest.mark.parametrize(("userinfo", "shown"), [("{token}:x", f"{SENTINEL_TOKEN}:x"), ("alice:secret", "alice:secret")])
def test_output_userinfo_puts_credentials_or_the_sent_token_before_each_host(sandbox, userinfo, shown):
    request_id = finished_job(sandbox, num_images=2)
    sandbox.inject(Faults(output_userinfo=userinfo, extra_outputs=1))
    urls = result(sandbox, request_id).json()["output"]["images"]
    host = sandbox.asset_base_url.split("//", 1)[1]
    assert urls == [f"http://{shown}@{host}/files/{request_id}/{index}.png" for index in (1, 2, 3)]


def test_result_field_writes_raw_values_nan_and_infinity_included(sandbox):
    request_id = finished_job(sandbox)
    sandbox.inject(Faults(result_field='cost:NaN, queue_position:Infinity,status:"warming_up",extra:{"a":[1,-Infinity]}'))
    answer = result(sandbox, request_id)
    assert '"cost": NaN' in answer.text and '"queue_position": Infinity' in answer.text  # as a careless server writes them
    body = answer.json()  # Python's reader takes them
    assert math.isnan(body["cost"]) and body["queue_position"] == math.inf
    assert body["status"] == "warming_up" and body["extra"] == {"a": [1, -math.inf]}
    assert body["output"]["images"]  # the rest of the answer is untouched
    status = call(sandbox, "GET", f"/v1/requests/{request_id}/status").json()
    assert "cost" not in status and status["status"] == "completed"  # /result only


@pytest.mark.parametrize(
    ("value", "why"),
    [("cost", "a field name before ':'"), (":1", "a field name before ':'"), ("cost:", "a JSON value for cost"),
     ("cost:nope", "a JSON value for cost"), ("cost:1 2", "',' after the value of cost"), ("cost:1,", "a field name")],
)
def test_result_field_refuses_what_it_cannot_read(value, why):
    with pytest.raises(ValueError, match=f"needs FIELD:JSON.*{why}"):
        Faults.parse([f"result-field={value}"])
    with pytest.raises(ValueError, match="FIELD:JSON"):
        Faults(result_field=value)


def test_image_bytes_are_served_exactly_as_every_output_file(start_sandbox):
    sandbox = start_sandbox(image_bytes=CRAFTED)
    request_id = finished_job(sandbox, num_images=2, output_format="webp")
    for url in result(sandbox, request_id).json()["output"]["images"]:
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 200 and answer.content == CRAFTED
        assert answer.headers["Content-Type"] == "image/webp"  # the format asked for, as a CDN labels it


def test_sandbox_command_serves_an_image_file_and_refuses_an_unreadable_one(cli, tmp_path):
    missing = cli("sandbox", "--port", "0", "--image-file", tmp_path / "nope.webp")
    assert missing.exit_code == 2 and "cannot read the image file" in missing.stderr
    crafted = tmp_path / "crafted.webp"
    crafted.write_bytes(CRAFTED)
    process = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_cli", "sandbox", "--port", "0", "-q", "--queue-seconds", "0", "--run-seconds", "0",
         "--token", SENTINEL_TOKEN, "--image-file", str(crafted), "--fault", "result-field=cost:NaN"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        exports = dict(process.stdout.readline().removeprefix("export ").strip().split("=", 1) for _ in range(2))
        base = exports["NANOBANANA_BASE_URL"]
        headers = {"Authorization": f"Bearer {SENTINEL_TOKEN}"}
        submitted = requests.post(f"{base}{SUBMIT_PATH}", json={"prompt": "a fox"}, headers=headers, timeout=10).json()
        answer = requests.get(submitted["result_url"], headers=headers, timeout=10)
        assert '"cost": NaN' in answer.text
        assert requests.get(answer.json()["output"]["images"][0], timeout=10).content == CRAFTED
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=WAIT_LIMIT)
