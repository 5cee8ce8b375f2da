"""The edit upload's contender: the plain script a Python user would write to send local images inline.

Reads each file, base64-encodes it into a data URI, puts them in the JSON body and posts it with
requests (the obvious code: the whole body is built in memory first). Prints the request id; does not wait.

Usage: python baseline_edit_requests.py MODEL PROMPT IMAGE [IMAGE ...]
(with NANOBANANA_BASE_URL and RUNCOMFY_API_TOKEN set).
"""

from __future__ import annotations

import base64
import gc
import mimetypes
import os
import sys

gc.set_threshold(50_000, *gc.get_threshold()[1:])  # nanobanana's console script starts with this: a fair race

import requests


def main() -> int:
    model, prompt, *images = sys.argv[1:]
    uris = []
    for path in images:
        with open(path, "rb") as handle:
            kind = mimetypes.guess_type(path)[0] or "image/png"
            uris.append(f"data:{kind};base64,{base64.b64encode(handle.read()).decode()}")
    api = os.environ["NANOBANANA_BASE_URL"].rstrip("/") + "/v1"
    answer = requests.post(
        f"{api}/models/{model}",
        json={"prompt": prompt, "image_urls": uris},
        headers={"Authorization": f"Bearer {os.environ['RUNCOMFY_API_TOKEN']}"},
        timeout=(5, 120),
    )
    answer.raise_for_status()
    print(answer.json()["request_id"])
    return 0


if __name__ == "__main__":
    code = main()
    # the shutdown nanobanana's entry point has (output flushed, no module teardown): a fair race
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
