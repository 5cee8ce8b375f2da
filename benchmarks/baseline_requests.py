"""Contender 2: the script a careful Python user would write with requests.

Deliberately a *good* script, not a strawman: one Session (kept-alive connections), /result polled
every 0.25 s (the API answers unfinished jobs there with their live status, so one request per poll
is enough), and the images streamed to disk concurrently, never held whole in memory.

Usage: python baseline_requests.py PROMPT NUM_IMAGES OUTPUT_DIR [--poll SECONDS]
(with NANOBANANA_BASE_URL and RUNCOMFY_API_TOKEN set). Prints the request id; exit 5 if the job
did not succeed. `baseline_requests_batch.py` reuses `run_job` for many prompts.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

gc.set_threshold(50_000, *gc.get_threshold()[1:])  # nanobanana's console script starts with this: a fair race

import requests

MODEL = "google/nano-banana/text-to-image"
FINISHED = ("succeeded", "failed", "cancelled")
CHUNK = 256 * 1024
TIMEOUT = (5, 30)


def run_job(
    session: requests.Session, prompt: str, num_images: int, out: str, poll: float, download_threads: int = 4
) -> str:
    """Submit, wait, download; returns the request id. Raises on any failure."""
    api = os.environ["NANOBANANA_BASE_URL"].rstrip("/") + "/v1"
    # The token goes on API calls only; the image host is a public CDN and must not receive it.
    auth = {"Authorization": f"Bearer {os.environ['RUNCOMFY_API_TOKEN']}"}
    submitted = session.post(
        f"{api}/models/{MODEL}", json={"prompt": prompt, "num_images": num_images}, headers=auth, timeout=TIMEOUT
    )
    submitted.raise_for_status()
    request_id = submitted.json()["request_id"]
    while True:
        answer = session.get(f"{api}/requests/{request_id}/result", headers=auth, timeout=TIMEOUT)
        answer.raise_for_status()
        result = answer.json()
        if result.get("status") in FINISHED:
            break
        time.sleep(poll)
    if result["status"] != "succeeded":
        raise RuntimeError(f"job {request_id} {result['status']}: {result.get('error')}")
    os.makedirs(out, exist_ok=True)

    def fetch(numbered: tuple[int, str]) -> None:
        index, url = numbered
        with session.get(url, stream=True, timeout=TIMEOUT) as response:
            response.raise_for_status()
            with open(os.path.join(out, f"{request_id}-{index}.png"), "wb") as handle:
                handle.writelines(response.iter_content(CHUNK))

    urls = list(enumerate(result["output"]["images"], start=1))
    if len(urls) == 1 or download_threads <= 1:
        for item in urls:
            fetch(item)
    else:
        with ThreadPoolExecutor(max_workers=min(download_threads, len(urls))) as pool:
            list(pool.map(fetch, urls))
    return request_id


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("prompt")
    parser.add_argument("num_images", type=int)
    parser.add_argument("out")
    parser.add_argument("--poll", type=float, default=0.25)
    args = parser.parse_args()
    with requests.Session() as session:
        try:
            print(run_job(session, args.prompt, args.num_images, args.out, args.poll))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 5
    return 0


if __name__ == "__main__":
    code = main()
    # the shutdown nanobanana's entry point has (output flushed, no module teardown): a fair race
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
