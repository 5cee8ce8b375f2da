"""Cost per model (the catalog's `base_price_usd` per `price_unit`, a numeric string read as its
number) in `--dry-run` and `--max-cost`; and `--fit` from the command line: a local image over the
per-image limit refused before anything is sent, or shrunk and sent with --fit."""

from __future__ import annotations

import base64
import io
import json
import os

from PIL import Image

from nanobanana_cli.api.family import bundled_entry
from nanobanana_cli.engine.image_inputs import MIB
from nanobanana_cli.sandbox.models import load_models

PRO = "google/nano-banana/pro/text-to-image"


def submits(sandbox) -> list:
    return [r for r in sandbox.stats.requests if r.method == "POST" and r.path.startswith("/v1/models/")]


def serve_prices(start_sandbox, tmp_path, **changes):
    """A sandbox whose Pro entry has this price (and unit)."""
    entry = bundled_entry(PRO)
    assert entry is not None
    path = tmp_path / "pro.json"
    path.write_text(json.dumps({**entry, **changes}))
    return start_sandbox(models=load_models(path))


def test_dry_run_prices_each_model_from_the_catalog_and_reads_a_numeric_string(cli, start_sandbox, tmp_path):
    serve_prices(start_sandbox, tmp_path, base_price_usd="0.1", price_unit="output")
    run = cli("generate", "a fox", "--model", "nano-banana-pro", "-n", "3", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "estimated cost $0.3000 for 3 image(s) at $0.1000 each" in run.stderr
    assert cli("model", "nano-banana").exit_code == 0  # a dry run of the default model reads the cached catalog only
    run = cli("generate", "a fox", "-n", "3", "--dry-run")  # the default model keeps its own price
    assert run.exit_code == 0, run.stderr
    assert "estimated cost $0.1170 for 3 image(s) at $0.0390 each" in run.stderr


def test_max_cost_uses_the_models_price(cli, start_sandbox, tmp_path):
    sandbox = serve_prices(start_sandbox, tmp_path, base_price_usd="0.1")
    run = cli("generate", "a fox", "--model", "nano-banana-pro", "-n", "2", "--max-cost", "0.15", "-o", tmp_path)
    assert run.exit_code == 2 and "$0.2000" in run.stderr and "exceeds --max-cost $0.1500" in run.stderr
    # the same budget covers two images of the default model, at its own price
    run = cli("generate", "a fox", "-n", "2", "--max-cost", "0.15", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert "estimated cost $0.0780 for 2 image(s), within --max-cost $0.1500" in run.stderr
    assert [job.model_id for job in sandbox.jobs()] == ["google/nano-banana/text-to-image"]


def test_a_price_per_another_unit_or_none_is_unknown_and_max_cost_refuses_naming_the_model(cli, start_sandbox, tmp_path):
    sandbox = serve_prices(start_sandbox, tmp_path, base_price_usd=0.02, price_unit="second")
    run = cli("generate", "a fox", "--model", "nano-banana-pro", "--dry-run")
    assert run.exit_code == 0 and "price unknown for 1 image(s) on google/nano-banana/pro/text-to-image" in run.stderr
    run = cli("generate", "a fox", "--model", "nano-banana-pro", "--max-cost", "1", "-o", tmp_path)
    assert run.exit_code == 2 and f"the price of {PRO} is unknown" in run.stderr
    assert submits(sandbox) == []


def noise_png(path, side: int) -> int:
    """A PNG of random pixels (it does not compress): about 3 bytes a pixel."""
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path, "PNG", compress_level=0)
    return path.stat().st_size


def test_a_too_large_local_image_is_refused_before_anything_is_sent_and_fit_shrinks_it(cli, sandbox, tmp_path):
    big = tmp_path / "big.png"
    size = noise_png(big, 1500)
    assert size > 6 * MIB
    run = cli("edit", "as a watercolour", "-i", big, "-o", tmp_path / "out")
    assert run.exit_code == 2
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "big.png" in error and f"{size / MIB:.1f} MiB" in error and "6.0 MiB" in error and "--fit" in error
    # nothing was submitted: the only request read the model's schema (its per-image limit), a GET
    assert [(r.method, r.path) for r in sandbox.stats.requests] == [("GET", "/v1/models/google/nano-banana/edit")]
    run = cli("edit", "as a watercolour", "-i", big, "--fit", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    (job,) = sandbox.jobs()
    head, _, data = job.input["image_urls"][0].partition(",")
    sent = base64.b64decode(data)
    assert head.startswith("data:image/") and len(sent) <= 6 * MIB
    assert Image.open(io.BytesIO(sent)).width > 0  # a real image, re-encoded
    recorded = json.loads(run.stdout)["input"]["image_urls"][0]
    assert recorded["file"] == "big.png"
