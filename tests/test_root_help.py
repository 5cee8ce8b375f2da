"""The root --help lists every command with its whole summary, wrapped, never cut with "..."."""

from __future__ import annotations

from nanobanana_cli.cli import COMMANDS


def test_root_help_shows_whole_summaries(cli):
    run = cli("--help")
    assert run.exit_code == 0
    listing = " ".join(run.stdout.split("Commands:", 1)[1].split())
    assert "..." not in listing
    for entry in COMMANDS:
        assert f"{entry.name} {entry.summary}" in listing
