"""`nanobanana sandbox`: a local RunComfy Model API for trying the tool and rehearsing CI scripts."""

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import UsageError
from ..render.output import Output

if TYPE_CHECKING:
    from ..sandbox.server import Sandbox

# Where `--help` puts the fault list, generated from the sandbox's fault table.
FAULT_LIST_MARKER = "{fault list}"


def show_help_with_faults(ctx: typer.Context, value: bool) -> None:
    """`--help`, with the fault list filled in only now: building the app (which every command and
    every --help does) must not import the sandbox."""
    if not value or ctx.resilient_parsing:
        return
    from ..sandbox.faults import fault_help

    # "\b" keeps the list's lines as they are instead of rewrapping them into one paragraph
    ctx.command.help = (ctx.command.help or "").replace(FAULT_LIST_MARKER, "\b\n" + fault_help())
    typer.echo(ctx.get_help())
    ctx.exit()


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
        typer.Option("--fault", help="Inject a failure, NAME=VALUE, repeatable (see the list above).", show_default=False),
    ] = None,
    tls_cert: Annotated[
        Optional[Path],
        typer.Option("--tls-cert", help="Serve https with this PEM certificate (with --tls-key).", show_default=False),
    ] = None,
    tls_key: Annotated[Optional[Path], typer.Option("--tls-key", help="The certificate's PEM private key.", show_default=False)] = None,
    schema_file: Annotated[
        Path | None,
        typer.Option(
            "--schema-file", show_default=False,
            help="Serve these catalog entries (JSON: one, a list, or {\"models\": [...]}) instead of the bundled "
            "snapshot's for their model ids.",
        ),
    ] = None,
    image_file: Annotated[
        Path | None,
        typer.Option(
            "--image-file", show_default=False,
            help="Serve this file's bytes, exactly as they are, as every output image (to see how a client "
            "handles a crafted or malformed file).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Do not log each request on stderr.")] = False,
    show_help: Annotated[
        bool,
        typer.Option(
            "-h", "--help", is_eager=True, expose_value=False, callback=show_help_with_faults,
            help="Show this message and exit.",
        ),
    ] = False,
) -> None:
    """Serve a faithful local RunComfy Model API (paths, auth, job lifecycle, errors, real images).

    It prints the `export` lines that point nanobanana (or curl) at it, then logs each request
    until Ctrl-C. With --tls-cert/--tls-key the API and the image host speak https, and a third
    line exports REQUESTS_CA_BUNDLE so clients trust the certificate.

    It serves every nano-banana family model with the bundled snapshot's schema, or a schema
    file's (--schema-file); edits read data URIs and files of its own image host, never the
    internet.

    Faults, with --fault NAME=VALUE; a counted fault (N) hits the first N matching requests.
    A prompt containing "sandbox:fail" always fails.

    {fault list}

    Examples:

      nanobanana sandbox

      nanobanana sandbox --port 0 --run-seconds 5 --fault rate-limit=2 --fault retry-after=0

      nanobanana sandbox --schema-file my-schemas.json

      nanobanana sandbox --image-file broken.webp --fault result-field=cost:NaN
    """
    from ..api.urls import is_loopback_host
    from ..sandbox import Faults
    from ..sandbox.models import load_models

    if not is_loopback_host(host):
        raise UsageError(f"refusing to serve the sandbox on {host!r}", hint="use a loopback address such as 127.0.0.1")
    try:
        faults = Faults.parse(fault or [])
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    models = load_models(schema_file)
    image_bytes = _read_image_file(image_file) if image_file is not None else None
    output = Output()
    log = None if quiet else (lambda line: output.info(line))
    server = _open_sandbox(
        host, port, tls_cert, tls_key, asset_port=asset_port, token=token, queue_seconds=queue_seconds,
        run_seconds=run_seconds, faults=faults, log=log, asset_padding_bytes=int(asset_padding_mb * 1024 * 1024),
        models=models, image_bytes=image_bytes,
    )
    with server:
        output.result_line(f"export NANOBANANA_BASE_URL={server.base_url}")
        output.result_line(f"export RUNCOMFY_API_TOKEN={server.token}")
        if tls_cert:
            output.result_line(f"export REQUESTS_CA_BUNDLE={tls_cert.resolve()}")
        output.info(f"sandbox API on {server.base_url}, images on {server.asset_base_url}; Ctrl-C stops it")
        _note_missing_pillow(output)
        try:
            # A wait without a timeout once missed a Ctrl-C under load; waking each second re-checks
            # for a pending signal, so one Ctrl-C always stops it.
            forever = threading.Event()
            while not forever.wait(1.0):
                pass
        except KeyboardInterrupt:
            output.info("sandbox stopped")


def _open_sandbox(host: str, port: int, tls_cert: Path | None, tls_key: Path | None, **options: Any) -> "Sandbox":
    """The sandbox, listening; every way that can fail as a UsageError naming the flag to change."""
    from ..sandbox import Sandbox, TLSConfig

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together", hint="give both, or neither for plain http")
    tls = TLSConfig(tls_cert, tls_key) if tls_cert and tls_key else None
    if tls:
        try:
            tls.server_context()
        except OSError as exc:  # ssl.SSLError included: not PEM, or a key that does not match
            raise UsageError(f"cannot serve https with {tls_cert} and {tls_key}: {exc}", hint="pass a PEM certificate and its key") from None
    try:
        return Sandbox(host=host, port=port, tls=tls, **options)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="pick another --port, or --port 0") from None


def _read_image_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the image file {path}: {exc.strerror or exc}", hint="give a readable file") from None


def _note_missing_pillow(output: Output) -> None:
    from ..sandbox.images import INSTALL_HINT, pillow_available

    if not pillow_available():
        output.info(f"Pillow is not installed: PNG only, JPEG and WebP submits are refused ({INSTALL_HINT})")
