"""`nanobanana mcp --print-config CLIENT`: the snippet that registers the server, in each client's own format.

No SDK is needed to print one: setting a client up comes before installing anything else.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

SERVER_NAME = "nanobanana"
CLIENTS = ("claude", "gemini", "cursor", "vscode")
WHERE = {
    "claude": "Claude Code: run this once; add --scope project to share it in the project's .mcp.json, or --scope user "
    "for every project",
    "gemini": "Gemini CLI: merge this into ~/.gemini/settings.json (every project) or .gemini/settings.json (this project)",
    "cursor": "Cursor: merge this into .cursor/mcp.json in the project, or ~/.cursor/mcp.json for every project",
    "vscode": "VS Code: merge this into .vscode/mcp.json in the workspace, or into the user configuration "
    "(MCP: Open User Configuration)",
}


def launcher() -> list[str]:
    """How a client starts this nanobanana: the console script by its full path (GUI clients often
    have a shorter PATH than the shell), or this Python with `-m` when there is no script to name."""
    running = Path(sys.argv[0])
    if running.name == "nanobanana" and running.is_file():
        return [str(running.absolute())]
    script = shutil.which("nanobanana")
    return [script] if script else [sys.executable, "-m", "nanobanana_cli"]


def snippet(client: str, server_args: list[str], command: list[str] | None = None) -> tuple[str, str]:
    """(the snippet, where it goes) for `client`, starting `nanobanana mcp SERVER_ARGS`."""
    argv = [*(command or launcher()), "mcp", *server_args]
    program, args = argv[0], argv[1:]
    if client == "claude":
        return f"claude mcp add {SERVER_NAME} -- {shlex.join([program, *args])}", WHERE[client]
    entry = {"command": program, "args": args}
    if client == "vscode":
        return json.dumps({"servers": {SERVER_NAME: {"type": "stdio", **entry}}}, indent=2), WHERE[client]
    return json.dumps({"mcpServers": {SERVER_NAME: entry}}, indent=2), WHERE[client]
