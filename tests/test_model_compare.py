"""Comparing models: a prompt matrix that ranges over models (`--model a,b` or `--var model=a,b`),
each job sent to its own model's endpoint and checked against its own schema, files named by
model, and the cost estimated model by model (an unknown price said, never guessed)."""

from __future__ import annotations

import json
from pathlib import Path

from nanobanana_cli.api.family import bundled_entry
from nanobanana_cli.sandbox.models import load_models

from .test_sandbox_family import RED, picture

NB = "google/nano-banana/text-to-image"
NB2 = "google/nano-banana-2/text-to-image"
PRO = "google/nano-banana/pro/text-to-image"


def submits(sandbox) -> list:
    return [r for r in sandbox.stats.requests if r.method == "POST" and r.path.startswith("/v1/models/")]


def priced_models(path: Path, **prices) -> Path:
    """The bundled entries of these model ids, with the given prices (a string stays a string)."""
    entries = []
    for model_id, price in prices.items():
        entry = bundled_entry(model_id.replace("__", "/").replace("_", "-"))
        assert entry is not None
        entries.append({**entry, "base_price_usd": price})
    path.write_text(json.dumps({"models": entries}))
    return path


def test_a_run_over_two_models_sends_each_job_to_its_model_and_names_files_by_it(cli, sandbox, tmp_path):
    run = cli("generate", "a {red,blue} fox", "--model", "nano-banana,nano-banana-2", "-a", "1:1", "-o", tmp_path, "--json")
    assert run.exit_code == 0, run.stderr
    sent = sorted((job.model_id, job.input["prompt"]) for job in sandbox.jobs())
    assert sent == sorted((model, prompt) for model in (NB, NB2) for prompt in ("a red fox", "a blue fox"))
    assert all(job.input["aspect_ratio"] == "1:1" for job in sandbox.jobs())
    documents = [json.loads(line) for line in run.stdout.splitlines()]
    # in plan order: each prompt on each model, side by side
    assert [(d["model"], d["input"]["prompt"]) for d in documents] == [
        (NB, "a red fox"), (NB2, "a red fox"), (NB, "a blue fox"), (NB2, "a blue fox")]
    names = [Path(d["outputs"][0]["path"]).name for d in documents]
    assert [name.split("-a-")[0] for name in names] == ["nano-banana-red", "nano-banana-2-red", "nano-banana-blue",
                                                         "nano-banana-2-blue"]
    assert "2 prompt(s) × 2 model(s) (nano-banana, nano-banana-2)" in run.stderr


def test_var_model_is_the_same_and_name_templates_take_model(cli, sandbox, tmp_path):
    run = cli("generate", "a lighthouse", "--var", "model=nano-banana-pro,nano-banana-2", "--resolution", "2K",
              "--name", "{model}-{var.model}-{i}", "-o", tmp_path, "-q")
    assert run.exit_code == 0, run.stderr
    assert sorted(job.model_id for job in sandbox.jobs()) == sorted([PRO, NB2])
    # the run's --resolution reaches every model that takes it, checked against each one's schema
    assert all(job.input["resolution"] == "2K" for job in sandbox.jobs())
    assert sorted(Path(line).name for line in run.stdout.splitlines()) == [
        "nano-banana-2-nano-banana-2-1.png", "nano-banana-pro-nano-banana-pro-1.png"]
    # {model} works in a name for a single job too
    run = cli("generate", "a boat", "--model", "nano-banana-2", "--name", "{model}-{slug}", "-o", tmp_path, "-q")
    assert run.exit_code == 0, run.stderr
    assert Path(run.stdout.strip()).name == "nano-banana-2-a-boat.png"


def test_a_matrix_on_another_model_sends_the_runs_schema_fields(cli, sandbox, tmp_path):
    run = cli("generate", "a {red,blue} fox", "--model", "nano-banana-2", "--resolution", "2K", "--seed", "5", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert [(job.input["resolution"], job.input["seed"]) for job in sandbox.jobs()] == [("2K", 5), ("2K", 5)]


def test_a_field_one_of_the_models_does_not_take_is_refused_before_anything_is_sent(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "--model", "nano-banana-2,nano-banana", "--resolution", "2K", "-o", tmp_path)
    assert run.exit_code == 2
    assert "'resolution' is not a field" in run.stderr and NB in run.stderr
    assert submits(sandbox) == []


def test_model_in_the_prompt_or_given_twice_is_refused(cli, sandbox, tmp_path):
    run = cli("generate", "a fox by {model}", "--var", "model=nano-banana,nano-banana-2", "-o", tmp_path)
    assert run.exit_code == 2 and "{model} in the prompt" in run.stderr
    run = cli("generate", "a fox", "--model", "nano-banana", "--var", "model=nano-banana-2", "-o", tmp_path)
    assert run.exit_code == 2 and "--model and --var model=" in run.stderr
    run = cli("generate", "a fox", "--model", "nano-banana,dall-e", "-o", tmp_path)
    assert run.exit_code == 2 and "unknown model 'dall-e'" in run.stderr
    assert submits(sandbox) == []


def test_the_estimate_and_max_cost_use_each_models_price(cli, start_sandbox, tmp_path):
    schema = priced_models(tmp_path / "prices.json", **{"google__nano_banana__pro__text_to_image": "0.15"})
    sandbox = start_sandbox(models=load_models(schema))
    run = cli("generate", "a fox", "--model", "nano-banana,nano-banana-pro", "-n", "2", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "estimated cost $0.3780 for 4 image(s): 2 × $0.0390 on nano-banana, 2 × $0.1500 on nano-banana-pro" in run.stderr
    run = cli("generate", "a fox", "--model", "nano-banana,nano-banana-pro", "-n", "2", "--max-cost", "0.3", "-o", tmp_path)
    assert run.exit_code == 2 and "$0.3780" in run.stderr and "--max-cost $0.3000" in run.stderr
    assert submits(sandbox) == []
    run = cli("generate", "a fox", "--model", "nano-banana,nano-banana-pro", "--max-cost", "0.5", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert "estimated cost $0.1890 for 2 image(s)" in run.stderr and "within --max-cost $0.5000" in run.stderr
    assert len(submits(sandbox)) == 2


def test_an_unknown_price_is_named_not_guessed(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "--model", "nano-banana,nano-banana-2", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "estimated cost $0.0390 for 1 image(s)" in run.stderr
    assert "price unknown (the catalog does not say) for 1 image(s) on nano-banana-2" in run.stderr
    run = cli("generate", "a fox", "--model", "nano-banana,nano-banana-2", "--max-cost", "5", "-o", tmp_path)
    assert run.exit_code == 2 and "price of nano-banana-2 is unknown" in run.stderr
    assert submits(sandbox) == []


def test_edit_on_two_models(cli, sandbox, tmp_path):
    red = tmp_path / "red.png"
    red.write_bytes(picture(RED))
    run = cli("edit", "make it dusk", "-i", red, "--model", "nano-banana,nano-banana-2", "-o", tmp_path / "out", "-q")
    assert run.exit_code == 0, run.stderr
    jobs = sandbox.jobs()
    assert sorted(job.model_id for job in jobs) == ["google/nano-banana-2/edit", "google/nano-banana/edit"]
    assert all(job.input["image_urls"][0].startswith("data:image/png;base64,") for job in jobs)
    assert sorted(Path(line).name.split("-make-")[0] for line in run.stdout.splitlines()) == ["nano-banana", "nano-banana-2"]


def test_a_namers_model_is_recorded_and_read_back_and_older_records_still_read():
    from nanobanana_cli.api.models import GenerationInput
    from nanobanana_cli.engine.naming import FileNamer, NameTemplate

    generation = GenerationInput("a fox", model=NB2)
    namer = FileNamer.for_job(NameTemplate.parse("{model}-{slug}-{i}"), generation)
    assert namer.model == "nano-banana-2" and namer.names("abcdef12-x", 1) == ["nano-banana-2-a-fox-1.png"]
    record = namer.to_record()
    assert FileNamer.from_record(record) == namer
    older = {key: value for key, value in record.items() if key != "model"}
    assert FileNamer.from_record({**older, "template": "{slug}-{i}"}).model == ""
    assert FileNamer.from_record({**record, "model": "../escape"}) is None
    # a model id without an alias is named by its id, as a slug
    other = FileNamer.for_job(None, GenerationInput("a fox", model="google/nano-banana-3/text-to-image"))
    assert other.model == "google-nano-banana-3-text-to-image"
