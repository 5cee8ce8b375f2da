"""--model and the schema-typed options (-a, --resolution, --seed, --set) end to end against the
sandbox: the request goes to the model's endpoint, carries only what its schema lists, and is
checked against the schema in effect before anything is sent."""

from __future__ import annotations

import json

from nanobanana_cli.sandbox.models import load_models
from nanobanana_cli.stores.history import History

from .test_sandbox_family import T2I_2, write_schema_file

LITE = "google/nano-banana-2-lite/text-to-image"


def submits(sandbox) -> list:
    return [r for r in sandbox.stats.requests if r.method == "POST" and r.path.startswith("/v1/models/")]


def test_model_alias_goes_to_its_endpoint_with_only_the_fields_set(cli, sandbox, tmp_path):
    run = cli("generate", "a lighthouse", "--model", "nano-banana-2", "--resolution", "2K", "-a", "auto", "--seed", "7",
              "--set", "safety_tolerance=5", "-o", tmp_path, "--json")
    assert run.exit_code == 0, run.stderr
    (job,) = sandbox.jobs()
    assert job.model_id == T2I_2
    # set fields only: output_format and num_images were left to the server's defaults
    assert {key: job.input[key] for key in ("prompt", "aspect_ratio", "resolution", "seed", "safety_tolerance")} == {
        "prompt": "a lighthouse", "aspect_ratio": "auto", "resolution": "2K", "seed": 7, "safety_tolerance": 5}
    document = json.loads(run.stdout)
    assert document["model"] == T2I_2
    assert document["input"] == {"prompt": "a lighthouse", "aspect_ratio": "auto", "resolution": "2K", "seed": 7,
                                 "safety_tolerance": 5}
    entry = History().get(document["request_id"])
    assert entry is not None
    assert entry.model == T2I_2 and entry.input["resolution"] == "2K" and entry.generation.model == T2I_2


def test_lite_takes_its_own_ratios_and_env_picks_the_model(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("NANOBANANA_MODEL", "nano-banana-2-lite")
    run = cli("generate", "a banner", "-a", "4:1", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    (job,) = sandbox.jobs()
    assert job.model_id == LITE and job.input["aspect_ratio"] == "4:1"
    assert "num_images" not in job.input and "output_format" not in job.input


def test_a_value_the_schema_refuses_names_field_values_and_source_before_sending(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "--model", "nano-banana-2", "--resolution", "8K", "-o", tmp_path)
    assert run.exit_code == 2
    assert "resolution" in run.stderr and "0.5K, 1K, 2K, 4K" in run.stderr and "catalog" in run.stderr
    assert submits(sandbox) == []
    run = cli("generate", "a fox", "--model", "nano-banana-2-lite", "-n", "2", "-o", tmp_path)
    assert run.exit_code == 2 and "'num_images' is not a field" in run.stderr
    assert submits(sandbox) == []


def test_the_sandbox_schema_that_differs_from_the_bundled_one_is_followed(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    # 8K is not in the bundled snapshot, but the served schema takes it
    run = cli("generate", "short", "--model", T2I_2, "--resolution", "8K", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert sandbox.jobs()[0].input["resolution"] == "8K"
    # and 2K, which the snapshot takes, is refused by the served schema, naming it
    run = cli("generate", "short", "--model", T2I_2, "--resolution", "2K", "-o", tmp_path)
    assert run.exit_code == 2 and "1K, 8K" in run.stderr and "from the catalog" in run.stderr
    assert len(submits(sandbox)) == 1


def test_unknown_model_and_bad_set_are_usage_errors(cli, sandbox, tmp_path):
    assert cli("generate", "x", "--model", "dall-e", "-o", tmp_path).exit_code == 2
    run = cli("generate", "x", "--model", "nano-banana-2", "--set", "nonsense=1", "-o", tmp_path)
    assert run.exit_code == 2 and "'nonsense' is not a field" in run.stderr
    run = cli("generate", "x", "--model", "nano-banana-2", "--set", "safety_tolerance=9", "-o", tmp_path)
    assert run.exit_code == 2 and "safety_tolerance" in run.stderr and "from 1 to 6" in run.stderr
    assert submits(sandbox) == []


def test_dry_run_shows_the_model_endpoint_without_an_account(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("RUNCOMFY_API_TOKEN", raising=False)
    run = cli("generate", "x", "--model", "nano-banana-pro", "--resolution", "4K", "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    assert "google/nano-banana/pro/text-to-image" in run.stdout and '"resolution": "4K"' in run.stdout


def test_default_model_is_unchanged(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "-o", tmp_path, "--json")
    assert run.exit_code == 0, run.stderr
    assert sandbox.jobs()[0].input == {"prompt": "a fox", "aspect_ratio": "16:9", "output_format": "png", "num_images": 1}
    assert not any(r.method == "GET" and r.path.startswith("/v1/models/") for r in sandbox.stats.requests)


def test_regen_keeps_the_model_and_its_fields(cli, sandbox, tmp_path):
    run = cli("generate", "a lighthouse", "--model", "nano-banana-2", "--resolution", "2K", "--seed", "3", "-o", tmp_path, "--json")
    assert run.exit_code == 0, run.stderr
    path = json.loads(run.stdout)["outputs"][0]["path"]
    run = cli("regen", path, "--seed", "4", "-o", tmp_path / "again")
    assert run.exit_code == 0, run.stderr
    first, second = sandbox.jobs()
    assert second.model_id == T2I_2
    assert second.input["resolution"] == "2K" and second.input["seed"] == 4


def test_history_shows_what_a_model_request_sent_not_question_marks(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "--model", "nano-banana-2", "--resolution", "2K", "-o", tmp_path, "-q")
    assert run.exit_code == 0, run.stderr
    listed = cli("history")
    row = next(line for line in listed.stdout.splitlines() if "a fox" in line)
    assert "?" not in row and "1× 2K" in row, row
