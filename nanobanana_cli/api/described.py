"""A request described, not sent: what `--dry-run` and `--curl` print, and words the client shares.

Apart from api/client.py so that the commands that send nothing never import requests.
"""

from __future__ import annotations

import json
from typing import Any

from .. import __version__
from .models import GenerationInput
from .schema import MODEL_ID
from .urls import check_base_url

UNCERTAIN_SUBMIT_HINT = "check with `nanobanana history` or your RunComfy dashboard before submitting again"
USER_AGENT = f"nanobanana-cli/{__version__}"


def submit_url(base_url: str, model_id: str = MODEL_ID) -> str:
    return f"{check_base_url(base_url)}/v1/models/{model_id}"


def describe_submit(base_url: str, generation: GenerationInput) -> dict[str, Any]:
    """The exact submit request, for --dry-run: method, URL, headers (token redacted) and JSON body
    (a local input image as its record: the data URI is never shown)."""
    return {
        "method": "POST",
        "url": submit_url(base_url, generation.model),
        "headers": {"Authorization": "Bearer ***", "Content-Type": "application/json", "User-Agent": USER_AGENT},
        "body": generation.wire.preview() if generation.wire is not None else generation.to_body(),
    }


def curl_command(request: dict[str, Any], token_reference: str = "$RUNCOMFY_API_TOKEN") -> str:
    """An equivalent curl command that refers to the token (a variable or a command), never inlining it."""
    import shlex

    return " \\\n  ".join([
        f"curl --request {request['method']}",
        f"--url {shlex.quote(request['url'])}",
        '--header "Content-Type: application/json"',
        f'--header "Authorization: Bearer {token_reference}"',
        f"--data {shlex.quote(json.dumps(request['body']))}",
    ])
