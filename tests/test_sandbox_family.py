"""The sandbox serves the whole nano-banana family: schemas from the bundled snapshot or a schema
file, validation against them, edits drawn from their inputs, and resolution changing the size."""

from __future__ import annotations

import base64
import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from PIL import Image

from nanobanana_cli.api.family import family_ids
from nanobanana_cli.api.models import parse_model_info, parse_result
from nanobanana_cli.sandbox.models import load_models

from .conftest import SENTINEL_TOKEN

EDIT = "google/nano-banana-2/edit"
T2I_2 = "google/nano-banana-2/text-to-image"
RED, BLUE = (220, 20, 20), (20, 20, 220)


def call(sandbox, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, sandbox.base_url + path, headers={"Authorization": f"Bearer {SENTINEL_TOKEN}"}, timeout=10, **kwargs)


def submit(sandbox, model_id: str, **body) -> str:
    answer = call(sandbox, "POST", f"/v1/models/{model_id}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["request_id"]


def finished(sandbox, request_id: str) -> dict:
    answer = call(sandbox, "GET", f"/v1/requests/{request_id}/result", params={"include_cost": "true"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def picture(colour: tuple[int, int, int], size: tuple[int, int] = (60, 30), kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, kind)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def output_image(sandbox, request_id: str, index: int = 0) -> Image.Image:
    url = finished(sandbox, request_id)["output"]["images"][index]
    return Image.open(io.BytesIO(requests.get(url, timeout=10).content)).convert("RGB")


def write_schema_file(path: Path, **changes) -> Path:
    """The nano-banana-2 text-to-image entry, changed: a schema that differs from the snapshot."""
    schema = {
        "type": "object", "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string", "maxLength": 30},
            "resolution": {"type": "string", "enum": ["1K", "8K"], "default": "1K"},
            "num_images": {"type": "integer", "minimum": 1, "maximum": 2, "default": 1},
        },
    }
    path.write_text(json.dumps({"models": [{"model_id": T2I_2, "display_name": "NB2 (test file)", "base_price_usd": "0.1",
                                            "input_schema": schema, **changes}]}))
    return path


# -- the catalog ------------------------------------------------------------------------------------


def test_every_family_id_is_served_with_its_schema_and_price_per_output(sandbox):
    for model_id in family_ids():
        entry = call(sandbox, "GET", f"/v1/models/{model_id}").json()
        assert entry["model_id"] == model_id and entry["price_unit"] == "output"
        assert "prompt" in entry["input_schema"]["properties"]
        assert ("image_urls" in entry["input_schema"]["required"]) == model_id.endswith("/edit")
    listing = call(sandbox, "GET", "/v1/models", params={"search": "nano-banana", "include_schema": "true"}).json()
    assert [model["model_id"] for model in listing["models"]] == list(family_ids())


def test_unknown_models_answer_400_with_error_400001_on_both_paths(sandbox):
    for method in ("GET", "POST"):
        answer = call(sandbox, method, "/v1/models/google/nano-banana-3/edit", json={"prompt": "x"})
        assert answer.status_code == 400 and answer.json()["error_code"] == 400001
    assert sandbox.stats.submits == 0


def test_a_schema_file_replaces_the_snapshots_entry_and_validation_follows_it(start_sandbox, tmp_path):
    sandbox = start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    entry = call(sandbox, "GET", f"/v1/models/{T2I_2}").json()
    assert entry["display_name"] == "NB2 (test file)" and entry["base_price_usd"] == "0.1" and entry["price_unit"] == "output"
    refused = call(sandbox, "POST", f"/v1/models/{T2I_2}", json={"prompt": "a fox", "resolution": "2K"})  # fine in the snapshot
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "resolution"] and "8K" in refused.json()["detail"][0]["msg"]
    assert call(sandbox, "POST", f"/v1/models/{T2I_2}", json={"prompt": "x" * 31}).status_code == 422
    done = finished(sandbox, submit(sandbox, T2I_2, prompt="a fox", num_images=2))
    assert done["cost"] == "0.2000"  # the price's own type: a decimal string
    assert parse_result(done, "r").cost == 0.2 and parse_model_info(entry, T2I_2).base_price_usd == 0.1
    # the other family members keep the snapshot's schemas
    assert call(sandbox, "GET", f"/v1/models/{EDIT}").json()["display_name"] == "Nano Banana 2 Edit"


@pytest.mark.parametrize(
    ("content", "message"),
    [("not json", "cannot read the schema file"), ('{"model_id": "google/x/y"}', "has no input_schema"),
     ('[{"model_id": "../etc", "input_schema": {"properties": {"prompt": {}}}}]', "without a usable model_id")],
)
def test_the_sandbox_command_refuses_a_bad_schema_file_with_exit_2(cli, tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    run = cli("sandbox", "--port", "0", "--schema-file", path)
    assert run.exit_code == 2 and message in run.stderr and run.stdout == ""


def test_the_sandbox_command_serves_a_schema_file(tmp_path):
    path = write_schema_file(tmp_path / "schema.json")
    process = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_cli", "sandbox", "--port", "0", "-q", "--schema-file", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        exports = dict(process.stdout.readline().removeprefix("export ").strip().split("=", 1) for _ in range(2))
        answer = requests.get(f"{exports['NANOBANANA_BASE_URL']}/v1/models/{T2I_2}", timeout=10,
                              headers={"Authorization": f"Bearer {exports['RUNCOMFY_API_TOKEN']}"})
        assert answer.json()["display_name"] == "NB2 (test file)"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


# -- validation of edits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({"prompt": "x"}, ["body", "image_urls"], "required"),
        ({"prompt": "x", "image_urls": []}, ["body", "image_urls"], "at least 1"),
        ({"prompt": "x", "image_urls": ["data:image/png;base64,AAAA"] * 15}, ["body", "image_urls"], "at most 14"),
        ({"prompt": "x", "image_urls": ["data:image/png;base64,bm90IGFuIGltYWdl"]}, ["body", "image_urls", 0], "not a base64 data URI"),
        ({"prompt": "x", "image_urls": ["data:image/png;base64,%%%"]}, ["body", "image_urls", 0], "not a base64 data URI"),
        ({"prompt": "x", "image_urls": ["https://example.com/a.png"], "resolution": "3K"}, ["body", "resolution"], "0.5K, 1K, 2K, 4K"),
    ],
)
def test_invalid_edits_answer_422_with_a_detail_naming_the_field(sandbox, body, loc, words):
    answer = call(sandbox, "POST", f"/v1/models/{EDIT}", json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == loc and words in answer.json()["detail"][0]["msg"]
    assert sandbox.stats.submits == 0


def test_a_url_off_the_sandbox_fails_the_job_and_nothing_is_fetched(sandbox):
    request_id = submit(sandbox, EDIT, prompt="x", image_urls=["https://example.com/cat.png"])
    done = finished(sandbox, request_id)
    assert done["status"] == "failed" and "example.com/cat.png" in done["error"]["message"]
    assert "data URIs and its own image host" in done["error"]["message"] and "cost" in done and done["cost"] == 0.0


# -- edits drawn from their inputs -----------------------------------------------------------------


def test_an_edit_is_its_first_input_fitted_tinted_and_captioned(sandbox):
    red = submit(sandbox, EDIT, prompt="make it dusk", image_urls=[data_uri(picture(RED)), data_uri(picture(BLUE))], aspect_ratio="16:9")
    blue = submit(sandbox, EDIT, prompt="make it dusk", image_urls=[data_uri(picture(BLUE, kind="JPEG"), "image/jpeg")], aspect_ratio="1:1")
    first, second = output_image(sandbox, red), output_image(sandbox, blue)
    assert first.width * 9 == first.height * 16 and second.width == second.height
    corner_red, corner_blue = first.getpixel((first.width - 2, first.height - 2)), second.getpixel((second.width - 2, second.height - 2))
    assert corner_red[0] > corner_red[2] + 60 and corner_blue[2] > corner_blue[0] + 60  # the input shows through the tint
    assert corner_red != RED  # tinted, not the input copied


def test_auto_aspect_follows_the_first_input_and_resolution_sets_the_size(sandbox):
    tall = submit(sandbox, EDIT, prompt="x", image_urls=[data_uri(picture(RED, (30, 90)))], resolution="2K")
    image = output_image(sandbox, tall)
    assert image.size == (85, 256)  # 1:3 like the input; 2K: the usual long side (256 in tests)
    sizes = {}
    for resolution in ("0.5K", "1K", "2K", "4K"):
        image = output_image(sandbox, submit(sandbox, T2I_2, prompt="a fox", aspect_ratio="1:1", resolution=resolution))
        sizes[resolution] = image.size
    assert sizes == {"0.5K": (64, 64), "1K": (128, 128), "2K": (256, 256), "4K": (512, 512)}
    assert output_image(sandbox, submit(sandbox, T2I_2, prompt="a fox", aspect_ratio="1:1")).size == (128, 128)  # the default, 1K


def test_an_output_of_the_sandbox_can_be_the_input_of_an_edit(sandbox):
    made = finished(sandbox, submit(sandbox, EDIT, prompt="x", image_urls=[data_uri(picture(BLUE))]))["output"]["images"][0]
    again = submit(sandbox, EDIT, prompt="y", image_urls=[made])
    assert finished(sandbox, again)["status"] == "succeeded"
    image = output_image(sandbox, again)
    assert image.size == (128, 64)  # auto: the 2:1 of the first input, at 1K
    pixel = image.getpixel((image.width - 2, image.height - 2))
    assert pixel[2] > pixel[0] + 40  # still blue, through two tints


def test_without_pillow_the_inputs_still_change_the_drawing(start_sandbox, monkeypatch):
    sandbox = start_sandbox()
    red_uri, blue_uri = data_uri(picture(RED)), data_uri(picture(BLUE))
    monkeypatch.setitem(sys.modules, "PIL", None)
    outputs = []
    for uri in (red_uri, blue_uri, red_uri):
        url = finished(sandbox, submit(sandbox, "google/nano-banana-2-lite/edit", prompt="x", image_urls=[uri]))["output"]["images"][0]
        outputs.append(requests.get(url, timeout=10).content)
    assert outputs[0] != outputs[1] and outputs[0] == outputs[2]
    assert outputs[0][:8] == b"\x89PNG\r\n\x1a\n"
