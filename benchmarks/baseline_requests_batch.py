"""The requests contender for batches: `baseline_requests.run_job` for every prompt, J at a time.

One Session shared by J worker threads, its connection pool sized for them (requests' default of
10 would otherwise open and drop connections at -j 32). Each job downloads its image itself.

Usage: python baseline_requests_batch.py PROMPTS_FILE OUTPUT_DIR -j J [--poll SECONDS]
Prints how many prompts succeeded; exit 5 if any failed.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from concurrent.futures import ThreadPoolExecutor

gc.set_threshold(50_000, *gc.get_threshold()[1:])  # nanobanana's console script starts with this: a fair race

import requests
from baseline_requests import run_job
from requests.adapters import HTTPAdapter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("prompts")
    parser.add_argument("out")
    parser.add_argument("-j", "--concurrency", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.25)
    args = parser.parse_args()
    with open(args.prompts, encoding="utf-8") as handle:
        prompts = [line.strip() for line in handle if line.strip()]
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=args.concurrency + 4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)

    def one(prompt: str) -> bool:
        try:
            run_job(session, prompt, 1, args.out, args.poll, download_threads=1)
            return True
        except (
            requests.RequestException,
            RuntimeError,
            OSError,
            KeyError,
            ValueError,
        ) as exc:  # counted; the rest go on
            print(f"{prompt!r}: {exc}", file=sys.stderr)
            return False

    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        succeeded = sum(pool.map(one, prompts))
    print(succeeded)
    return 0 if succeeded == len(prompts) else 5


if __name__ == "__main__":
    code = main()
    # the shutdown nanobanana's entry point has (output flushed, no module teardown): a fair race
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
