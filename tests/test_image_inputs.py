"""Local image inputs (engine/image_inputs.py): checked by their bytes and size before anything is
sent, recorded without their data, and streamed into a request body of known length whose bytes
are exactly the JSON of the equivalent dict, in flat memory."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import sys
import tracemalloc
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.described import submit_url
from nanobanana_cli.api.family import bundled_entry
from nanobanana_cli.api.input_schema import SchemaSource, parse
from nanobanana_cli.api.retry import RetryPolicy
from nanobanana_cli.engine.image_inputs import (
    DEFAULT_MAX_IMAGE_BYTES,
    MIB,
    ImageInput,
    JsonBody,
    image_limit,
    read_image_inputs,
    reload,
    request_body,
)
from nanobanana_cli.errors import InvalidInputError, UsageError
from nanobanana_cli.sandbox import Faults

from .conftest import SENTINEL_TOKEN

EDIT = "google/nano-banana-2/edit"
SCHEMA = parse(bundled_entry(EDIT)["input_schema"], EDIT, SchemaSource("bundled"))


def image_file(path: Path, kind: str = "PNG", size: tuple[int, int] = (40, 30), colour=(200, 30, 30), noise: bool = False) -> Path:
    picture = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise else Image.new("RGB", size, colour)
    picture.save(path, kind)
    return path


def fake_png(path: Path, size: int) -> Path:
    """A file that is a PNG by its first bytes and `size` bytes long: the body streams files as they are."""
    with open(path, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        remaining = size - 8
        while remaining:
            block = os.urandom(min(remaining, MIB))
            handle.write(block)
            remaining -= len(block)
    return path


def data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def read_all(body: JsonBody, size: int) -> bytes:
    pieces = []
    while piece := body.read(size):
        pieces.append(piece)
    return b"".join(pieces)


# -- checking the inputs -----------------------------------------------------------------------------


def test_files_of_each_kind_are_read_by_their_bytes_and_recorded_without_their_data(tmp_path):
    png, jpeg, webp = image_file(tmp_path / "a.png"), image_file(tmp_path / "b.jpg", "JPEG"), image_file(tmp_path / "c.webp", "WEBP")
    misnamed = image_file(tmp_path / "d.png", "JPEG")
    inputs = read_image_inputs([str(png), str(jpeg), str(webp), str(misnamed), "https://cdn.example/e.png"])
    assert [item.format for item in inputs[:4]] == ["png", "jpeg", "webp", "jpeg"]
    record = inputs[0].record()
    assert record == {"file": "a.png", "path": str(png.resolve()), "bytes": png.stat().st_size,
                      "sha256": hashlib.sha256(png.read_bytes()).hexdigest(), "format": "png"}
    assert inputs[4].record() == {"url": "https://cdn.example/e.png"}
    assert "base64" not in json.dumps([item.record() for item in inputs])


def test_a_relative_path_is_recorded_absolute(tmp_path, monkeypatch):
    image_file(tmp_path / "a.png")
    monkeypatch.chdir(tmp_path)
    assert read_image_inputs(["a.png"])[0].record()["path"] == str(tmp_path / "a.png")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("missing.png", "no such image file"),
        ("notes.png", "is not a PNG, JPEG or WebP image (by its bytes)"),
        ("folder", "is not a regular file"),
        ("fifo", "is not a regular file"),
        ("http://example.com/a.png", "plain http is allowed only to this machine"),
        ("ftp://example.com/a.png", "invalid image URL"),
        ("https://user:pw@example.com/a.png", "it carries credentials (user:password@)"),
        ("https://example.com/a\\b.png", "invalid image URL"),
        ("data:image/png;base64,AAAA", "not a data URI"),
    ],
)
def test_bad_inputs_are_refused_before_anything_is_sent(tmp_path, monkeypatch, given, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match=re.escape(message)):
        read_image_inputs([given])


def test_http_is_allowed_to_this_machine_for_the_sandbox():
    assert read_image_inputs(["http://127.0.0.1:8765/files/x/1.png"])[0].url == "http://127.0.0.1:8765/files/x/1.png"


def test_a_file_over_the_limit_is_refused_naming_the_limit_its_size_and_the_fix(tmp_path):
    big = fake_png(tmp_path / "big.png", 7 * MIB)
    with pytest.raises(UsageError) as caught:
        read_image_inputs([str(big)])
    assert str(caught.value) == "big.png is 7.0 MiB; the model takes at most 6.0 MiB per image"
    assert caught.value.hint == "pass --fit to shrink it, or shrink it yourself"


def test_fit_shrinks_and_re_encodes_a_file_over_the_limit(tmp_path):
    big = image_file(tmp_path / "noise.png", size=(400, 400), noise=True)
    assert big.stat().st_size > 400_000
    (item,) = read_image_inputs([str(big)], max_image_bytes=150_000, fit=True)
    assert item.fitted is not None and len(item.fitted) <= 150_000 and item.sent_format == "png"
    with Image.open(io.BytesIO(item.fitted)) as fitted:
        assert fitted.format == "PNG" and fitted.width < 400 and fitted.width == fitted.height
    record = item.record()
    assert record["bytes"] == big.stat().st_size and record["fitted"]["bytes"] == len(item.fitted)
    body = JsonBody({"image_urls": [item]})
    assert read_all(body, 1000) == json.dumps({"image_urls": [f"data:image/png;base64,{base64.b64encode(item.fitted).decode()}"]}).encode()


def test_without_pillow_fit_says_what_to_install(tmp_path, monkeypatch):
    big = fake_png(tmp_path / "big.png", 300_000)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(UsageError) as caught:
        read_image_inputs([str(big)], max_image_bytes=200_000, fit=True)
    assert "big.png is 0.3 MiB, over the 0.2 MiB per image, and --fit needs Pillow" in str(caught.value)
    assert caught.value.hint.startswith("pip install 'nanobanana-cli[sandbox]'")
    with pytest.raises(UsageError) as caught:
        read_image_inputs([str(big)], max_image_bytes=200_000)
    assert "(needs Pillow: pip install 'nanobanana-cli[sandbox]')" in caught.value.hint


def test_the_whole_request_is_limited(tmp_path):
    files = [str(fake_png(tmp_path / f"{n}.png", 100_000)) for n in range(3)]
    with pytest.raises(UsageError, match=r"the 3 input images make a 0\.4 MiB request; at most 0\.3 MiB can be sent"):
        read_image_inputs(files, max_request_bytes=300_000)
    inputs = read_image_inputs(files)
    with pytest.raises(UsageError, match="the request would be"):
        JsonBody({"prompt": "x", "image_urls": inputs}, max_bytes=400_000)


def test_the_per_image_limit_follows_the_schema():
    assert image_limit(SCHEMA) == DEFAULT_MAX_IMAGE_BYTES == 6 * MIB and image_limit(None) == 6 * MIB
    strict = parse({"properties": {"image_urls": {"type": "array", "items": {"type": "string", "maxLength": 1023}}}}, "m", SchemaSource("api"))
    assert image_limit(strict) == 750  # (1023 - 23) // 4 * 3: the data URI must fit


# -- the request body --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 16384, 10**9, -1])
def test_the_body_is_exactly_the_json_of_the_equivalent_dict(tmp_path, chunk):
    png, jpeg = image_file(tmp_path / "a.png"), image_file(tmp_path / "b.jpg", "JPEG", size=(333, 101))
    inputs = read_image_inputs([str(png), "https://cdn.example/x.png", str(jpeg)])
    payload = {"prompt": "a \"quoted\" café ☕", "image_urls": inputs, "seed": 3, "enable_web_search": False}
    body = JsonBody(payload)
    expected = json.dumps({**payload, "image_urls": [data_uri(png, "image/png"), "https://cdn.example/x.png", data_uri(jpeg, "image/jpeg")]}).encode()
    data = read_all(body, chunk) if chunk != -1 else body.read()
    assert data == expected and len(body) == len(expected) and body.tell() == len(expected)
    assert body.read(10) == b""
    body.seek(0)
    assert read_all(body, 4096) == expected  # a retry sends it whole again
    preview = body.preview()
    assert preview["image_urls"][1] == "https://cdn.example/x.png" and preview["image_urls"][0]["file"] == "a.png"
    assert "base64" not in json.dumps(preview)


def test_empty_and_odd_sized_files_encode_like_base64_of_the_whole(tmp_path):
    for size in (8, 9, 10, 3 * 65536, 3 * 65536 + 1, 3 * 65536 + 2):
        path = fake_png(tmp_path / f"{size}.png", size)
        body = JsonBody({"image_urls": read_image_inputs([str(path)])})
        assert read_all(body, 5000) == json.dumps({"image_urls": [data_uri(path, "image/png")]}).encode(), size


def test_memory_stays_flat_however_large_the_images(tmp_path):
    files = [fake_png(tmp_path / f"{n}.png", 8 * MIB) for n in range(3)]
    inputs = read_image_inputs([str(path) for path in files], max_image_bytes=10 * MIB)
    payload = {"prompt": "x", "image_urls": inputs}
    expected = hashlib.sha256(json.dumps({**payload, "image_urls": [data_uri(p, "image/png") for p in files]}).encode()).hexdigest()
    body = JsonBody(payload)
    digest = hashlib.sha256()
    tracemalloc.start()
    try:
        while piece := body.read(16384):
            digest.update(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == expected and len(body) > 32 * MIB
    assert peak < 2 * MIB, f"peak {peak} bytes while streaming {len(body)}"


def test_a_file_that_changes_while_it_is_sent_stops_the_body_before_its_end(tmp_path):
    path = fake_png(tmp_path / "a.png", 1 * MIB)
    body = JsonBody({"image_urls": read_image_inputs([str(path)])})
    first = body.read(1000)
    with open(path, "r+b") as handle:
        handle.seek(900_000)
        handle.write(b"changed")
    sent = len(first)
    with pytest.raises(UsageError, match="a.png changed while it was being sent"):
        while piece := body.read(16384):
            sent += len(piece)
    assert sent < len(body) - 100_000  # the last chunk never went out


def test_a_file_that_shrinks_is_caught_too(tmp_path):
    path = fake_png(tmp_path / "a.png", 500_000)
    body = JsonBody({"image_urls": read_image_inputs([str(path)])})
    path.write_bytes(path.read_bytes()[:400_000])
    with pytest.raises(UsageError, match="changed while it was being sent"):
        read_all(body, 16384)


def test_request_body_validates_the_images_count_and_every_field(tmp_path):
    png = str(image_file(tmp_path / "a.png"))
    body = request_body({"prompt": "x", "resolution": "2K", "seed": None}, read_image_inputs([png]), SCHEMA)
    assert json.loads(read_all(body, 65536))["resolution"] == "2K" and list(body.preview()) == ["prompt", "image_urls", "resolution"]
    with pytest.raises(InvalidInputError, match="image_urls: required"):
        request_body({"prompt": "x"}, [], SCHEMA)
    with pytest.raises(InvalidInputError, match="image_urls: 15 items; at most 14"):
        request_body({"prompt": "x"}, read_image_inputs([png] * 15), SCHEMA)
    with pytest.raises(InvalidInputError, match="resolution: '3K' is not one of"):
        request_body({"prompt": "x", "resolution": "3K"}, read_image_inputs([png]), SCHEMA)


def test_reload_finds_a_recorded_file_only_while_it_is_the_same(tmp_path):
    path = image_file(tmp_path / "a.png")
    record = read_image_inputs([str(path)])[0].record()
    again = reload(record)
    assert isinstance(again, ImageInput) and again.sha256 == record["sha256"]
    assert reload({"url": "https://cdn.example/x.png"}).url == "https://cdn.example/x.png"
    image_file(path, colour=(0, 0, 255))
    assert reload(record) is None
    path.unlink()
    assert reload(record) is None and reload({"file": "a.png"}) is None


# -- sent to the sandbox -------------------------------------------------------------------------------


def test_requests_sends_the_body_with_a_content_length_and_the_sandbox_reads_the_images(sandbox, tmp_path):
    png, jpeg = image_file(tmp_path / "a.png"), image_file(tmp_path / "b.jpg", "JPEG")
    body = request_body({"prompt": "a fox"}, read_image_inputs([str(png), str(jpeg)]), SCHEMA)
    answer = requests.post(f"{sandbox.base_url}/v1/models/{EDIT}", data=body, timeout=30,
                           headers={**body.headers, "Authorization": f"Bearer {SENTINEL_TOKEN}"})
    assert answer.status_code == 200, answer.text
    seen = sandbox.stats.requests[-1].headers
    assert seen["Content-Length"] == str(len(body)) and "Transfer-Encoding" not in seen and seen["Content-Type"] == "application/json"
    (job,) = sandbox.jobs()
    assert job.input["image_urls"] == [data_uri(png, "image/png"), data_uri(jpeg, "image/jpeg")]


def test_a_retried_submit_sends_the_whole_body_again(start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(submit_unavailable=1))
    png = image_file(tmp_path / "a.png", size=(300, 200), noise=True)
    body = request_body({"prompt": "a fox"}, read_image_inputs([str(png)]), SCHEMA)
    with Client(SENTINEL_TOKEN, sandbox.base_url, retry=RetryPolicy(retries=2)) as client:
        submission = client._call("POST", submit_url(sandbox.base_url, EDIT), client._parse_submission, what="submit",
                                  billable=True, data=body, headers=body.headers)
    submits = [r for r in sandbox.stats.requests if r.method == "POST"]
    assert [r.status for r in submits] == [503, 200] and all(r.headers["Content-Length"] == str(len(body)) for r in submits)
    assert sandbox.job(submission.request_id).input["image_urls"] == [data_uri(png, "image/png")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    extra=st.dictionaries(st.text(max_size=6), st.none() | st.booleans() | st.integers() | st.text(max_size=20), max_size=4),
    sizes=st.lists(st.integers(min_value=8, max_value=5000), min_size=1, max_size=3),
    chunk=st.integers(min_value=1, max_value=70000),
)
def test_any_payload_streams_to_its_json(tmp_path, extra, sizes, chunk):
    files = [fake_png(tmp_path / f"{n}-{size}.png", size) for n, size in enumerate(sizes)]
    inputs = read_image_inputs([str(path) for path in files])
    payload = {**extra, "image_urls": inputs, "nested": {"first": inputs[0]}}
    expected = json.dumps({**extra, "image_urls": [data_uri(p, "image/png") for p in files], "nested": {"first": data_uri(files[0], "image/png")}})
    body = JsonBody(payload)
    assert read_all(body, chunk) == expected.encode() and len(body) == len(expected)
