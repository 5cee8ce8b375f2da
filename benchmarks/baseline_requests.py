"""Baseline (b): the short script a Python user would write with requests, sequential throughout.

Usage: python baseline_requests.py PROMPT NUM_IMAGES OUTPUT_DIR
(with NANOBANANA_BASE_URL and RUNCOMFY_API_TOKEN set)
"""

import os
import sys
import time

import requests

prompt, num_images, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
api = os.environ["NANOBANANA_BASE_URL"] + "/v1"
headers = {"Authorization": f"Bearer {os.environ['RUNCOMFY_API_TOKEN']}"}

job = requests.post(f"{api}/models/google/nano-banana/text-to-image", json={"prompt": prompt, "num_images": num_images}, headers=headers).json()
request_id = job["request_id"]
while requests.get(f"{api}/requests/{request_id}/status", headers=headers).json()["status"] not in ("completed", "cancelled"):
    time.sleep(1)
result = requests.get(f"{api}/requests/{request_id}/result", headers=headers).json()
os.makedirs(out, exist_ok=True)
for index, url in enumerate(result["output"]["images"], start=1):
    with open(os.path.join(out, f"{request_id}-{index}.png"), "wb") as handle:
        handle.write(requests.get(url).content)
print(request_id)
