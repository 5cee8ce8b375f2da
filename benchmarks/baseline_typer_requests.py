"""A reference, not a rival: the requests script (contender 2) behind a one-command Typer app.

nanobanana must parse its command line with Typer before it can submit; a bare script need not.
This is the same `run_job` as `baseline_requests.py`, started the way nanobanana starts: Typer
configured as nanobanana's (`rich_markup_mode=None`, no pretty exceptions), `requests` imported in
the command, the same garbage-collector settings. What it adds to the script's overhead is what
any Typer CLI pays before its first request; what nanobanana adds to it is nanobanana's own.

Usage: python baseline_typer_requests.py PROMPT NUM_IMAGES OUTPUT_DIR [--poll SECONDS]
(with NANOBANANA_BASE_URL and RUNCOMFY_API_TOKEN set).
"""

import gc
import os
import sys

gc.set_threshold(50_000, *gc.get_threshold()[1:])  # nanobanana's console script starts with this: a fair race

import typer

app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)


@app.command()
def generate(
    prompt: str = typer.Argument(help="What to draw."),
    num_images: int = typer.Argument(help="How many images."),
    out: str = typer.Argument(help="Where to save them."),
    poll: float = typer.Option(0.25, "--poll", help="Seconds between polls of /result."),
) -> None:
    """Submit, wait, download, as the requests script does."""
    import requests
    from baseline_requests import run_job

    with requests.Session() as session:
        try:
            typer.echo(run_job(session, prompt, num_images, out, poll))
        except RuntimeError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(5) from None


if __name__ == "__main__":
    try:
        app()
    except SystemExit as stop:  # how a Typer app ends; then the shutdown nanobanana's entry point has
        sys.stdout.flush()  # (output flushed, no module teardown): a fair race
        sys.stderr.flush()
        os._exit(stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1)
