"""What a newcomer trips over in `generate` (issue 22, "Runs and reruns"): a file named as a prompt,
flags that --no-wait ignores, duplicate matrix values, the command an interrupt names, the price shown
before a run."""

from __future__ import annotations

import pytest


def test_a_prompt_that_names_an_existing_file_is_refused_with_the_fix(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts.txt").write_text("a red fox\na blue fox\n")
    run = cli("generate", "prompts.txt")
    assert run.exit_code == 2
    assert "existing file" in run.stderr
    assert "nanobanana batch prompts.txt" in run.stderr and "nanobanana generate - < prompts.txt" in run.stderr
    assert sandbox.stats.submits == 0


def test_literal_sends_a_file_name_as_the_prompt(cli, sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts.txt").write_text("a red fox\n")
    run = cli("generate", "prompts.txt", "--literal", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert sandbox.stats.submits == 1


@pytest.mark.parametrize("prompt", ["prompts.txt is a nice name", "missing.txt"])
def test_a_sentence_or_a_name_that_is_no_file_is_a_prompt(cli, sandbox, tmp_path, monkeypatch, prompt):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts.txt").write_text("a red fox\n")
    run = cli("generate", prompt, "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert sandbox.stats.submits == 1
