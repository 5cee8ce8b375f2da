"""A submit whose answer is lost may have created a billed job that no id can find again (the API
lists no jobs): the error names what the user can recognise it by in the RunComfy dashboard, the
prompt (escaped, cut to 60 characters) and the model, and points at the dashboard. Exit 7."""

from __future__ import annotations

import json

from nanobanana_cli.sandbox import Faults

LONG = "a lost lighthouse on a cliff at dusk, waves breaking below, gulls\x1b[31m circling over the lamp"


def history_json(cli) -> list[dict]:
    run = cli("history", "--json", "-n", "50")
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def test_generate_names_the_prompt_and_the_model_of_a_lost_submit(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(drop_after_submit=100))
    run = cli("generate", "a lost lighthouse", "-o", tmp_path / "out")
    assert run.exit_code == 7
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert 'submit of "a lost lighthouse" on google/nano-banana/text-to-image' in error
    assert "may have been created and billed" in error and "RunComfy dashboard" in error
    (entry,) = history_json(cli)
    assert entry["status"] == "uncertain" and entry["input"]["prompt"] == "a lost lighthouse"
    assert sandbox.stats.submits == 1


def test_a_long_prompt_is_escaped_and_cut_short(cli, start_sandbox, tmp_path):
    start_sandbox(faults=Faults(drop_after_submit=100))
    run = cli("generate", LONG, "--model", "nano-banana-2", "-o", tmp_path / "out")
    assert run.exit_code == 7 and "\x1b" not in run.stderr
    shown = LONG[:60].replace("\x1b", "\\x1b")
    assert f'submit of "{shown}…" on google/nano-banana-2/text-to-image:' in run.stderr
    assert "circling" not in run.stderr


def test_batch_names_each_lost_line_by_its_prompt_then_and_on_the_next_run(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(drop_after_submit=100))
    prompts = tmp_path / "p.txt"
    prompts.write_text("a lost lighthouse\na drowned bell\n")
    for earlier in ("", "an earlier "):
        run = cli("batch", prompts, "-o", tmp_path / "out")
        assert run.exit_code == 7
        assert f'line 1: {earlier}submit of "a lost lighthouse" on google/nano-banana/text-to-image' in run.stderr
        assert f'line 2: {earlier}submit of "a drowned bell" on google/nano-banana/text-to-image' in run.stderr
        assert "RunComfy dashboard" in run.stderr
    assert sandbox.stats.submits == 2  # never sent again
    assert sorted(entry["status"] for entry in history_json(cli)) == ["uncertain", "uncertain"]
