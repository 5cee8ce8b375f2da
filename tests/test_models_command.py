"""`nanobanana models` and `nanobanana model [MODEL]`: the family with prices and schema sources,
and any member's fields, from the live catalog, the cache or the bundled snapshot."""

from __future__ import annotations

import json
import re
import socket

from nanobanana_cli.api.family import family_ids
from nanobanana_cli.sandbox.models import load_models

from .test_sandbox_family import T2I_2, write_schema_file


def test_models_lists_the_family_with_price_and_source(cli, sandbox):
    run = cli("models", "--json")
    assert run.exit_code == 0, run.stderr
    rows = json.loads(run.stdout)["models"]
    assert [row["model_id"] for row in rows] == list(family_ids())
    assert rows[0] == {**rows[0], "alias": "nano-banana", "task": "generate", "price_per_image_usd": 0.039, "source": "api"}
    assert rows[5]["alias"] == "nano-banana-pro" and rows[5]["model_id"] == "google/nano-banana/pro/edit" and rows[5]["task"] == "edit"
    assert {row["source"] for row in rows} == {"api"} and rows[3]["price_per_image_usd"] is None
    again = cli("models")
    assert again.exit_code == 0
    lines = again.stdout.splitlines()
    assert len(lines) == 8 and "google/nano-banana/text-to-image" in lines[0] and "$0.0390/image" in lines[0]
    assert "price unknown" in lines[3] and re.search(r"cached \d+ s ago$", lines[3])
    assert sum(1 for r in sandbox.stats.requests if r.path.startswith("/v1/models/")) == 8  # once per model


def test_models_without_a_token_shows_the_bundled_snapshot_and_says_why(cli, monkeypatch):
    run = cli("models")
    assert run.exit_code == 0 and all(line.endswith("bundled snapshot") for line in run.stdout.splitlines())
    assert "not from the live catalog: no API token is set" in run.stderr


def test_models_with_the_catalog_unreachable_serves_the_snapshot_after_one_try(cli, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        monkeypatch.setenv("NANOBANANA_BASE_URL", f"http://127.0.0.1:{probe.getsockname()[1]}")
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "some-token")
    run = cli("models", "--retries", "0", "--json")
    rows = json.loads(run.stdout)["models"]
    assert run.exit_code == 0 and {row["source"] for row in rows} == {"bundled"}
    assert all(row["source_note"].startswith("the catalog could not be reached") for row in rows)
    assert run.stderr.count("the catalog could not be reached") == 1


def test_model_shows_any_members_fields_types_values_and_defaults(cli, sandbox):
    run = cli("model", "nano-banana-2", "--edit")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines()[:3] == [
        "google/nano-banana-2/edit: Nano Banana 2 Edit", "  price:   unknown (the catalog does not say)", "  schema:  from the live catalog",
    ]
    assert "  input:   image_urls: array of string, required, 1–14 items" in run.stdout
    assert "  input:   resolution: string, one of 0.5K, 1K, 2K, 4K, default 1K" in run.stdout
    assert "  input:   safety_tolerance: integer, one of 1, 2, 3, 4, 5, 6, from 1 to 6, default 4" in run.stdout
    document = json.loads(cli("model", "google/nano-banana/pro/text-to-image", "--json").stdout)
    assert document["model_id"] == "google/nano-banana/pro/text-to-image" and document["source"] == "api"
    assert next(f for f in document["fields"] if f["name"] == "resolution")["values"] == ["1K", "2K", "4K"]
    cached = json.loads(cli("model", "nano-banana-pro", "--json").stdout)
    assert cached["source"] == "cache" and cached["age_seconds"] >= 0
    assert json.loads(cli("model", "nano-banana-pro", "--refresh", "--json").stdout)["source"] == "api"


def test_model_follows_a_served_schema_and_reads_a_price_sent_as_a_string(cli, start_sandbox, tmp_path):
    start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    run = cli("model", T2I_2)
    assert run.exit_code == 0, run.stderr
    assert "  price:   $0.1000 per image" in run.stdout and "resolution: string, one of 1K, 8K, default 1K" in run.stdout
    assert json.loads(cli("model", T2I_2, "--json").stdout)["base_price_usd"] == 0.1


def test_model_without_a_token_shows_the_bundled_entry(cli):
    run = cli("model", "nano-banana-2-lite", "--edit")
    assert run.exit_code == 0
    assert "schema:  from the bundled snapshot (not checked against the live API)" in run.stdout
    assert "image_urls: array of string, required, 1–10 items" in run.stdout
    assert "no API token is set" in run.stderr


def test_model_refuses_unknown_names_and_ids_the_catalog_does_not_know(cli, sandbox):
    unknown = cli("model", "dall-e")
    assert unknown.exit_code == 2 and "choose one of nano-banana, nano-banana-2, nano-banana-pro, nano-banana-2-lite" in unknown.stderr
    assert sandbox.stats.requests == []
    missing = cli("model", "google/nano-banana-9/edit")
    assert missing.exit_code == 2 and "the catalog does not know the model google/nano-banana-9/edit" in missing.stderr
