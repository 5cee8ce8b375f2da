"""Help as people ask for it: `help history stats`, whole summaries in the root --help, and the fix
for an option in the wrong place (`--debug` after the command, a prompt starting with '-')."""

from __future__ import annotations

import re

from nanobanana_cli.cli import COMMANDS


def test_help_takes_a_command_and_its_subcommand(cli):
    run = cli("help", "history", "stats")
    assert run.exit_code == 0, run.stderr
    assert run.stdout == cli("history", "stats", "--help").stdout
    assert run.stdout.startswith("Usage: nanobanana history stats")
    unknown = cli("help", "history", "nope")
    assert unknown.exit_code == 2 and "'history nope'" in unknown.stderr


def test_the_root_help_shows_every_summary_whole(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    text = cli("--help").stdout
    commands = text.split("Commands:", 1)[1].split("Exit codes:", 1)[0]
    assert "..." not in commands
    flat = " ".join(commands.split())
    for entry in COMMANDS:
        assert " ".join(entry.summary.split()) in flat, entry.name


def test_debug_after_the_command_says_it_goes_before(cli):
    run = cli("generate", "x", "--debug")
    assert run.exit_code == 2
    assert "--debug goes before the command: nanobanana --debug generate" in run.stderr


def test_a_prompt_starting_with_a_dash_is_shown_after_double_dash(cli, sandbox):
    run = cli("generate", "-leading dash")
    assert run.exit_code == 2
    assert re.search(r"nanobanana generate -- '-leading dash'", run.stderr), run.stderr
    assert sandbox.stats.submits == 0
    unrelated = cli("generate", "x", "--nope")
    assert unrelated.exit_code == 2 and "`--`" not in unrelated.stderr and "goes before" not in unrelated.stderr
