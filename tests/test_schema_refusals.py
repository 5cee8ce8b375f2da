"""The API refusing a request the cached schema allowed (422 with a `detail` list, or 400001 about
the model): one usage error (exit 2) naming the field or model, and the cached schema marked
stale, so the next run asks the catalog again and follows what it says now."""

from __future__ import annotations

from nanobanana_cli.api.family import bundled_entry
from nanobanana_cli.api.models import parse_model_info
from nanobanana_cli.sandbox.models import load_models
from nanobanana_cli.stores.catalog import CatalogCache

from .test_sandbox_family import T2I_2, write_schema_file


def catalog_gets(sandbox, model_id: str) -> int:
    return sum(1 for r in list(sandbox.stats.requests) if r.method == "GET" and r.path == f"/v1/models/{model_id}")


def submits(sandbox) -> list:
    return [r for r in sandbox.stats.requests if r.method == "POST" and r.path.startswith("/v1/models/")]


def cache_the_bundled_entry(sandbox, model_id: str) -> None:
    """What the CLI cached earlier for this API: the bundled snapshot's entry, fresh."""
    entry = bundled_entry(model_id)
    assert entry is not None
    assert CatalogCache().put(sandbox.base_url, parse_model_info(entry, model_id))


def test_a_422_about_a_field_is_one_usage_error_naming_it_and_the_schema_is_refetched_next_time(cli, start_sandbox, tmp_path):
    # the sandbox serves a schema whose resolution takes 1K and 8K only; the CLI's cache says 2K is fine
    sandbox = start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    cache_the_bundled_entry(sandbox, T2I_2)
    run = cli("generate", "a fox", "--model", "nano-banana-2", "--resolution", "2K", "-o", tmp_path)
    assert run.exit_code == 2
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "resolution" in error and "HTTP 422" in error and "marked stale" in error, run.stderr
    assert f"nanobanana model {T2I_2} --refresh" in error
    assert len(submits(sandbox)) == 1 and catalog_gets(sandbox, T2I_2) == 0  # the cache was used, then refused
    # the next run asks the catalog again and refuses 2K itself, naming the served values, before sending
    run = cli("generate", "a fox", "--model", "nano-banana-2", "--resolution", "2K", "-o", tmp_path)
    assert run.exit_code == 2 and "1K, 8K" in run.stderr and "from the catalog" in run.stderr
    assert catalog_gets(sandbox, T2I_2) == 1 and len(submits(sandbox)) == 1
    run = cli("generate", "a fox", "--model", "nano-banana-2", "--resolution", "8K", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert sandbox.jobs()[0].input["resolution"] == "8K"


def test_a_422_in_a_run_of_several_jobs_marks_the_schema_stale_too(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    cache_the_bundled_entry(sandbox, T2I_2)
    run = cli("generate", "a {red,blue} fox", "--model", "nano-banana-2", "--resolution", "2K", "-o", tmp_path)
    assert run.exit_code == 2
    assert "resolution" in run.stderr and "marked stale" in run.stderr
    run = cli("generate", "a {red,blue} fox", "--model", "nano-banana-2", "--resolution", "2K", "-o", tmp_path)
    assert run.exit_code == 2 and "1K, 8K" in run.stderr
    assert catalog_gets(sandbox, T2I_2) == 1 and len(submits(sandbox)) == 2


def test_a_model_the_api_does_not_know_is_a_usage_error_naming_it(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox()
    gone = "google/nano-banana-9/text-to-image"  # a family-shaped id the catalog does not serve
    run = cli("generate", "a fox", "--model", gone, "-o", tmp_path)
    assert run.exit_code == 2 and gone in run.stderr
    assert submits(sandbox) == []


def test_each_entry_of_a_422_detail_list_names_its_field():
    from nanobanana_cli.api.client import _error_fields

    body = {"detail": [
        {"loc": ["body", "resolution"], "msg": "value is not a valid enumeration member", "type": "type_error.enum"},
        {"loc": ["body", "image_urls", 3], "msg": "too many items"},
        {"loc": ["body", "seed"], "msg": "seed: must be an integer"},  # already names it: not twice
        "plain text",
    ]}
    assert _error_fields(body) == (None, "resolution: value is not a valid enumeration member; image_urls.3: too many "
                                         "items; seed: must be an integer; plain text")
