"""Options shared by several commands, defined once, and the plumbing every API command needs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..api.models import ASPECT_RATIOS, OUTPUT_FORMATS
from ..render.output import Mode, Output

if TYPE_CHECKING:
    from ..api.client import Client
    from ..stores.history import History
    from ..engine.lifecycle import DownloadPlan

TokenOpt = Annotated[
    Optional[str],
    typer.Option("--token", help="API token (default: $RUNCOMFY_API_TOKEN, then $YOUR_API_TOKEN).", show_default=False),
]
BaseUrlOpt = Annotated[
    Optional[str],
    typer.Option("--base-url", help="API root (default: $NANOBANANA_BASE_URL or https://model-api.runcomfy.net).", show_default=False),
]
RetriesOpt = Annotated[
    Optional[int],
    typer.Option(
        "--retries", min=0, max=20, show_default="4, or $NANOBANANA_RETRIES",
        help="Retries for transient failures (429, 5xx, timeouts); a submit is repeated only when surely not received.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print only paths (or ids) on stdout, nothing on stderr but errors.")]
OutputDirOpt = Annotated[
    Optional[Path],
    typer.Option("-o", "--output-dir", help="Where to save images.", file_okay=False, show_default="current directory"),
]
TimeoutOpt = Annotated[
    Optional[float],
    typer.Option("--timeout", min=0, help="Stop waiting after this many seconds (exit 6; the job keeps running).", show_default="no limit"),
]


def make_output(json_: bool, quiet: bool) -> Output:
    if json_ and quiet:
        raise typer.BadParameter("--json and --quiet cannot be used together", param_hint="--json/--quiet")
    return Output(Mode.JSON if json_ else Mode.QUIET if quiet else Mode.HUMAN)


def setting(key: str, flag: object = None) -> Any:
    """A default the user can set once: flag > environment > config file > built-in."""
    from ..stores.settings import ConfigStore

    return ConfigStore().resolve(key, flag).value


def generation_defaults(aspect: Enum | None, image_format: Enum | None, num_images: int | None) -> dict[str, Any]:
    """The model options from flags, else environment, else config file, else the schema's defaults."""
    return {
        "aspect_ratio": setting("aspect_ratio", aspect.value if aspect else None),
        "output_format": setting("output_format", image_format.value if image_format else None),
        "num_images": setting("num_images", num_images),
    }


def download_plan(output_dir: Path | None) -> DownloadPlan:
    """Where and how large: the output directory is created and proved writable before any submit."""
    from ..engine.downloads import prepare_output_dir
    from ..engine.lifecycle import DownloadPlan

    return DownloadPlan(prepare_output_dir(setting("output_dir", output_dir)), setting("max_download_mb") * 1024 * 1024)


def make_client(token: str | None, base_url: str | None, output: Output, retries: int | None = None) -> Client:
    from .. import debugging
    from ..api.client import Client
    from ..stores.settings import resolve_base_url, resolve_retries, resolve_token
    from ..api.retry import RetryPolicy

    resolved = resolve_token(token)
    return Client(
        resolved.token,
        resolve_base_url(base_url),
        retry=RetryPolicy(retries=resolve_retries(retries)),
        on_retry=output.retry_notice,
        debug_log=debugging.log if debugging.enabled() else None,
    )


AspectRatio = Enum("AspectRatio", {f"r{ratio.replace(':', '_')}": ratio for ratio in ASPECT_RATIOS}, type=str)  # type: ignore[misc]
ImageFormat = Enum("ImageFormat", {name: name for name in (*OUTPUT_FORMATS, "jpg")}, type=str)  # type: ignore[misc]

AspectOpt = Annotated[
    Optional[AspectRatio],
    typer.Option("-a", "--aspect", help="Aspect ratio W:H.", show_default="16:9"),
]
FormatOpt = Annotated[
    Optional[ImageFormat],
    typer.Option("-f", "--format", help="Image format (jpg means jpeg).", case_sensitive=False, show_default="png"),
]
NumImagesOpt = Annotated[
    Optional[int],
    typer.Option("-n", "--num-images", help="How many images: 1, 2, 3 or 4.", show_default="1"),
]


SandboxOpt = Annotated[bool, typer.Option("--sandbox", help="Run against a local sandbox API: no account, no credits.")]
LastOpt = Annotated[bool, typer.Option("--last", help="Act on the most recent job in the history (the default with no id).")]


def open_history(output: Output) -> History:
    from ..stores.history import History

    return History(warn=output.warn)


def job_ids_or_last(request_ids: list[str], last: bool, base_url: str | None, history: History) -> list[str]:
    """The ids given, validated; or, with none (or --last), the newest job sent to this API."""
    from ..api.client import check_base_url
    from ..stores.settings import resolve_base_url
    from ..errors import UsageError
    from ..api.models import validate_request_id

    if request_ids and last:
        raise UsageError("pass request ids or --last, not both")
    if request_ids:
        return list(dict.fromkeys(validate_request_id(request_id) for request_id in request_ids))
    api = check_base_url(resolve_base_url(base_url))
    entry = history.last(api)
    if entry is None:
        raise UsageError(f"no request id given and no job in the history for {api}", hint="pass a request id")
    return [entry.request_id]


@contextmanager
def api_client(
    token: str | None, base_url: str | None, output: Output, *, sandbox: bool, retries: int | None = None
) -> Iterator[Client]:
    """A client for the real API, or for a sandbox started in this process for a one-shot offline run."""
    if not sandbox:
        with make_client(token, base_url, output, retries) as client:
            yield client
        return
    from ..api.client import Client
    from ..sandbox import Sandbox

    with Sandbox(queue_seconds=0.5, run_seconds=1.5) as server:
        output.info(f"sandbox: serving a local RunComfy API at {server.base_url} (no account, no credits)")
        with Client(server.token, server.base_url, on_retry=output.retry_notice) as client:
            yield client


DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Validate and print the request that would be sent; send nothing.")]
CurlOpt = Annotated[bool, typer.Option("--curl", help="With --dry-run, print an equivalent curl command instead.")]
OpenOpt = Annotated[bool, typer.Option("--open", help="Open the saved images with the system viewer when done.")]


def print_dry_run(output: Output, requests: list[tuple[int | None, Any]], base_url: str | None, curl: bool) -> None:
    """Show each submit exactly as it would be sent (token redacted), without contacting the API."""
    import json

    from ..api.client import curl_command, describe_submit
    from ..stores.settings import resolve_base_url

    api = resolve_base_url(base_url)
    for position, (line, generation) in enumerate(requests):
        request = describe_submit(api, generation)
        if output.mode.value == "json":
            output.result_json({**request, "line": line} if line is not None else request, compact=len(requests) > 1)
            continue
        if position:
            output.result_line("")
        if line is not None:
            output.result_line(f"# line {line}")
        if curl:
            output.result_line(curl_command(request))
            continue
        output.result_line(f"{request['method']} {request['url']}")
        for name, value in request["headers"].items():
            output.result_line(f"{name}: {value}")
        output.result_line("")
        output.result_line(json.dumps(request["body"], indent=2))
    output.info(f"dry run: {len(requests)} request(s) shown, nothing sent")


def open_in_viewer(output: Output, paths: list[str]) -> None:
    """Hand the saved images to the desktop's viewer; say so instead when there is no desktop."""
    import os
    import sys

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        output.note("--open: no display found (DISPLAY/WAYLAND_DISPLAY unset); not opening the images")
        return
    for path in paths:
        if typer.launch(path) != 0:
            output.warn(f"--open: the system viewer could not open {path}")
