"""A command group's --help (history, auth, config) lists each subcommand's whole summary,
wrapped, never cut with "..." (issue 22), at 80 and 100 columns; the root --help neither."""

from __future__ import annotations

import pytest

from nanobanana_cli.cli import COMMANDS, _summary, build_app


def groups() -> list[str]:
    return [info.name for info in build_app().registered_groups if info.name]


def listing(text: str) -> str:
    return " ".join(text.split("Commands:", 1)[1].split())


@pytest.mark.parametrize("columns", ["80", "100"])
def test_group_listings_show_whole_summaries(cli, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", columns)
    assert {"history", "auth", "config"} <= set(groups())
    for group in groups():
        run = cli(group, "--help")
        assert run.exit_code == 0, run.stderr
        listed = listing(run.stdout)
        assert "..." not in listed, (group, listed)
        typer_app = next(info.typer_instance for info in build_app().registered_groups if info.name == group)
        assert typer_app is not None
        for command in typer_app.registered_commands:
            summary = _summary(command.help or command.callback.__doc__ or "")
            assert f"{command.name} {summary}" in listed, (group, command.name)
    root = cli("--help")
    assert "..." not in listing(root.stdout)
    assert all(f"{entry.name} {entry.summary}" in listing(root.stdout) for entry in COMMANDS)
