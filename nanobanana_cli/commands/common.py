"""Options shared by several commands, defined once, and the plumbing every API command needs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..models import ASPECT_RATIOS, OUTPUT_FORMATS
from ..output import Mode, Output

if TYPE_CHECKING:
    from ..client import Client
    from ..jobs import DownloadPlan

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
    from ..config import ConfigStore

    return ConfigStore().resolve(key, flag).value


def download_plan(output_dir: Path | None) -> DownloadPlan:
    """Where and how large: the output directory is created and proved writable before any submit."""
    from ..download import prepare_output_dir
    from ..jobs import DownloadPlan

    return DownloadPlan(prepare_output_dir(setting("output_dir", output_dir)), setting("max_download_mb") * 1024 * 1024)


def make_client(token: str | None, base_url: str | None, output: Output, retries: int | None = None) -> Client:
    from .. import debugging
    from ..client import Client
    from ..config import resolve_base_url, resolve_retries, resolve_token
    from ..retry import RetryPolicy

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
