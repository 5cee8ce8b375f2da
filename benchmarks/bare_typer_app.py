"""The start-up floor: a one-command Typer app configured like nanobanana's.

Same Typer, same formatter (`rich_markup_mode=None`: plain Click help, no Rich import) and same
`pretty_exceptions_enable=False`, so `--help` here costs what any Typer CLI of this kind must pay.
`requests` is imported inside the command, as nanobanana does, so `--help` does not pay for it
but a real command does.

    python bare_typer_app.py --help
    python bare_typer_app.py "a prompt" --dry-run     # print the submit request, like generate --dry-run
    python bare_typer_app.py REQUEST_ID --status      # one GET of /status, like `nanobanana status ID`
"""

import gc
import json
import os
import sys

gc.set_threshold(50_000, *gc.get_threshold()[1:])  # nanobanana's console script starts with this: a fair race

import typer

app = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False)


@app.command()
def main(
    target: str = typer.Argument(help="A prompt (with --dry-run) or a request id (with --status)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the submit request instead of sending it."),
    status: bool = typer.Option(False, "--status", help="Show the status of request TARGET."),
) -> None:
    """Submit a prompt, or show a request's status."""
    import requests

    base = os.environ.get("NANOBANANA_BASE_URL", "https://model-api.runcomfy.net").rstrip("/")
    if status:
        answer = requests.get(
            f"{base}/v1/requests/{target}/status",
            headers={"Authorization": f"Bearer {os.environ['RUNCOMFY_API_TOKEN']}"},
            timeout=(5, 30),
        )
        answer.raise_for_status()
        typer.echo(answer.json()["status"])
    elif dry_run:
        request = {
            "method": "POST",
            "url": f"{base}/v1/models/google/nano-banana/text-to-image",
            "body": {"prompt": target},
        }
        typer.echo(json.dumps(request, indent=2))
    else:
        raise typer.BadParameter("pass --dry-run or --status")


if __name__ == "__main__":
    try:
        app()
    except SystemExit as stop:  # how a Typer app ends; then the shutdown nanobanana's entry point has
        sys.stdout.flush()  # (output flushed, no module teardown): a fair race
        sys.stderr.flush()
        os._exit(stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1)
