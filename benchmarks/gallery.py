"""Gallery: `nanobanana gallery DIR` on a folder of 1,000 images, with a history of 100,000 jobs
against an empty one, interleaved round by round. The folder's own 250 jobs (4 images each) are in
the big history; the other rows are jobs saved elsewhere, as a long-time user's history would be.
The figure is the same-round ratio: what a big history costs a gallery that needs 250 of its rows.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from harness import NANOBANANA, environment, progress, run, summary

IMAGES_PER_JOB = 4


def _history(data_dir: Path, rows: list[tuple[Any, ...]]) -> None:
    """A history database with the package's own schema, filled in one transaction."""
    from nanobanana_cli.stores.history import DB_NAME, History

    data_dir.mkdir(parents=True, exist_ok=True)
    with History(data_dir / DB_NAME) as history:
        history.count()  # creates and migrates it
    with sqlite3.connect(data_dir / DB_NAME) as db:
        db.executemany(
            "INSERT INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status,"
            " output_urls, paths, duration_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, 'succeeded', ?, ?, ?)",
            rows,
        )


def _request_id(number: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"nanobanana-benchmark/{number}"))


def _row(number: int, paths: list[str]) -> tuple[Any, ...]:
    request_id = _request_id(number)
    moment = f"2026-01-{1 + number % 28:02d}T{number % 24:02d}:{number % 60:02d}:00.000Z"
    generation = {"prompt": f"a fox, variation {number}", "aspect_ratio": "1:1", "output_format": "png", "num_images": 4}
    urls = [f"https://files.example/{request_id}/{i}.png" for i in range(1, IMAGES_PER_JOB + 1)]
    return (request_id, moment, moment, "google/nano-banana/text-to-image", "https://model-api.runcomfy.net",
            generation["prompt"], json.dumps(generation), json.dumps(urls), json.dumps(paths), 2.5)


def build(work: Path, images: int, rows: int) -> tuple[Path, Path, Path]:
    """The image folder, a data directory whose history holds `rows` jobs, and one with no history.

    Each image carries its provenance, as `generate` saves it (the gallery reads it from every file).
    """
    from nanobanana_cli.engine.provenance import record
    from nanobanana_cli.sandbox.images import render_image

    folder = work / "images"
    folder.mkdir(parents=True)
    picture = render_image("a fox", "1:1", "png", 1, long_side=64)
    ours = []
    for job in range(images // IMAGES_PER_JOB):
        request_id = _request_id(job)
        paths = []
        for index in range(1, IMAGES_PER_JOB + 1):
            path = folder / f"a-fox-variation-{job}-{request_id[:8]}-{index}.png"
            made = {"request_id": request_id, "index": index, "prompt": f"a fox, variation {job}"}
            path.write_bytes(picture)
            record(path, made)
            paths.append(str(path))
        ours.append(_row(job, paths))
    elsewhere = [
        _row(number, [f"/home/someone/elsewhere/{number}-{i}.png" for i in range(1, IMAGES_PER_JOB + 1)])
        for number in range(len(ours), rows)
    ]
    full, empty = work / "data-full", work / "data-empty"
    _history(full, ours + elsewhere)
    empty.mkdir()
    return folder, full, empty


def measure(runs: int, work: Path, *, images: int = 1000, rows: int = 100_000, warmup: bool = True) -> dict[str, Any]:
    work = work / "gallery"
    progress(f"gallery: {images} images, a history of {rows} jobs vs none")
    folder, full, empty = build(work, images, rows)
    times: dict[str, list[float | None]] = {"empty": [], "full": []}
    failures: list[str] = []
    for round_no in range(0 if warmup else 1, runs + 1):  # round 0 warms the page cache and is not kept
        for name, data_dir in (("empty", empty), ("full", full)):
            done = run([*NANOBANANA, "gallery", str(folder)], environment(work, data_dir=data_dir), timeout=300)
            if not done.ok:
                failures.append(f"gallery ({name} history): {done.describe_failure()}")
            if round_no:
                times[name].append(done.wall if done.ok else None)
    ratios = [f / e for e, f in zip(times["empty"], times["full"]) if e is not None and f is not None]
    return {
        "images": images,
        "history_rows": rows,
        "runs": runs,
        "empty_s": summary(times["empty"]),
        "full_s": summary(times["full"]),
        "ratio": summary(ratios),
        "target_ratio": 1.2,
        "failures": failures,
        "samples": times,
    }
