"""The MCP protocol side: the SDK's low-level server over stdio, around the tools in tools.py.

Imported only by `nanobanana mcp`, so the SDK (and pydantic, anyio, starlette under it) never
loads for any other command. Each tool runs in a worker thread, since the engine is synchronous;
its progress comes back to the event loop as MCP progress notifications. A client that cancels
a call stops the waiting, never the job: the log names the job and how to fetch it.
"""

from __future__ import annotations

import base64
import contextlib
import time
from functools import partial
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from .. import __version__
from .adapter import Backend, Call
from .thumbnails import MIME_TYPE
from .tools import Tool, ToolAnswer, build_tools, document_text, run_tool

# Progress notifications: a new state at once; the same state (a queue position, bytes received)
# at most this often, so a fast poll or a download does not flood the client.
PROGRESS_INTERVAL = 1.0
INSTRUCTIONS = (
    "nanobanana generates images with Google's nano-banana model through RunComfy's API. Each submit is billed, "
    "recorded before it is sent and never sent twice. Files are saved only in the server's output directory and "
    "read only from the directories the user allowed. A cancelled call leaves its job running: fetch it with job_result."
)


class ProgressRelay:
    """Progress from a worker thread to the call's client, as notifications with an increasing count."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.count = 0
        self.last_key: str | None = None
        self.last_sent = 0.0

    def update(self, key: str, message: str) -> None:
        now = time.monotonic()
        if key == self.last_key and now - self.last_sent < PROGRESS_INTERVAL:
            return
        self.last_key, self.last_sent = key, now
        self.count += 1
        # The call was cancelled, or the server is closing: nobody is listening, and the job must not stop for it.
        with contextlib.suppress(Exception):
            anyio.from_thread.run(self.session.report_progress, float(self.count), None, message)


def _result(backend: Backend, answer: ToolAnswer) -> types.CallToolResult:
    """The answer on the wire, with the token masked out of every byte of text."""
    content: list[Any] = [types.TextContent(text=backend.mask(answer.summary))]
    document = backend.mask_document(answer.document) if answer.document is not None else None
    if document is not None:
        content.append(types.TextContent(text=document_text(document)))  # for clients that do not read structured content
    content += [types.ImageContent(data=base64.b64encode(image).decode("ascii"), mime_type=MIME_TYPE) for image in answer.thumbnails]
    return types.CallToolResult(content=content, structured_content=document, is_error=answer.error)


def _listing(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name, title=tool.title, description=tool.description, input_schema=tool.input_schema,
        annotations=types.ToolAnnotations(
            title=tool.title, read_only_hint=tool.read_only, destructive_hint=tool.destructive,
            idempotent_hint=tool.idempotent, open_world_hint=tool.open_world,
        ),
    )


def build_server(backend: Backend) -> Server[Any]:
    tools = build_tools(backend)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[_listing(tool) for tool in tools.values()])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = tools.get(params.name)
        if tool is None:
            return _result(backend, ToolAnswer(f"error: unknown tool {params.name!r}: this server has {', '.join(tools)}", error=True))
        relay = ProgressRelay(ctx.session)
        call = Call(tool.name, relay.update, backend.log)
        try:
            # Abandoned on cancel: the thread sees the stop, ends its wait and leaves the job alone.
            answer = await anyio.to_thread.run_sync(
                partial(run_tool, tool, backend, params.arguments or {}, call), abandon_on_cancel=True
            )
        except anyio.get_cancelled_exc_class():
            call.cancel()
            raise
        if answer.error:
            backend.log(f"{tool.name}: {answer.summary}")
        return _result(backend, answer)

    return Server(
        "nanobanana", version=__version__, title="nanobanana", instructions=INSTRUCTIONS,
        on_list_tools=list_tools, on_call_tool=call_tool,
    )


async def _serve_stdio(backend: Backend) -> None:
    server = build_server(backend)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def serve(backend: Backend) -> None:
    """Serve MCP on stdin/stdout until the client closes it."""
    budget = backend.budget.to_dict()
    limits = [f"--max-cost ${budget['max_cost']:.4f}" if budget["max_cost"] is not None else "",
              f"--max-images {budget['max_images']}" if budget["max_images"] is not None else ""]
    backend.log(
        f"{__version__} serving MCP on stdio for {backend.base_url}; images go to {backend.output_dir}; files may be "
        f"read from {', '.join(map(str, backend.readable.directories))}; budget: {' '.join(filter(None, limits)) or 'none'}"
    )
    anyio.run(_serve_stdio, backend)
