"""`edit_image` and the model options of `nanobanana mcp`, driven by the SDK's client against the sandbox.

Local input images are read only inside the allowed directories, sent inline through the same
journaled submit as `nanobanana edit`, and their data never reaches an answer or the log.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp extra (in the test extra) is not installed")
from mcp import ClientSession
from mcp_types import CallToolResult

from nanobanana_cli.stores.history import History

from .test_edit import DATA
from .test_mcp import Server, images_of, posts, text_of, validate
from .test_sandbox_family import BLUE, RED, picture


def test_edit_with_a_local_file_in_the_output_directory_sends_it_inline_once(sandbox, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "red.png").write_bytes(picture(RED))

    async def body(server: Server, session: ClientSession) -> CallToolResult:
        return await server.call(session, "edit_image", {"prompt": "make it dusk", "images": [str(out / "red.png")], "aspect": "1:1"})

    server = Server(tmp_path, "-o", str(out))
    result = server.run(body)
    assert not result.is_error, text_of(result)
    assert posts(sandbox) == 1
    (job,) = sandbox.jobs()
    assert job.model_id == "google/nano-banana/edit"
    assert [url.split(",")[0] for url in job.input["image_urls"]] == ["data:image/png;base64"]
    document = result.structured_content
    validate(document, "job.json")
    saved = [output["path"] for output in document["outputs"]]
    assert len(saved) == 1 and saved[0].startswith(str(out)) and saved[0] in text_of(result)
    assert [item["file"] for item in document["input"]["image_urls"]] == ["red.png"]
    assert len(images_of(result)) == 1  # the thumbnail
    assert not DATA.search(result.model_dump_json()) and "data:image" not in result.model_dump_json()
    assert not DATA.search(server.log) and "data:image" not in server.log
    (entry,) = History().entries()
    assert entry.request_id == document["request_id"]


def test_an_image_outside_the_allowed_directories_is_refused_and_nothing_is_sent(sandbox, tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "secret.png").write_bytes(picture(BLUE))
    (out / "link.png").symlink_to(elsewhere / "secret.png")  # inside by name, outside in fact
    refused = [str(elsewhere / "secret.png"), str(out / "link.png"), str(out / ".." / "elsewhere" / "secret.png")]

    async def body(server: Server, session: ClientSession) -> list[CallToolResult]:
        results = [await server.call(session, "edit_image", {"prompt": "dusk", "images": [path]}) for path in refused]
        results.append(await server.call(session, "edit_image", {"prompt": "dusk", "images": ["data:image/png;base64,AAAA"]}))
        results.append(await server.call(session, "edit_image", {"prompt": "dusk", "images": []}))
        return results

    results = Server(tmp_path, "-o", str(out)).run(body)
    for path, result in zip(refused, results):
        assert result.is_error and f"images[0]: {path!r} is outside the directories this server may read" in text_of(result)
    assert results[3].is_error and "images[0]" in text_of(results[3]) and "https URL" in text_of(results[3])
    assert results[4].is_error and text_of(results[4]).startswith("error: images: must be a list of 1 to")
    assert posts(sandbox) == 0 and sandbox.jobs() == []


@pytest.mark.parametrize(("tool", "arguments", "endpoint"), [
    ("generate_image", {}, "google/nano-banana-2/text-to-image"),
    ("edit_image", {"images": ["IMAGE"]}, "google/nano-banana-2/edit"),
])
def test_a_model_alias_reaches_its_endpoint(sandbox, tmp_path, tool, arguments, endpoint):
    out = tmp_path / "out"
    out.mkdir()
    (out / "red.png").write_bytes(picture(RED))
    arguments = {key: [str(out / "red.png")] if value == ["IMAGE"] else value for key, value in arguments.items()}

    async def body(server: Server, session: ClientSession) -> CallToolResult:
        return await server.call(session, tool, {"prompt": "a fox", "model": "nano-banana-2", "resolution": "2K", "seed": 7, **arguments})

    result = Server(tmp_path, "-o", str(out)).run(body)
    assert not result.is_error, text_of(result)
    (job,) = sandbox.jobs()
    assert job.model_id == endpoint and job.input["resolution"] == "2K" and job.input["seed"] == 7
    assert result.structured_content["model"] == endpoint
    assert posts(sandbox) == 1


def test_invalid_model_options_name_the_field_and_send_no_submit(sandbox, tmp_path):
    calls: list[tuple[dict[str, Any], str]] = [
        ({"prompt": "a fox", "model": "dall-e"}, "model: 'dall-e' is not valid; use one of nano-banana, nano-banana-2"),
        ({"prompt": "a fox", "model": "nano-banana-2", "resolution": "9K"}, "resolution"),
        ({"prompt": "a fox", "seed": -1}, "seed: must be from 0"),
    ]

    async def body(server: Server, session: ClientSession) -> list[CallToolResult]:
        return [await server.call(session, "generate_image", arguments) for arguments, _ in calls]

    results = Server(tmp_path, "-o", str(tmp_path / "out")).run(body)
    for result, (_, expected) in zip(results, calls):
        assert result.is_error and expected in text_of(result), text_of(result)
    assert "1K" in text_of(results[1]) and "2K" in text_of(results[1])  # the model's valid values
    assert posts(sandbox) == 0
