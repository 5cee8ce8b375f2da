"""Batch and JSON Lines lines follow the flags' rules: JSON values that are not objects refused by
line number, names checked as --name is, `num_images` above 4 and `{a,b}` as `generate` makes them,
each line's model, images and schema fields checked against its model's schema and sent to the
right endpoint; --skip-invalid warns; a resumed batch estimates only what it still submits."""

from __future__ import annotations

import json
import re
from pathlib import Path

from nanobanana_cli.sandbox.models import load_models
from nanobanana_cli.stores.history import History

from .test_edit import DATA, all_text
from .test_sandbox_family import RED, picture, write_schema_file

T2I_2, EDIT_2 = "google/nano-banana-2/text-to-image", "google/nano-banana-2/edit"


def write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def docs_of(run) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines()]


def errors_of(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("error:")]


# -- which lines are JSON ------------------------------------------------------------------------


def test_json_values_that_are_not_objects_are_all_refused_with_their_line_numbers(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.jsonl", '["a list"]', '{"prompt": "a fox"}', '"just a string"', "42", "null", "true")
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2
    for number, kind in ((1, "a list"), (3, "a string"), (4, "a number"), (5, "null"), (6, "true/false")):
        assert f"p.jsonl:{number}: a JSON line must be an object" in run.stderr and f"not {kind}" in run.stderr
    assert "p.jsonl:2:" not in run.stderr and "5 invalid line(s)" in run.stderr
    assert sandbox.stats.requests == []


def test_a_file_whose_first_line_is_json_is_json_lines_and_plain_text_in_it_is_refused(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", '{"prompt": "a fox"}', "a plain prompt", '["a list"]')
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2 and "p.txt:2: invalid JSON" in run.stderr and "p.txt:3: a JSON line must be an object" in run.stderr
    assert sandbox.stats.requests == []


def test_in_a_file_of_plain_prompts_a_line_starting_with_a_bracket_or_quote_is_a_prompt(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a plain prompt", '["a list"] of things', '"quoted" words', '{"prompt": "a whale"}')
    run = cli("batch", prompts, "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    assert sorted(job.input["prompt"] for job in sandbox.jobs()) == sorted(
        ["a plain prompt", '["a list"] of things', '"quoted" words', "a whale"]
    )


# -- the flags' rules --------------------------------------------------------------------------------


def test_a_line_name_that_leaves_the_output_directory_is_refused_as_the_flag_is(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "a fox", "name": "../escape"}', '{"prompt": "b", "name": ".hidden"}')
    run = cli("batch", prompts, "-o", tmp_path / "out")
    flag = cli("generate", "a fox", "--name", "../x", "-o", tmp_path / "out")
    assert run.exit_code == 2 and flag.exit_code == 2
    reason = re.search(r"invalid --name '\.\./x': ([^;]+?)(;|$)", flag.stderr, re.M)[1]
    assert f"p.jsonl:1: \"name\" '../escape': {reason}" in run.stderr and "p.jsonl:2:" in run.stderr
    assert sandbox.stats.requests == [] and not list(tmp_path.glob("escape*"))


def test_num_images_9_in_a_line_is_three_jobs_numbered_1_to_9_as_generate_n_9(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "a fox", "num_images": 9, "name": "fox"}')
    run = cli("batch", prompts, "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    assert sorted(job.input["num_images"] for job in sandbox.jobs()) == [1, 4, 4]
    names = sorted(path.name for path in (tmp_path / "out").glob("*.png"))
    assert sorted(int(re.search(r"-(\d+)\.png$", name)[1]) for name in names) == list(range(1, 10))
    assert all(name.startswith("fox-") for name in names)
    assert {doc["line"] for doc in docs_of(run)} == {1} and len(docs_of(run)) == 3
    again = cli("batch", prompts, "-o", tmp_path / "out")
    assert again.exit_code == 0 and len(sandbox.jobs()) == 3  # the three jobs resume as three, none sent again


def test_batch_n_above_4_splits_every_line_as_generate_does(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a fox", "a cat")
    run = cli("batch", prompts, "-n", "6", "-o", tmp_path / "out", "-q")
    assert run.exit_code == 0, run.stderr
    assert sorted(job.input["num_images"] for job in sandbox.jobs()) == [2, 2, 4, 4] and len(run.stdout.split()) == 12


def test_num_images_that_is_not_a_whole_number_is_refused(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "a", "num_images": 0}', '{"prompt": "b", "num_images": 2.0}',
                    '{"prompt": "c", "num_images": true}')
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2 and all(f"p.jsonl:{n}: invalid number of images" in run.stderr for n in (1, 2, 3))
    assert sandbox.stats.requests == []


def test_a_brace_group_in_a_line_is_a_matrix_as_in_generate_and_double_braces_are_literal(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a {red,blue} fox", "a {{literal}} fox", "a {red,red} cat")
    run = cli("batch", prompts, "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    assert sorted(job.input["prompt"] for job in sandbox.jobs()) == ["a blue fox", "a red cat", "a red fox", "a {literal} fox"]
    manifest = [json.loads(line) for line in (tmp_path / "out" / "nanobanana-batch.jsonl").read_text().splitlines()]
    assert {"1": "blue"} in [record.get("vars") for record in manifest]  # what the gallery groups by


def test_a_plain_prompt_starting_with_a_brace_group_is_told_to_be_a_json_line(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a fox", "{red,blue} foxes")
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2 and "p.txt:2: invalid JSON" in run.stderr and '{"prompt": "…"}' in run.stderr
    fixed = write(tmp_path / "p.txt", "a fox", '{"prompt": "{red,blue} foxes"}')
    assert cli("batch", fixed, "-o", tmp_path / "out").exit_code == 0
    assert sorted(job.input["prompt"] for job in sandbox.jobs()) == ["a fox", "blue foxes", "red foxes"]


def test_no_expand_sends_batch_prompts_as_written(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a {red,blue} fox")
    run = cli("batch", prompts, "-o", tmp_path / "out", "--no-expand")
    assert run.exit_code == 0, run.stderr
    assert [job.input["prompt"] for job in sandbox.jobs()] == ["a {red,blue} fox"]


def test_an_unknown_matrix_variable_in_a_line_is_refused_with_its_line(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a fox", "a {style} fox")
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2 and "p.txt:2: {style} in the prompt is not a list" in run.stderr
    assert sandbox.stats.requests == []


# -- --skip-invalid ----------------------------------------------------------------------------------


def test_skip_invalid_warns_of_each_skipped_line_with_its_number_and_a_count(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "a fox"}', "[1]", '{"prompt": "b", "name": "../x"}',
                    '{"prompt": "c", "model": "nano-banana-2", "resolution": "9K"}')
    run = cli("batch", prompts, "-o", tmp_path / "out", "--skip-invalid")
    assert run.exit_code == 0, run.stderr
    assert errors_of(run) == []
    for number in (2, 3, 4):
        assert re.search(rf"^warning: \S*p\.jsonl:{number}: .*; skipped$", run.stderr, re.M)
    assert "warning: skipped 3 invalid line(s) of" in run.stderr and run.stderr.count("invalid line(s)") == 1
    assert [job.input["prompt"] for job in sandbox.jobs()] == ["a fox"]


# -- the estimate of a resumed batch ------------------------------------------------------------------


def test_a_resumed_batch_estimates_only_the_lines_it_still_submits(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a fox", "a cat", "an owl")
    first = cli("batch", prompts, "-o", tmp_path / "out")
    assert first.exit_code == 0 and "estimated cost $" in first.stderr and "for 3 image(s)" in first.stderr
    done = cli("batch", prompts, "-o", tmp_path / "out")
    assert done.exit_code == 0 and "estimated cost" not in done.stderr
    assert "nothing left to submit" in done.stderr and len(sandbox.jobs()) == 3
    write(prompts, "a fox", "a cat", "an owl", "a new hen")
    more = cli("batch", prompts, "-o", tmp_path / "out", "-n", "2")
    assert more.exit_code == 0, more.stderr
    # -n 2 changes every line: all four are new
    assert "for 8 image(s)" in more.stderr
    write(prompts, "a fox", "a cat", "an owl", "a new hen", "a last bee")
    last = cli("batch", prompts, "-o", tmp_path / "out")
    assert "resuming: 2 of 5 job(s) still to submit" in last.stderr and "for 2 image(s)" in last.stderr


def test_max_cost_counts_only_what_a_resumed_batch_still_submits(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", *(f"fox {n}" for n in range(5)))
    assert cli("batch", prompts, "-o", tmp_path / "out").exit_code == 0
    write(prompts, *(f"fox {n}" for n in range(6)))
    price = float(re.search(r"at \$([0-9.]+) each", cli("generate", "x", "--dry-run").stderr)[1])
    run = cli("batch", prompts, "-o", tmp_path / "out", "--max-cost", f"{price * 1.5:.4f}")
    assert run.exit_code == 0, run.stderr
    assert len(sandbox.jobs()) == 6


# -- models, images and schema fields per line -----------------------------------------------------


def test_a_line_with_images_goes_to_its_models_edit_endpoint_with_paths_relative_to_the_file(cli, sandbox, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "red.png").write_bytes(picture(RED))
    prompts = write(
        tmp_path / "in" / "edits.jsonl",
        '{"prompt": "make it night", "images": ["red.png"], "model": "nano-banana-2", "resolution": "2K"}',
        '{"prompt": "a lighthouse", "seed": 7, "aspect": "auto", "safety_tolerance": 5}',
    )
    run = cli("batch", prompts, "--model", "nano-banana-2", "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    jobs = {job.model_id: job for job in sandbox.jobs()}
    assert set(jobs) == {EDIT_2, T2I_2}
    assert jobs[EDIT_2].input["image_urls"][0].startswith("data:image/png;base64,")
    assert jobs[EDIT_2].input["resolution"] == "2K"
    assert {key: jobs[T2I_2].input.get(key) for key in ("seed", "aspect_ratio", "safety_tolerance")} == {
        "seed": 7, "aspect_ratio": "auto", "safety_tolerance": 5,
    }
    docs = {doc["line"]: doc for doc in docs_of(run)}
    assert docs[1]["model"] == EDIT_2 and docs[2]["model"] == T2I_2
    (record,) = docs[1]["input"]["image_urls"]
    assert record["file"] == "red.png" and Path(record["path"]) == tmp_path / "in" / "red.png"
    manifest = [json.loads(line) for line in (tmp_path / "out" / "nanobanana-batch.jsonl").read_text().splitlines()]
    recorded = {record["line"]: record for record in manifest if "input" in record}
    assert recorded[1]["model"] == EDIT_2 and recorded[1]["input"]["image_urls"][0]["sha256"] == record["sha256"]
    assert recorded[2]["model"] == T2I_2 and recorded[2]["input"]["safety_tolerance"] == 5
    entries = {entry.model: entry for entry in History().entries()}
    assert set(entries) >= {EDIT_2, T2I_2}
    assert not DATA.search(all_text(tmp_path, run))  # stdout, history, manifest, sidecars, images


def test_batch_model_is_the_default_of_lines_that_name_none(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a fox", '{"prompt": "a cat", "model": "nano-banana"}')
    run = cli("batch", prompts, "--model", "nano-banana-2", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    models = {job.input["prompt"]: job.model_id for job in sandbox.jobs()}
    assert models == {"a fox": T2I_2, "a cat": "google/nano-banana/text-to-image"}


def test_batch_flags_are_the_defaults_of_every_line_and_a_lines_own_field_wins(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a fox", '{"prompt": "a cat", "seed": 9, "resolution": "2K"}')
    run = cli("batch", prompts, "--model", "nano-banana-2", "--seed", "3", "--resolution", "1K", "--set",
              "safety_tolerance=2", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    sent = {job.input["prompt"]: {key: job.input.get(key) for key in ("seed", "resolution", "safety_tolerance")}
            for job in sandbox.jobs()}
    assert sent == {"a fox": {"seed": 3, "resolution": "1K", "safety_tolerance": 2},
                    "a cat": {"seed": 9, "resolution": "2K", "safety_tolerance": 2}}


def test_schema_problems_name_the_line_and_the_field_and_nothing_is_sent(cli, sandbox, tmp_path):
    (tmp_path / "red.png").write_bytes(picture(RED))
    prompts = write(
        tmp_path / "p.jsonl",
        '{"prompt": "ok", "model": "nano-banana-2"}',
        '{"prompt": "a", "model": "nano-banana-2", "resolution": "9K"}',
        '{"prompt": "b", "model": "nano-banana-2", "colour": "red"}',
        '{"prompt": "c", "model": "nano-banana-2", "safety_tolerance": 9}',
        '{"prompt": "d", "model": "no-such-model"}',
        '{"prompt": "e", "images": ["missing.png"]}',
        '{"prompt": "f", "images": "red.png"}',
        '{"prompt": "g", "seed": -1}',
        '{"prompt": "h", "model": "nano-banana-2/edit", "image_urls": ["/etc/passwd"]}',
    )
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2
    expected = {2: "resolution", 3: "'colour' is not a field", 4: "safety_tolerance", 5: '"model": unknown model',
                6: '"images": no such image file', 7: '"images"', 8: '"seed"', 9: '"image_urls"'}
    for number, field in expected.items():
        (line,) = [line for line in errors_of(run) if f"p.jsonl:{number}:" in line]
        assert field in line
    assert "p.jsonl:1:" not in run.stderr and "8 invalid line(s)" in run.stderr
    assert sandbox.stats.requests == []


def test_a_batch_dry_run_shows_each_lines_model_and_inputs_without_an_account(cli, tmp_path):
    (tmp_path / "red.png").write_bytes(picture(RED))
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "night", "images": ["red.png"], "model": "nano-banana-2"}')
    run = cli("batch", prompts, "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert f"/v1/models/{EDIT_2}" in run.stdout and '"file": "red.png"' in run.stdout
    assert not DATA.search(run.stdout + run.stderr)


def test_the_schema_the_api_serves_is_the_one_batch_lines_follow_and_its_price_is_the_estimate(start_sandbox, cli, tmp_path):
    sandbox = start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))  # 1K or 8K, 0.1 per image
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "a fox", "resolution": "2K"}', '{"prompt": "a cat", "resolution": "8K"}')
    refused = cli("batch", prompts, "--model", "nano-banana-2", "-o", tmp_path / "out")
    assert refused.exit_code == 2 and sandbox.jobs() == []
    assert "p.jsonl:1: resolution: '2K' is not one of 1K, 8K" in refused.stderr and "from the live catalog" in refused.stderr
    assert "p.jsonl:2:" not in refused.stderr
    write(prompts, '{"prompt": "a cat", "resolution": "8K", "num_images": 2}')
    run = cli("batch", prompts, "--model", "nano-banana-2", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert "estimated cost $0.2000 for 2 image(s)" in run.stderr
    assert [(job.model_id, job.input["resolution"]) for job in sandbox.jobs()] == [(T2I_2, "8K")]


def test_a_too_large_image_in_any_line_stops_the_batch_before_anything_is_sent(cli, sandbox, tmp_path):
    (tmp_path / "red.png").write_bytes(picture(RED))
    (tmp_path / "big.png").write_bytes(picture(RED) + b"\0" * (6 * 1024 * 1024))  # a PNG by its bytes, over 6 MiB
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "fine", "images": ["red.png"]}', '{"prompt": "big", "images": ["big.png"]}')
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2
    (line,) = [line for line in errors_of(run) if "p.jsonl:2:" in line]
    assert '"images": big.png' in line and "6.0 MiB" in line and "--fit" in line
    assert sandbox.stats.requests == [] or all(r.method == "GET" for r in sandbox.stats.requests)
    assert sandbox.jobs() == []


def test_the_rerun_hint_repeats_the_flags_that_shape_each_line_so_it_resumes_without_paying_twice(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a good fox", "a bad fox sandbox:fail")
    out = tmp_path / "out"
    run = cli("batch", prompts, "-o", out, "--model", "nano-banana-2", "-a", "1:1", "--seed", "3", "--set", "safety_tolerance=2")
    assert run.exit_code == 5
    hint = re.search(r"to retry the failed lines: (nanobanana batch .*)$", run.stderr, re.M)[1]
    assert hint == f"nanobanana batch {prompts} -o {out} --model nano-banana-2 -a 1:1 --seed 3 --set safety_tolerance=2"
    before = sandbox.stats.submits
    again = cli(*hint.split()[1:])
    assert again.exit_code == 5 and sandbox.stats.submits == before + 1  # only the failed line is sent again


def test_batch_takes_one_model_and_says_how_to_use_several(cli, sandbox, tmp_path):
    prompts = write(tmp_path / "p.txt", "a fox", "a cat")
    run = cli("batch", prompts, "--model", "nano-banana,nano-banana-2", "-o", tmp_path / "out")
    assert run.exit_code == 2 and len(errors_of(run)) == 1 and '"model"' in run.stderr
    assert sandbox.stats.requests == []
