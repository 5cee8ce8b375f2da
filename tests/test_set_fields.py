"""`--set KEY=VALUE` against the sandbox: it is for the fields no flag fills (a field with a flag of
its own is refused, naming the flag), and an array or object field takes JSON; what the server
received is what is asserted."""

from __future__ import annotations

import json

import pytest

from nanobanana_cli.sandbox.models import load_models

from .test_sandbox_family import T2I_2, picture

EDIT_2 = "google/nano-banana-2/edit"


def submits(sandbox) -> list:
    return [r for r in sandbox.stats.requests if r.method == "POST" and r.path.startswith("/v1/models/")]


# -- fields with a flag of their own --------------------------------------------------------------

REFUSED = [
    ("num_images=4", "--set num_images: use -n/--num-images"),
    ("prompt=y", "--set prompt: use the PROMPT argument"),
    ("aspect_ratio=1:1", "--set aspect_ratio: use -a/--aspect"),
    ("output_format=png", "--set output_format: use -f/--format"),
    ("resolution=2K", "--set resolution: use --resolution"),
    ("seed=3", "--set seed: use --seed"),
    ('image_urls=["https://example.com/a.png"]', "--set image_urls: use -i/--image"),
]


@pytest.mark.parametrize(("pair", "said"), REFUSED)
def test_generate_refuses_set_of_a_field_with_its_own_flag(cli, sandbox, tmp_path, pair, said):
    run = cli("generate", "x", "--model", "nano-banana-2", "-n", "3", "--set", pair, "-o", tmp_path)
    assert run.exit_code == 2
    assert f"error: {said}" in run.stderr and run.stderr.count("\n") <= 2
    assert run.stdout == "" and submits(sandbox) == []


def test_set_help_and_help_models_name_every_refused_field_s_flag(cli):
    from nanobanana_cli.runs.models import FLAG_FIELDS

    assert {pair.partition("=")[0] for pair, _ in REFUSED} == set(FLAG_FIELDS)
    generate_help = " ".join(cli("generate", "--help").stdout.split())
    topic = " ".join(cli("help", "models").stdout.split())
    # the paragraph on --set in each: from its own line to the next option's (or section's)
    helps = [generate_help.split("--set KEY=VALUE", 1)[1].split("-i, --image", 1)[0],
             topic.split("--set KEY=VALUE", 1)[1].split("Price:", 1)[0]]
    for flag in (spelled.split("/")[0] for name, spelled in FLAG_FIELDS.items() if name != "prompt"):
        assert all(flag in text for text in helps), flag
    assert all("""'tags=["a","b"]'""" in text and "tags=a,b" in text for text in helps)


def test_set_num_images_no_longer_changes_what_is_billed(cli, sandbox, tmp_path):
    # it used to turn `-n 10` (3 jobs, 10 images) into 3 jobs of 4, 12 images billed
    run = cli("generate", "x", "--set", "num_images=4", "-n", "10", "--dry-run")
    assert run.exit_code == 2 and "--set num_images: use -n/--num-images" in run.stderr
    assert run.stdout == ""
    run = cli("generate", "x", "--model", "nano-banana-2", "-n", "3", "-a", "9:16", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    (job,) = sandbox.jobs()
    assert job.input["num_images"] == 3 and job.input["aspect_ratio"] == "9:16" and job.input["prompt"] == "x"


def test_edit_refuses_set_of_its_images_instead_of_dropping_it(cli, sandbox, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(picture((200, 30, 30)))
    run = cli("edit", "make it blue", "-i", image, "--set", 'image_urls=["https://example.com/b.png"]', "-o", tmp_path)
    assert run.exit_code == 2 and "--set image_urls: use -i/--image" in run.stderr
    assert submits(sandbox) == []


def test_batch_refuses_set_num_images_but_lines_keep_their_fields(cli, sandbox, tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text(json.dumps({"prompt": "a fox", "model": "nano-banana-2", "num_images": 2, "seed": 3}) + "\n")
    run = cli("batch", lines, "--set", "num_images=4", "-o", tmp_path / "out")
    assert run.exit_code == 2 and "--set num_images: use -n/--num-images" in run.stderr
    assert submits(sandbox) == []
    # a line's own num_images and seed are its flags' equivalent: sent as the line says
    run = cli("batch", lines, "--set", "safety_tolerance=5", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    (job,) = sandbox.jobs()
    assert job.model_id == T2I_2
    assert {key: job.input[key] for key in ("num_images", "seed", "safety_tolerance")} == {
        "num_images": 2, "seed": 3, "safety_tolerance": 5}


# -- array and object fields ----------------------------------------------------------------------


@pytest.fixture
def tagged(start_sandbox, tmp_path):
    """A sandbox whose nano-banana-2 schema has an array of strings, an array of integers and an object."""
    schema = {
        "type": "object", "required": ["prompt"],
        "properties": {
            "prompt": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "weights": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}},
            "extras": {"type": "object"},
        },
    }
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"models": [{"model_id": T2I_2, "base_price_usd": "0.1", "input_schema": schema}]}))
    return start_sandbox(models=load_models(path))


@pytest.mark.parametrize(("value", "sent"), [
    ('tags=["a","b"]', ["a", "b"]),
    ('tags=["a, b", "c"]', ["a, b", "c"]),  # JSON keeps an item's comma
    ("tags=a,b", ["a", "b"]),  # the comma form
    ("tags=[]", []),
])
def test_array_field_takes_a_json_array_or_a_comma_list(cli, tagged, tmp_path, value, sent):
    run = cli("generate", "x", "--model", "nano-banana-2", "--set", value, "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    (job,) = tagged.jobs()
    assert job.input["tags"] == sent


def test_array_items_are_typed_and_checked_by_the_schema(cli, tagged, tmp_path):
    run = cli("generate", "x", "--model", "nano-banana-2", "--set", "weights=1,2", "--set", "weights=[3, 4]", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert tagged.jobs()[0].input["weights"] == [3, 4]
    for value, said in [('weights=[1, "x"]', "weights: item 2: must be an integer"), ("weights=[1, 12]", "item 2: 12 is out of range"),
                        ("weights=1,x", "item 2"), ('tags=["a","b","c","d"]', "4 items; at most 3")]:
        run = cli("generate", "x", "--model", "nano-banana-2", "--set", value, "-o", tmp_path)
        assert run.exit_code == 2 and said in run.stderr, (value, run.stderr)
    assert len(submits(tagged)) == 1


def test_object_field_takes_a_json_object(cli, tagged, tmp_path):
    run = cli("generate", "x", "--model", "nano-banana-2", "--set", 'extras={"style": "ink", "n": 2}', "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert tagged.jobs()[0].input["extras"] == {"style": "ink", "n": 2}
    run = cli("generate", "x", "--model", "nano-banana-2", "--set", "extras=ink", "-o", tmp_path)
    assert run.exit_code == 2 and "extras: must be an object" in run.stderr
    assert len(submits(tagged)) == 1


@pytest.mark.parametrize(("value", "said"), [
    ('tags=["a",', "--set tags: "),
    ("tags=[a,b]", "--set tags: "),
    ('extras={"style": }', "--set extras: "),
    ("weights=[NaN]", "--set weights: "),
])
def test_malformed_json_is_a_usage_error_naming_the_field(cli, tagged, tmp_path, value, said):
    run = cli("generate", "x", "--model", "nano-banana-2", "--set", value, "-o", tmp_path)
    assert run.exit_code == 2
    assert said in run.stderr and "is not a valid JSON" in run.stderr
    assert submits(tagged) == []


def test_dry_run_shows_the_parsed_array(cli, tagged):
    run = cli("generate", "x", "--model", "nano-banana-2", "--set", 'tags=["a","b"]', "--dry-run", "--json")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["body"] == {"prompt": "x", "tags": ["a", "b"]}  # not ['["a"', '"b"]']
    assert submits(tagged) == []


def test_regen_refuses_set_of_a_flagged_field_and_takes_the_others(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "--model", "nano-banana-2", "--seed", "7", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    path = json.loads(run.stdout)["outputs"][0]["path"]
    run = cli("regen", path, "--set", "seed=8", "-o", tmp_path / "again")
    assert run.exit_code == 2 and "--set seed: use --seed" in run.stderr
    assert len(sandbox.jobs()) == 1
    run = cli("regen", path, "--seed", "8", "--set", "safety_tolerance=2", "-o", tmp_path / "again")
    assert run.exit_code == 0, run.stderr
    again = sandbox.jobs()[1]
    assert again.input["seed"] == 8 and again.input["safety_tolerance"] == 2 and again.input["prompt"] == "a fox"
