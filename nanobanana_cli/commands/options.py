"""Options shared by several commands, defined once, and the small steps every command shares.

Commands parse their arguments, build a `Settings` snapshot, call the library and hand what it
returns to the `Output`; errors propagate to `main()`.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..api.schema import TEXT_TO_IMAGE as SCHEMA
from ..errors import AlreadyReported, NanobananaError, UsageError
from ..render.output import Mode, Output

if TYPE_CHECKING:
    from ..api.models import GenerationInput
    from ..engine.lifecycle import DownloadPlan
    from ..stores.history import History
    from ..stores.settings import Settings

TokenOpt = Annotated[
    Optional[str],
    typer.Option(
        "--token", show_default=False,
        help="API token (default: $RUNCOMFY_API_TOKEN, $YOUR_API_TOKEN, $RUNCOMFY_TOKEN, then the stored token).",
    ),
]
BaseUrlOpt = Annotated[
    Optional[str],
    typer.Option("--base-url", help="API root (default: $NANOBANANA_BASE_URL, config, or https://model-api.runcomfy.net).", show_default=False),
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

AspectRatio = Enum("AspectRatio", {f"r{ratio.replace(':', '_')}": ratio for ratio in SCHEMA["aspect_ratio"].choices}, type=str)  # type: ignore[misc]
ImageFormat = Enum(  # type: ignore[misc]
    "ImageFormat", {name: name for name in (*SCHEMA["output_format"].choices, *SCHEMA["output_format"].aliases)}, type=str
)

AspectOpt = Annotated[
    Optional[AspectRatio],
    typer.Option("-a", "--aspect", help=SCHEMA["aspect_ratio"].description, show_default=SCHEMA["aspect_ratio"].default),
]
FormatOpt = Annotated[
    Optional[ImageFormat],
    typer.Option(
        "-f", "--format", help="Image format (jpg means jpeg).", case_sensitive=False,
        show_default=SCHEMA["output_format"].default,
    ),
]
NumImagesOpt = Annotated[
    Optional[int],
    typer.Option(
        "-n", "--num-images", help=f"How many images: {SCHEMA['num_images'].choices_spoken}.",
        show_default=str(SCHEMA["num_images"].default),
    ),
]
SandboxOpt = Annotated[bool, typer.Option("--sandbox", help="Run against a local sandbox API: no account, no credits.")]
LastOpt = Annotated[bool, typer.Option("--last", help="Act on the most recent job in the history (the default with no id).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Validate and print the request that would be sent; send nothing.")]
CurlOpt = Annotated[bool, typer.Option("--curl", help="With --dry-run, print an equivalent curl command instead.")]
OpenOpt = Annotated[bool, typer.Option("--open", help="Open the saved images with the system viewer when done.")]


def make_output(json_: bool, quiet: bool) -> Output:
    if json_ and quiet:
        raise UsageError("--json and --quiet cannot be used together", hint="pick one")
    return Output(Mode.JSON if json_ else Mode.QUIET if quiet else Mode.HUMAN)


def command_settings(token: str | None = None, **flags: Any) -> Settings:
    """The command's settings snapshot; enum flags (aspect, format) are reduced to their values."""
    from ..stores.settings import Settings

    values = {key: value.value if isinstance(value, Enum) else value for key, value in flags.items()}
    return Settings(values, token_flag=token)


def download_plan(settings: Settings) -> DownloadPlan:
    """Where and how large: the output directory is created and proved writable before any submit."""
    from ..engine.downloads import prepare_output_dir
    from ..engine.lifecycle import DownloadPlan

    return DownloadPlan(prepare_output_dir(settings["output_dir"]), settings["max_download_mb"] * 1024 * 1024)


def open_history(output: Output) -> History:
    from ..stores.history import History

    return History(warn=output.warn)


def job_ids_or_last(request_ids: list[str], last: bool, settings: Settings, history: History) -> list[str]:
    """The ids given, validated; or, with none (or --last), the newest job sent to this API."""
    from ..api.models import validate_request_id

    if request_ids and last:
        raise UsageError("pass request ids or --last, not both")
    if request_ids:
        return list(dict.fromkeys(validate_request_id(request_id) for request_id in request_ids))
    entry = history.last(settings.base_url)
    if entry is None:
        raise UsageError(f"no request id given and no job in the history for {settings.base_url}", hint="pass a request id")
    return [entry.request_id]


def token_reference(settings: Settings) -> str:
    """How a printed shell command should refer to the active token, never the token itself."""
    from ..stores.tokens import TOKEN_ENV_VARS

    try:
        source = settings.token().source
    except NanobananaError:
        return "$RUNCOMFY_API_TOKEN"
    return f"${source}" if source in TOKEN_ENV_VARS else "$(nanobanana auth token)"


def show_dry_run(output: Output, settings: Settings, requests: list[tuple[int | None, GenerationInput]], curl: bool) -> None:
    from ..api.client import describe_submit

    described = [(line, describe_submit(settings.base_url, generation)) for line, generation in requests]
    output.dry_run(described, curl=curl, token_reference=token_reference(settings))


def fail_with_first(errors: list[NanobananaError], *, already_shown: bool) -> None:
    """End the command with the first error's exit code (and message, unless it was shown per item)."""
    if not errors:
        return
    if already_shown:
        raise AlreadyReported(errors[0].exit_code)
    raise errors[0]


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
