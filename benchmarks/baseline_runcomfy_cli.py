"""Contender 3: the strategy of RunComfy's official CLI (`runcomfy run MODEL --input JSON`), in Python.

Reimplemented from a reading of github.com/runcomfy-com/runcomfy-cli (Rust; src/cmd/run.rs,
src/poll.rs, src/download.rs, src/cli.rs), not copied. What it does, and so what this does:

- POST the input to /v1/models/{model}.
- GET /status at once, then again every `--poll-secs` (default 2, an integer >= 1 there), the
  sleep starting after each answer; stop on completed / succeeded / failed / cancelled / canceled.
- GET /result once.
- Download every http(s) URL found under `output` (document order, no duplicates), one file at
  a time, streamed in chunks, with a second long-lived HTTP client (kept-alive connections, no
  token), each file named after the URL's last path segment (deduplicated with -1, -2, ...).

One deliberate difference: the real CLI downloads only from *.runcomfy.net / *.runcomfy.com;
the sandbox serves images from 127.0.0.1, so that allow-list is left out. And the real CLI is a
native binary: its start-up costs a few milliseconds where this script pays Python's and
requests' (~0.15 s), which counts against it in the end-to-end and CPU columns, not in detection
lag or request counts.

Usage: python baseline_runcomfy_cli.py PROMPT NUM_IMAGES OUTPUT_DIR [--poll SECONDS]
Prints the request id; exit 5 if the job did not succeed.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

gc.set_threshold(50_000, *gc.get_threshold()[1:])  # nanobanana's console script starts with this: a fair race

import requests

MODEL = "google/nano-banana/text-to-image"
TERMINAL = ("completed", "succeeded", "failed", "cancelled", "canceled")
CHUNK = 64 * 1024  # reqwest's byte stream hands over what the socket has; any modest size is alike
TIMEOUT = (10, 60)


def collect_urls(value: object, found: list[str]) -> None:
    if isinstance(value, str):
        if value.startswith(("http://", "https://")) and value not in found:
            found.append(value)
    elif isinstance(value, list):
        for item in value:
            collect_urls(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            collect_urls(item, found)


def file_name(url: str) -> str:
    segments = [part for part in urlsplit(url).path.split("/") if part]
    name = segments[-1] if segments else ""
    name = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in name).strip().strip(".")
    return name or "output"


def free_path(directory: Path, name: str) -> Path:
    candidate = directory / name
    if not candidate.exists():
        return candidate
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 1000):
        candidate = directory / f"{stem}-{n}{suffix}"
        if not candidate.exists():
            return candidate
    return directory / f"{stem}-many"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("prompt")
    parser.add_argument("num_images", type=int)
    parser.add_argument("out")
    parser.add_argument("--poll", type=float, default=2.0)
    args = parser.parse_args()
    base = os.environ["NANOBANANA_BASE_URL"].rstrip("/") + "/v1"
    auth = {"Authorization": f"Bearer {os.environ['RUNCOMFY_API_TOKEN']}"}
    api = requests.Session()

    submitted = api.post(
        f"{base}/models/{MODEL}",
        json={"prompt": args.prompt, "num_images": args.num_images},
        headers=auth,
        timeout=TIMEOUT,
    )
    submitted.raise_for_status()
    request_id = submitted.json()["request_id"]

    first = True
    while True:
        if not first:
            time.sleep(args.poll)
        first = False
        answer = api.get(f"{base}/requests/{request_id}/status", headers=auth, timeout=TIMEOUT)
        answer.raise_for_status()
        if str(answer.json().get("status", "")).lower() in TERMINAL:
            break

    answer = api.get(f"{base}/requests/{request_id}/result", headers=auth, timeout=TIMEOUT)
    answer.raise_for_status()
    result = answer.json()
    status = str(result.get("status", "")).lower()
    if status not in ("succeeded", "completed"):
        print(f"request {request_id} {status}: {result.get('error')}", file=sys.stderr)
        return 5

    urls: list[str] = []
    collect_urls(result.get("output") or {}, urls)
    directory = Path(args.out)
    directory.mkdir(parents=True, exist_ok=True)
    downloads = requests.Session()  # the separate long-lived download client
    for url in urls:
        path = free_path(directory, file_name(url))
        with downloads.get(url, stream=True, timeout=TIMEOUT) as response:
            response.raise_for_status()
            with path.open("wb") as handle:
                for chunk in response.iter_content(CHUNK):
                    handle.write(chunk)
    print(request_id)
    return 0


if __name__ == "__main__":
    code = main()
    # the shutdown nanobanana's entry point has (output flushed, no module teardown): a fair race
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
