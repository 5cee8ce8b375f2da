"""Prompt matrices and --on-done hooks, as library units (the CLI tests use the sandbox)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nanobanana_cli.engine.hooks import Hook
from nanobanana_cli.engine.matrix import expand, parse_vars
from nanobanana_cli.errors import UsageError


def test_groups_expand_to_the_cartesian_product_first_group_slowest():
    found = expand("a {red,blue} car in {fog,snow}")
    assert [e.prompt for e in found] == ["a red car in fog", "a red car in snow", "a blue car in fog", "a blue car in snow"]
    assert found[1].values == {"1": "red", "2": "snow"}


def test_named_variables_come_from_var_and_braces_escape():
    found = expand("{style} fox {{not a group}}", parse_vars(["style=ink, oil"]))
    assert [(e.prompt, e.values) for e in found] == [
        ("ink fox {not a group}", {"style": "ink"}), ("oil fox {not a group}", {"style": "oil"}),
    ]


def test_a_prompt_without_groups_is_itself_once():
    assert [e.prompt for e in expand("a plain fox")] == ["a plain fox"]


@pytest.mark.parametrize(
    ("prompt", "variables", "message"),
    [
        ("a {colour} fox", [], "no --var gives it values"),
        ("a { fox", [], "unbalanced"),
        ("a fox", ["style=ink"], "not used in the prompt"),
    ],
)
def test_mistakes_are_usage_errors_naming_the_fix(prompt, variables, message):
    with pytest.raises(UsageError, match=message) as caught:
        expand(prompt, parse_vars(variables))
    assert caught.value.hint


@pytest.mark.parametrize("spec", ["style", "=a", "9x=a", "style="])
def test_bad_var_specs_are_refused(spec):
    with pytest.raises(UsageError, match="invalid --var"):
        parse_vars([spec])


def test_hook_gets_each_placeholder_as_inert_text_never_through_a_shell(tmp_path):
    record = tmp_path / "args.txt"
    script = tmp_path / "record.py"
    script.write_text("import sys, pathlib; pathlib.Path(sys.argv[1]).write_text('\\n'.join(sys.argv[2:]))")
    hook = Hook(f"{sys.executable} {script} {record} {{path}} --prompt={{prompt}} {{i}}")
    hostile = "a fox; rm -rf ~ && touch pwned $(touch pwned2) `touch pwned3`"
    result = hook.run({"path": tmp_path / "img 1.png", "prompt": hostile, "i": 1})
    assert result.returncode == 0 and result.problem is None
    assert record.read_text().split("\n") == [str(tmp_path / "img 1.png"), f"--prompt={hostile}", "1"]
    assert not any(Path(name).exists() for name in ("pwned", "pwned2", "pwned3"))


def test_hook_templates_are_checked_before_anything_runs():
    with pytest.raises(UsageError, match="unknown placeholder"):
        Hook("echo {file}")
    with pytest.raises(UsageError, match="empty"):
        Hook("   ")
    with pytest.raises(UsageError, match="No closing quotation"):
        Hook("echo 'unterminated")


def test_a_hook_that_cannot_start_is_reported_not_raised(tmp_path):
    result = Hook(str(tmp_path / "no-such-program") + " {path}").run({"path": "x"})
    assert result.returncode is None and "cannot run" in result.problem


# -- planning a generate run ------------------------------------------------------------------------

DEFAULTS = {"aspect_ratio": "1:1", "output_format": "png", "num_images": 1}


def test_images_past_four_are_split_into_jobs_the_api_accepts():
    from nanobanana_cli.engine.matrix import split_images

    assert [split_images(n) for n in (1, 4, 5, 10)] == [[1], [4], [4, 1], [4, 4, 2]]


def test_a_plan_is_every_prompt_times_its_jobs_with_the_images_numbered_across_them():
    from nanobanana_cli.engine.matrix import plan_jobs

    planned = plan_jobs("a {red,blue} fox", {}, 6, DEFAULTS)
    assert [(j.generation.prompt, j.generation.num_images, j.first, j.total) for j in planned] == [
        ("a red fox", 4, 1, 6), ("a red fox", 2, 5, 6), ("a blue fox", 4, 1, 6), ("a blue fox", 2, 5, 6),
    ]
    assert plan_jobs("a {red,blue} fox", {}, 1, DEFAULTS, literal=True)[0].generation.prompt == "a {red,blue} fox"


def test_a_huge_matrix_is_refused_before_it_is_built():
    from nanobanana_cli.engine.matrix import plan_jobs

    groups = " ".join("{" + ",".join(f"w{n}" for n in range(10)) + "}" for _ in range(7))  # ten million prompts
    with pytest.raises(UsageError, match="over 10000 jobs"):
        plan_jobs(groups, {}, 1, DEFAULTS)


def test_matrix_values_in_file_names_are_slugs_so_none_leads_out_of_the_directory():
    from nanobanana_cli.engine.matrix import plan_jobs
    from nanobanana_cli.engine.naming import FileNamer, NameTemplate

    job = plan_jobs("a fox {../../etc,x}", {}, 1, DEFAULTS)[0]
    template = NameTemplate.parse("{var.1}-{i:02d}", job.values)
    namer = FileNamer.for_job(template, job.generation, values=job.values, first=job.first, total=job.total)
    assert namer.names("abc12345", 1) == ["etc-01.png"]
