"""The edit upload: `nanobanana edit PROMPT -i IMAGE x10 --no-wait` against the plain script
(baseline_edit_requests.py: base64 in memory, one JSON body, requests), interleaved round by round.

The images are PNGs of random noise (they do not compress), each ~4.6 MiB so that ten make a body
just under the API's 64 MiB request limit once base64-encoded (~6.1 MiB each). Figures:
- spawn -> submit: from the process's start to the sandbox answering its submit (wall clock);
- peak RSS (peak_rss.py launcher), and nanobanana's peak above its own baseline: the same command
  sending one tiny image, in the same round.
"""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path
from typing import Any

from harness import HERE, NANOBANANA, PYTHON, environment, log_mark, log_since, progress, run, summary

MODEL = "nano-banana-2"  # takes up to 14 images
MODEL_ID = "google/nano-banana-2/edit"
CONTENDERS = ("plain script", "nanobanana", "nanobanana, one tiny image")
RSS_ABOVE_BASELINE_MB = 40.0
SUBMIT_RATIO_LIMIT = 1.2


def noise_png(path: Path, megabytes: float, seed: int) -> None:
    """An RGB PNG of random pixels, stored (zlib level 0): its size is its pixels' size."""
    width = 1024
    height = max(1, int(megabytes * 1024 * 1024 / (width * 3)))
    rng = random.Random(seed)
    rows = b"".join(b"\0" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 0)) + chunk(b"IEND", b""))


def command(contender: str, images: list[Path], tiny: Path, out: Path) -> list[str]:
    if contender == "plain script":
        return [PYTHON, str(HERE / "baseline_edit_requests.py"), MODEL_ID, "make it dusk", *map(str, images)]
    chosen = images if contender == "nanobanana" else [tiny]
    flags = [arg for image in chosen for arg in ("-i", str(image))]
    return [*NANOBANANA, "edit", "make it dusk", *flags, "--model", MODEL, "--no-wait", "-o", str(out), "-q"]


def measure(runs: int, work: Path, *, count: int = 10, megabytes: float = 4.6) -> dict[str, Any]:
    from nanobanana_cli.sandbox import Sandbox

    work = work / "upload"
    work.mkdir(parents=True)
    progress(f"upload: making {count} noise PNGs of {megabytes:g} MiB")
    images = [work / f"noise-{n}.png" for n in range(count)]
    for n, image in enumerate(images):
        noise_png(image, megabytes, n)
    tiny = work / "tiny.png"
    noise_png(tiny, 0.01, 99)
    to_submit: dict[str, list[float | None]] = {name: [] for name in CONTENDERS}
    rss: dict[str, list[float | None]] = {name: [] for name in CONTENDERS}
    ratios: list[float | None] = []
    above: list[float | None] = []
    failures: list[str] = []
    with Sandbox(queue_seconds=3600, run_seconds=1, image_long_side=64, port=0) as sandbox:
        env = environment(work, sandbox)
        for round_no in range(1, runs + 1):
            progress(f"upload: {count} images, round {round_no}/{runs}")
            for contender in CONTENDERS:
                mark = log_mark(sandbox)
                argv = command(contender, images, tiny, work / "out")
                done = run([PYTHON, str(HERE / "peak_rss.py"), *argv], env, timeout=600)
                posts = [r for r in log_since(sandbox, mark) if r.method == "POST" and r.path.startswith("/v1/models/")]
                ok = done.ok and len(posts) == 1 and posts[0].status == 200
                if not ok:
                    failures.append(f"{contender}: {done.describe_failure()} ({[p.status for p in posts]})")
                to_submit[contender].append(posts[0].at - done.spawned_at if ok else None)
                rss[contender].append(float(done.stdout.split()[-1]) if ok else None)
            mine, theirs = to_submit["nanobanana"][-1], to_submit["plain script"][-1]
            ratios.append(mine / theirs if mine is not None and theirs else None)
            peak, base = rss["nanobanana"][-1], rss["nanobanana, one tiny image"][-1]
            above.append(peak - base if peak is not None and base is not None else None)
    total = sum(image.stat().st_size for image in images)
    return {
        "images": count,
        "image_mib": megabytes,
        "total_mib": total / 2**20,
        "runs": runs,
        "failures": failures,
        "contenders": {
            name: {"to_submit_s": summary(to_submit[name]), "peak_rss_mb": summary(rss[name])} for name in CONTENDERS
        },
        "submit_ratio": summary(ratios),
        "rss_above_baseline_mb": summary(above),
        "samples": {"to_submit": to_submit, "rss": rss},
    }
