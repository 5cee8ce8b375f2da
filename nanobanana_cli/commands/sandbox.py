"""`nanobanana sandbox`: a local RunComfy Model API for trying the tool and rehearsing CI scripts."""

from __future__ import annotations

import threading
from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..render.output import Output


def sandbox_serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="API port (0 picks a free one).")] = 8765,
    asset_port: Annotated[int, typer.Option("--asset-port", min=0, max=65535, help="Port of the separate image host (0 picks a free one).")] = 0,
    token: Annotated[str, typer.Option("--token", help="The bearer token the sandbox accepts.")] = "sandbox-token",
    queue_seconds: Annotated[float, typer.Option("--queue-seconds", min=0, help="How long each job stays in_queue.")] = 1.0,
    run_seconds: Annotated[float, typer.Option("--run-seconds", min=0, help="How long each job stays in_progress.")] = 2.0,
    asset_padding_mb: Annotated[
        float, typer.Option("--asset-padding-mb", min=0, help="Grow each PNG by this many MB (for download tests).")
    ] = 0.0,
    fault: Annotated[
        Optional[list[str]],
        typer.Option("--fault", help="Inject a failure, NAME=VALUE, repeatable (see the list below).", show_default=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Do not log each request on stderr.")] = False,
) -> None:
    """Serve a faithful local RunComfy Model API (paths, auth, job lifecycle, errors, real images).

    It prints the two `export` lines that point nanobanana (or curl) at it, then logs each request
    until Ctrl-C.

    Faults, each for the first N matching requests: rate-limit=N (429 with Retry-After, set by
    retry-after=S), server-error=N (502 HTML on polls), submit-unavailable=N (503 on submit),
    drop-after-submit=N (job created, connection dropped), drop-connection=N (polls),
    unknown-status=N, malformed-json=N, redirect-result=N, truncate-download=N, not-an-image=N,
    slow-seconds=S (with slow-requests=N to slow only the first N), fail-jobs=1. A prompt containing "sandbox:fail" always fails.

    Examples:

      nanobanana sandbox

      nanobanana sandbox --port 0 --run-seconds 5 --fault rate-limit=2 --fault retry-after=0
    """
    from ..api.urls import is_loopback_host
    from ..sandbox import Faults, Sandbox

    if not is_loopback_host(host):
        raise UsageError(f"refusing to serve the sandbox on {host!r}", hint="use a loopback address such as 127.0.0.1")
    try:
        faults = Faults.parse(fault or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    output = Output()
    log = None if quiet else (lambda line: output.info(line))
    try:
        server = Sandbox(
            host=host, port=port, asset_port=asset_port, token=token, queue_seconds=queue_seconds,
            run_seconds=run_seconds, faults=faults, log=log,
            asset_padding_bytes=int(asset_padding_mb * 1024 * 1024),
        )
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="pick another --port, or --port 0") from None
    with server:
        output.result_line(f"export NANOBANANA_BASE_URL={server.base_url}")
        output.result_line(f"export RUNCOMFY_API_TOKEN={server.token}")
        output.info(f"sandbox API on {server.base_url}, images on {server.asset_base_url}; Ctrl-C stops it")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            output.info("sandbox stopped")
