"""`nanobanana mcp`: serve nanobanana's tools to AI agents over MCP, or print the config that registers it."""

import importlib.util
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import NanobananaError
from ..render.output import Output
from .options import BaseUrlOpt, MetadataOpt, OutputDirOpt, RetriesOpt

McpClient = Enum("McpClient", {name: name for name in ("claude", "gemini", "cursor", "vscode")}, type=str)  # type: ignore[misc]
INSTALL_HINT = "install the extra: pip install 'nanobanana-cli[mcp]' (or pipx inject nanobanana-cli mcp)"


def mcp_serve(
    output_dir: OutputDirOpt = None,
    allow_read: Annotated[list[Path] | None, typer.Option(
        "--allow-read", metavar="DIR", show_default="the current directory",
        help="A directory whose files tools may read (inspect_image), besides the output directory; repeatable. "
        "Symbolic links are resolved before the check.",
    )] = None,
    max_cost: Annotated[float | None, typer.Option(
        "--max-cost", min=0, metavar="USD", show_default=False,
        help="Refuse any submit that would bring the estimated spending (catalog price × images) of this server, "
        "over its whole run, above USD.",
    )] = None,
    max_images: Annotated[int | None, typer.Option(
        "--max-images", min=0, metavar="N", show_default=False,
        help="Refuse any submit that would bring the images made by this server, over its whole run, above N.",
    )] = None,
    metadata: MetadataOpt = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0, show_default=False,
        help="Stop waiting on a job after this many seconds (the job keeps running; job_result fetches it).",
    )] = None,
    sandbox: Annotated[bool, typer.Option(
        "--sandbox", help="Serve against a local sandbox API started with the server: no account, no credits.",
    )] = False,
    base_url: BaseUrlOpt = None,
    retries: RetriesOpt = None,
    print_config: Annotated[McpClient | None, typer.Option(
        "--print-config", metavar="CLIENT", case_sensitive=False, show_default=False,
        help="Print the snippet that registers this server (with the options given here) with claude (Claude Code), "
        "gemini (Gemini CLI), cursor or vscode, and exit.",
    )] = None,
) -> None:
    """Serve nanobanana's tools to AI agents over the Model Context Protocol (stdio), with the CLI's guarantees.

    Tools: generate_image (prompt, model, aspect, format, count, resolution, seed, name, wait),
    edit_image (the same, and images: local files or https URLs), job_status, job_result,
    cancel_job, list_jobs, inspect_image and model_info. Answers carry the job document of
    `--json` (paths, request id, status, cost) and a small thumbnail of each image (with Pillow).

    The guarantees are the CLI's: every submit is recorded in the history before it is sent and
    never sent twice (an uncertain one is reported, not retried); --max-cost and --max-images
    bound the whole run and refuse before anything is sent; images are written only in the
    output directory (a name from the agent cannot leave it); files (edit_image's input images
    too) are read only in the output directory and the --allow-read ones; the token never
    appears in an answer or the log (stderr).
    Progress is sent while a job waits and runs. A cancelled call does not cancel its job: the
    log names it, and job_result fetches it later.

    Install the SDK with: pip install 'nanobanana-cli[mcp]'. Register the server with a client
    with --print-config, which prints that client's snippet with the options given alongside.
    The token is the one every command uses (`nanobanana auth login`, or $RUNCOMFY_API_TOKEN
    in the client's environment); it is never written into a snippet.

    Examples:

      nanobanana mcp --print-config claude -o ~/Pictures/nb --max-cost 2

      nanobanana mcp --print-config vscode -o images --max-images 20

      nanobanana mcp --sandbox -o /tmp/nb
    """
    output = Output()
    if print_config is not None:
        _print_config(output, print_config.value, _server_args(
            output_dir, allow_read or [], max_cost, max_images, metadata.value if metadata else None, timeout, sandbox,
            base_url, retries,
        ))
        return
    if importlib.util.find_spec("mcp") is None:
        raise NanobananaError("nanobanana mcp needs the MCP Python SDK, which is not installed", hint=INSTALL_HINT)
    from ..mcp.adapter import Backend, Options

    # The options are checked before the SDK (a second or more of imports) loads.
    backend = Backend(Options(
        output_dir=output_dir, allow_read=tuple(allow_read or ()), max_cost=max_cost, max_images=max_images,
        metadata=metadata.value if metadata else None, timeout=timeout, base_url=base_url, retries=retries, sandbox=sandbox,
    ))
    try:
        from ..mcp.server import serve

        serve(backend)
    finally:
        backend.close()


def _server_args(
    output_dir: Path | None, allow_read: list[Path], max_cost: float | None, max_images: int | None, metadata: str | None,
    timeout: float | None, sandbox: bool, base_url: str | None, retries: int | None,
) -> list[str]:
    """The options given here, as the server's arguments; directories absolute, since clients start it elsewhere."""
    args = ["-o", str(output_dir.expanduser().resolve())] if output_dir is not None else []
    for directory in allow_read:
        args += ["--allow-read", str(directory.expanduser().resolve())]
    for flag, value in (("--max-cost", max_cost), ("--max-images", max_images), ("--metadata", metadata),
                        ("--timeout", timeout), ("--base-url", base_url), ("--retries", retries)):
        if value is not None:
            args += [flag, str(value)]
    return args + (["--sandbox"] if sandbox else [])


def _print_config(output: Output, client: str, server_args: list[str]) -> None:
    from ..mcp.clients import snippet

    text, where = snippet(client, server_args)
    for line in text.splitlines():
        output.result_line(line)
    output.info(f"{where}.")
    if "-o" not in server_args:
        output.info("Images go to the server's current directory, which the client chooses; pass -o DIR to fix it.")
