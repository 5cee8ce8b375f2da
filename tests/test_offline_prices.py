"""The bundled snapshot's price is no RunComfy price (its own notes say so): offline, or with the
catalog unreachable, a price is unknown and said to be, never the snapshot's $0.039. A price the
catalog gave (cached) still serves; and `--max-cost` on the default model reads the catalog through
the same reader as every other command (a price per another unit is no price per image)."""

from __future__ import annotations

import json
import socket

from nanobanana_cli.api.family import bundled_entry
from nanobanana_cli.sandbox.models import load_models

T2I = "google/nano-banana/text-to-image"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_dry_run_without_a_token_never_shows_the_snapshots_price(cli):
    run = cli("generate", "a fox", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert f"price unknown for 1 image(s) on {T2I}: not cached from the catalog, `nanobanana model {T2I}` asks it" in run.stderr
    assert "$0.0390" not in run.stderr
    run = cli("generate", "a fox", "--model", "nano-banana,nano-banana-2", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "price unknown (the catalog does not say) for 1 image(s) on nano-banana, 1 image(s) on nano-banana-2" in run.stderr
    assert "$0.0390" not in run.stderr


def test_models_and_model_offline_show_the_price_as_unknown_beside_the_bundled_source(cli):
    run = cli("models", "--json")
    assert run.exit_code == 0, run.stderr
    rows = json.loads(run.stdout)["models"]
    assert {row["source"] for row in rows} == {"bundled"}
    assert {row["price_per_image_usd"] for row in rows} == {None} and {row["base_price_usd"] for row in rows} == {None}
    run = cli("model", "nano-banana")
    assert run.exit_code == 0, run.stderr
    assert "$0.0390" not in run.stdout and "price:   unknown" in run.stdout


def test_with_the_catalog_unreachable_the_price_is_unknown_and_max_cost_refuses(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "nbtest-unreachable-token")
    base = f"http://127.0.0.1:{closed_port()}"
    run = cli("generate", "a fox", "--model", "nano-banana,nano-banana-2", "--dry-run", "--base-url", base)
    assert run.exit_code == 0, run.stderr
    assert "price unknown (the catalog does not say) for 1 image(s) on nano-banana, 1 image(s) on nano-banana-2" in run.stderr
    assert "$0.0390" not in run.stderr
    run = cli("generate", "a fox", "--model", "nano-banana,nano-banana-2", "--max-cost", "1", "--base-url", base, "-o", tmp_path)
    assert run.exit_code == 2 and "price of nano-banana, nano-banana-2 is unknown" in run.stderr


def test_a_price_the_catalog_gave_is_still_used_from_the_cache(cli, sandbox):
    assert cli("model", "nano-banana").exit_code == 0
    asked = len(sandbox.stats.requests)
    run = cli("generate", "a fox", "-n", "2", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "estimated cost $0.0780 for 2 image(s) at $0.0390 each" in run.stderr
    assert len(sandbox.stats.requests) == asked  # a dry run asks no network


def test_max_cost_on_the_default_model_reads_the_unit_as_every_other_reader(cli, start_sandbox, tmp_path):
    entry = bundled_entry(T2I)
    assert entry is not None
    served = tmp_path / "t2i.json"
    served.write_text(json.dumps({**entry, "base_price_usd": 0.02, "price_unit": "second"}))
    sandbox = start_sandbox(models=load_models(served))
    run = cli("generate", "a fox", "--max-cost", "1", "-o", tmp_path / "out")
    assert run.exit_code == 2, run.stderr
    assert f"the price of {T2I} is unknown" in run.stderr  # $0.02 per second is no price per image
    assert sandbox.jobs() == []
