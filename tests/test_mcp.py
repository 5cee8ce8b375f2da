"""`nanobanana mcp`, driven by the MCP SDK's own client over stdio, against the sandbox.

Each test starts the real server as a subprocess (`python -m nanobanana_cli mcp`) with the test's
isolated environment, and checks what an agent would get (tool errors, structured content,
thumbnails) and what really happened (files on disk, requests the sandbox saw, the history).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from PIL import Image

from nanobanana_cli.api.models import ASPECT_RATIOS
from nanobanana_cli.sandbox import Faults, Sandbox
from nanobanana_cli.stores.history import History

from .conftest import SENTINEL_TOKEN, WAIT_LIMIT

pytest.importorskip("mcp", reason="the mcp extra (in the test extra) is not installed")
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp_types import CallToolResult

from nanobanana_cli.mcp.thumbnails import MAX_THUMBNAIL_BYTES, THUMBNAIL_SIDE

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schema"
TOOLS = {"generate_image", "edit_image", "job_status", "job_result", "cancel_job", "list_jobs", "inspect_image", "model_info"}
T = TypeVar("T")
# A bound on a wait that should end by itself: a hang fails the test instead of stalling the suite.
HANG = 300


class Server:
    """One `nanobanana mcp` process and its log (its stderr), for a test's body to talk to."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.args = ["-m", "nanobanana_cli", "mcp", *args]
        self.log_path = tmp_path / f"server-{len(list(tmp_path.glob('server-*.log')))}.log"
        self.results: list[CallToolResult] = []

    def run(self, body: Callable[[Server, ClientSession], Awaitable[T]]) -> T:
        async def main() -> T:
            with self.log_path.open("w") as errlog, anyio.fail_after(HANG):
                parameters = StdioServerParameters(command=sys.executable, args=self.args, env=dict(os.environ), cwd=os.getcwd())
                async with stdio_client(parameters, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                    await session.initialize()
                    return await body(self, session)

        outcome = anyio.run(main)
        for result in self.results:
            assert SENTINEL_TOKEN not in result.model_dump_json(), "the token leaked into a tool result"
        assert SENTINEL_TOKEN not in self.log, "the token leaked into the server's log"
        return outcome

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    async def call(self, session: ClientSession, tool: str, arguments: dict[str, Any], **kwargs: Any) -> CallToolResult:
        result = await session.call_tool(tool, arguments, **kwargs)
        self.results.append(result)
        return result

    async def wait_for_log(self, text: str) -> None:
        """Until the server's log says `text`; the limit only turns a missing line into a failure."""
        with anyio.fail_after(WAIT_LIMIT):
            while text not in self.log:
                await anyio.sleep(0.02)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


def images_of(result: CallToolResult) -> list[Any]:
    return [block for block in result.content if block.type == "image"]


def validate(document: Any, schema_file: str) -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator(json.loads((SCHEMAS / schema_file).read_text())).validate(document)


def posts(sandbox: Sandbox) -> int:
    return sum(1 for request in sandbox.stats.requests if request.method == "POST")


def test_the_tools_are_listed_with_the_models_schema(sandbox, tmp_path):
    async def body(server: Server, session: ClientSession) -> Any:
        return (await session.list_tools()).tools

    tools = {tool.name: tool for tool in Server(tmp_path, "-o", str(tmp_path / "out")).run(body)}
    assert set(tools) == TOOLS
    schema = tools["generate_image"].input_schema
    assert schema["required"] == ["prompt"] and schema["additionalProperties"] is False
    assert schema["properties"]["aspect"]["enum"] == list(ASPECT_RATIOS)
    assert schema["properties"]["count"]["enum"] == [1, 2, 3, 4]
    assert schema["properties"]["model"]["enum"] == ["nano-banana", "nano-banana-2", "nano-banana-pro", "nano-banana-2-lite"]
    assert tools["edit_image"].input_schema["required"] == ["prompt", "images"]
    assert tools["list_jobs"].annotations.read_only_hint and not tools["generate_image"].annotations.read_only_hint
    assert sandbox.stats.requests == []  # listing asks nothing of the API


def test_generate_saves_in_the_output_directory_and_answers_with_the_job_document(sandbox, tmp_path):
    out = tmp_path / "out"
    messages: list[str] = []

    async def body(server: Server, session: ClientSession) -> tuple[CallToolResult, ...]:
        async def progress(done: float, total: float | None, message: str | None) -> None:
            messages.append(message or "")

        made = await server.call(session, "generate_image", {"prompt": "a red fox", "count": 2, "aspect": "1:1"},
                                 progress_callback=progress)
        again = await server.call(session, "job_result", {"request_id": made.structured_content["request_id"]})
        listed = await server.call(session, "list_jobs", {"status": "succeeded", "search": "red fox"})
        return made, again, listed

    made, again, listed = Server(tmp_path, "-o", str(out)).run(body)
    assert not made.is_error, text_of(made)
    document = made.structured_content
    validate(document, "job.json")
    request_id = document["request_id"]
    assert document["status"] == "succeeded" and document["input"]["num_images"] == 2
    paths = [Path(item["path"]) for item in document["outputs"]]
    assert sorted(paths) == sorted(out.iterdir()) and all(path.parent == out.resolve() for path in paths)
    assert all(str(path) in text_of(made) for path in paths) and request_id in text_of(made)
    assert messages[0] == f"submitted job {request_id}"  # the job is named before the wait
    thumbnails = images_of(made)
    assert len(thumbnails) == 2
    for block in thumbnails:
        data = base64.b64decode(block.data)
        assert block.mime_type == "image/jpeg" and len(data) <= MAX_THUMBNAIL_BYTES
        with Image.open(io.BytesIO(data)) as picture:
            assert max(picture.size) <= THUMBNAIL_SIDE
    # job_result finds the images already saved: the same files, nothing downloaded again
    assert not again.is_error and again.structured_content["outputs"] == document["outputs"]
    assert posts(sandbox) == 1 and sum(request.listener == "assets" for request in sandbox.stats.requests) == 2
    with History() as history:
        assert history.get(request_id).status == "succeeded"  # the same journal as the CLI
    (row,) = listed.structured_content["jobs"]
    validate(row, "history-row.json")
    assert row["request_id"] == request_id and row["paths"] == [str(path) for path in paths]


def test_without_waiting_the_job_is_fetched_later_with_job_result(sandbox, tmp_path):
    out = tmp_path / "out"

    async def body(server: Server, session: ClientSession) -> tuple[CallToolResult, CallToolResult]:
        submitted = await server.call(session, "generate_image", {"prompt": "a blue fox", "wait": False, "name": "fox-{i}"})
        return submitted, await server.call(session, "job_result", {"wait": True})  # no id: the newest job

    submitted, fetched = Server(tmp_path, "-o", str(out)).run(body)
    assert not submitted.is_error and submitted.structured_content["status"] == "in_queue"
    assert not fetched.is_error and fetched.structured_content["request_id"] == submitted.structured_content["request_id"]
    assert [path.name for path in out.iterdir()] == ["fox-1.png"]  # named as the submit asked
    validate(fetched.structured_content, "job.json")


def test_invalid_input_names_the_field_and_what_it_accepts_before_anything_is_sent(sandbox, tmp_path):
    calls = [
        ({"prompt": "a fox", "aspect": "7:3"}, "aspect: '7:3' is not valid; use one of 21:9, 16:9"),
        ({"prompt": "a fox", "count": 5}, "count: 5 is not valid; use one of 1, 2, 3, 4"),
        ({"prompt": "a fox", "format": "gif"}, "format: 'gif' is not valid; use one of png, jpeg, webp"),
        ({"prompt": "a fox", "style": 7}, "unknown argument 'style'"),
        ({"aspect": "1:1"}, "prompt: required"),
        ({"prompt": "   "}, "prompt: must not be empty"),
        ({"prompt": "x" * 1001}, "prompt: at most 1000 characters"),
    ]

    async def body(server: Server, session: ClientSession) -> list[CallToolResult]:
        return [await server.call(session, "generate_image", arguments) for arguments, _ in calls]

    for result, (_, expected) in zip(Server(tmp_path, "-o", str(tmp_path / "out")).run(body), calls):
        assert result.is_error and expected in text_of(result)
    assert sandbox.stats.requests == []


def test_the_budget_covers_the_servers_lifetime_and_refuses_before_submitting(sandbox, tmp_path):
    async def body(server: Server, session: ClientSession) -> list[CallToolResult]:
        return [
            await server.call(session, "generate_image", {"prompt": "a fox", "count": 3}),
            await server.call(session, "generate_image", {"prompt": "a fox", "count": 2}),
            await server.call(session, "generate_image", {"prompt": "a fox", "count": 1}),
            await server.call(session, "model_info", {}),
        ]

    too_many, made, over, info = Server(tmp_path, "-o", str(tmp_path / "out"), "--max-images", "2").run(body)
    assert too_many.is_error and "--max-images 2" in text_of(too_many) and "nothing was submitted" in text_of(too_many)
    assert not made.is_error
    assert over.is_error and "only 0 of this server's --max-images 2" in text_of(over)
    assert info.structured_content["budget"] == {"max_cost": None, "spent_cost": 0.0, "max_images": 2, "spent_images": 2}
    assert posts(sandbox) == 1


def test_max_cost_refuses_with_the_estimate_and_sends_no_submit(sandbox, tmp_path):
    async def body(server: Server, session: ClientSession) -> CallToolResult:
        return await server.call(session, "generate_image", {"prompt": "a fox", "count": 2})

    refused = Server(tmp_path, "-o", str(tmp_path / "out"), "--max-cost", "0.05").run(body)
    assert refused.is_error and "$0.0780" in text_of(refused) and "--max-cost $0.0500" in text_of(refused)
    assert posts(sandbox) == 0 and sandbox.stats.submits == 0


def test_a_name_from_the_agent_cannot_leave_the_output_directory(sandbox, tmp_path):
    out = tmp_path / "out"
    names = ["../escaped", "/tmp/absolute", "sub/dir", "..", ".hidden", "C:drive", "{slug}/{id}", "a\\b"]

    async def body(server: Server, session: ClientSession) -> list[CallToolResult]:
        return [await server.call(session, "generate_image", {"prompt": "a fox", "name": name}) for name in names]

    for name, result in zip(names, Server(tmp_path, "-o", str(out)).run(body)):
        assert result.is_error and text_of(result).startswith(f"error: name: invalid name {name!r}"), text_of(result)
    assert sandbox.stats.requests == [] and list(out.iterdir()) == []
    assert {path.name for path in tmp_path.iterdir() if not path.name.startswith("server-")} <= {"config", "data", "out", "work"}


def test_inspect_reads_only_inside_the_allowed_directories(sandbox, tmp_path):
    out, elsewhere, extra = tmp_path / "out", tmp_path / "elsewhere", tmp_path / "extra"
    for directory in (out, elsewhere, extra):
        directory.mkdir()
    picture = Image.new("RGB", (64, 32), "orange")
    for path in (out / "inside.png", elsewhere / "secret.png", extra / "allowed.png"):
        picture.save(path)
    (out / "link.png").symlink_to(elsewhere / "secret.png")  # inside by name, outside in fact

    refused = [str(elsewhere / "secret.png"), str(out / "link.png"), str(out / ".." / "elsewhere" / "secret.png"), "/etc/hostname"]

    async def body(server: Server, session: ClientSession) -> tuple[list[CallToolResult], CallToolResult, CallToolResult]:
        outside = [await server.call(session, "inspect_image", {"path": path}) for path in refused]
        inside = await server.call(session, "inspect_image", {"path": str(out / "inside.png")})
        allowed = await server.call(session, "inspect_image", {"path": str(extra / "allowed.png")})
        return outside, inside, allowed

    outside, inside, allowed = Server(tmp_path, "-o", str(out), "--allow-read", str(extra)).run(body)
    for path, result in zip(refused, outside):
        assert result.is_error and f"path: {path!r} is outside the directories this server may read" in text_of(result)
        assert "nothing was read" in text_of(result)
    for result in (inside, allowed):
        assert not result.is_error, text_of(result)
        validate(result.structured_content, "inspect.json")
        assert result.structured_content["format"] == "png" and len(images_of(result)) == 1
    assert sandbox.stats.requests == []


def test_an_uncertain_submit_is_reported_and_never_sent_again(start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(drop_after_submit=1))

    async def body(server: Server, session: ClientSession) -> CallToolResult:
        return await server.call(session, "generate_image", {"prompt": "a fox whose answer is lost"})

    result = Server(tmp_path, "-o", str(tmp_path / "out")).run(body)
    assert result.is_error and text_of(result).startswith("uncertain submit:")
    assert "Do not submit this request again" in text_of(result)
    document = result.structured_content
    validate(document, "job.json")
    assert document["status"] == "uncertain" and document["request_id"] is None
    assert posts(sandbox) == 1 and sandbox.stats.submits == 1
    with History() as history:
        (entry,) = history.entries()
    assert entry.status == "uncertain" and entry.input["prompt"] == "a fox whose answer is lost"


def test_a_cancelled_call_leaves_its_job_running_and_names_it(start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=0.0, run_seconds=600.0)

    async def body(server: Server, session: ClientSession) -> tuple[str, CallToolResult]:
        submitted: list[str] = []
        with anyio.CancelScope() as scope:
            async def progress(done: float, total: float | None, message: str | None) -> None:
                if message and message.startswith("submitted job "):
                    submitted.append(message.removeprefix("submitted job "))
                    scope.cancel()

            await session.call_tool("generate_image", {"prompt": "a slow fox"}, progress_callback=progress)
        (request_id,) = submitted
        await server.wait_for_log(f"job {request_id} was not cancelled and keeps running")
        assert f'job_result {{"request_id": "{request_id}", "wait": true}}' in server.log
        later = await server.call(session, "job_result", {"request_id": request_id})
        return request_id, later

    request_id, later = Server(tmp_path, "-o", str(tmp_path / "out")).run(body)
    job = sandbox.job(request_id)
    assert job is not None and not job.cancelled and job.state == "in_progress"
    assert not later.is_error and later.structured_content["status"] == "in_progress"
    assert "job_result" in text_of(later)


def test_the_token_never_reaches_an_answer_or_the_log(start_sandbox, tmp_path):
    start_sandbox(faults=Faults(fail_jobs=True, token_echo=True))  # the API quotes the token in the job's error

    async def body(server: Server, session: ClientSession) -> CallToolResult:
        return await server.call(session, "generate_image", {"prompt": "a fox"})

    result = Server(tmp_path, "-o", str(tmp_path / "out")).run(body)  # run() checks every answer and the log
    assert result.is_error and result.structured_content["status"] == "failed" and "***" in text_of(result)


# -- the command itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["claude", "gemini", "cursor", "vscode"])
def test_print_config_gives_each_clients_own_format_with_the_servers_options(cli, tmp_path, monkeypatch, client):
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
    run = cli("mcp", "--print-config", client, "-o", "images", "--max-cost", "2", "--allow-read", str(tmp_path))
    assert run.exit_code == 0, run.stderr
    expected = ["mcp", "-o", str(Path("images").resolve()), "--allow-read", str(tmp_path.resolve()), "--max-cost", "2.0"]
    if client == "claude":
        assert run.stdout.startswith("claude mcp add nanobanana -- ")
        assert shlex.split(run.stdout)[-len(expected):] == expected
        assert "--scope project" in run.stderr
        return
    config = json.loads(run.stdout)
    entry = config["servers" if client == "vscode" else "mcpServers"]["nanobanana"]
    assert entry["args"][-len(expected):] == expected
    assert entry.get("type") == ("stdio" if client == "vscode" else None)
    assert {"gemini": "settings.json", "cursor": ".cursor/mcp.json", "vscode": ".vscode/mcp.json"}[client] in run.stderr


def test_help_documents_the_guarantees_and_the_setup(cli):
    run = cli("mcp", "--help")
    assert run.exit_code == 0
    for text in ("--print-config", "--allow-read", "--max-cost", "--max-images", "-o, --output-dir", "generate_image",
                 "pip install 'nanobanana-cli[mcp]'"):
        assert text in run.stdout


def test_without_the_sdk_the_server_says_how_to_install_it(cli, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "mcp" else real(name, *args))
    run = cli("mcp")
    assert run.exit_code == 1 and "pip install 'nanobanana-cli[mcp]'" in run.stderr and run.stdout == ""


@pytest.mark.parametrize(("args", "expected"), [
    (["--allow-read", "no-such-dir"], "--allow-read 'no-such-dir' is not a directory"),
    (["--sandbox", "--base-url", "http://127.0.0.1:9"], "--sandbox serves its own local API"),
    ([], "output directory 'a-file' is a file"),  # from $NANOBANANA_OUTPUT_DIR
])
def test_bad_options_stop_the_server_before_it_serves(cli, monkeypatch, args, expected):
    if not args:
        Path("a-file").write_text("not a directory")
        monkeypatch.setenv("NANOBANANA_OUTPUT_DIR", "a-file")
    run = cli("mcp", *args)
    assert run.exit_code == 2 and expected in run.stderr and run.stdout == ""
