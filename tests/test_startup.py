"""Start-up cost: a command imports its own module and what it uses, nothing else.

Each check runs the CLI in a fresh interpreter and lists the modules it ended up with: `requests`,
Rich and SQLite are loaded only by commands that use them, and no command loads another's module.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nanobanana_cli.cli import COMMANDS, build_app, command_from

HEAVY = ("requests", "urllib3", "rich", "sqlite3", "PIL", "nanobanana_cli.sandbox", "nanobanana_cli.api.client")
PROBE = """
import json, sys
from nanobanana_cli.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_by(*args: str, env: dict[str, str] | None = None) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60, env=env)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or any(m.startswith(h + ".") or m == h for h in HEAVY))


def command_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("nanobanana_cli.commands.")}


@pytest.mark.parametrize("args", [["--help"], ["-h"], [], ["--version"]])
def test_root_help_and_version_load_no_command_and_nothing_heavy(args):
    modules = loaded_by(*args)
    assert heavy(modules) == [] and command_modules(modules) == set()
    if args == ["--version"]:
        assert "typer" not in modules  # answered before the app is built


def test_a_commands_help_loads_that_command_alone():
    modules = loaded_by("status", "--help")
    assert command_modules(modules) == {"nanobanana_cli.commands.jobs", "nanobanana_cli.commands.options"}
    assert heavy(modules) == []


def test_a_dry_run_loads_neither_sqlite_nor_rich_nor_other_commands():
    modules = loaded_by("generate", "a fox", "--dry-run")
    assert command_modules(modules) == {"nanobanana_cli.commands.generate", "nanobanana_cli.commands.options"}
    assert [m for m in heavy(modules) if not m.startswith(("requests", "urllib3", "nanobanana_cli.api.client"))] == []
    assert "nanobanana_cli.stores.history" not in modules


# The MCP SDK and what it brings (pydantic, anyio, starlette...) load only when `nanobanana mcp` serves.
MCP_SDK = ("mcp", "mcp_types", "pydantic", "anyio", "starlette", "httpx2", "uvicorn", "opentelemetry")


def mcp_sdk(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in MCP_SDK)


@pytest.mark.parametrize("args", [["--help"], ["mcp", "--help"], ["mcp", "--print-config", "vscode"]])
def test_the_mcp_sdk_loads_only_to_serve(args):
    modules = loaded_by(*args)
    assert mcp_sdk(modules) == [] and heavy(modules) == []
    assert "nanobanana_cli.mcp.server" not in modules and "nanobanana_cli.mcp.adapter" not in modules
    if args[0] == "mcp":
        assert command_modules(modules) == {"nanobanana_cli.commands.mcp", "nanobanana_cli.commands.options"}


def test_python_importtime_of_help_has_no_mcp():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "nanobanana_cli", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "nanobanana_cli.cli" in imported and mcp_sdk(imported) == []


def test_status_loads_sqlite_and_requests_because_it_uses_them_but_not_rich(sandbox, tmp_path):
    import os

    modules = loaded_by("status", "--last", env=os.environ.copy())  # no job yet: it reads the history, then stops
    assert "sqlite3" in modules
    assert not any(m == "rich" or m.startswith("rich.") for m in modules)  # no terminal: no live display
    assert command_modules(modules) == {"nanobanana_cli.commands.jobs", "nanobanana_cli.commands.options"}


SUBMIT_PROBE = """
import json, sys
from nanobanana_cli.api import client
from nanobanana_cli.cli import main
real_submit = client.Client.submit
def submit(self, *args, **kwargs):
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
    return real_submit(self, *args, **kwargs)
client.Client.submit = submit
sys.exit(main(sys.argv[1:]))
"""
# Needed only once the job exists: loading them before the submit would delay the job itself.
AFTER_SUBMIT = {
    "nanobanana_cli.engine.polling", "nanobanana_cli.engine.downloads", "nanobanana_cli.engine.workers",
    "nanobanana_cli.engine.hooks", "nanobanana_cli.engine.provenance",
}


def test_generate_submits_before_loading_what_waiting_and_saving_need(sandbox, tmp_path):
    import os

    proc = subprocess.run(
        [sys.executable, "-c", SUBMIT_PROBE, "generate", "a fox", "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    at_submit = set(json.loads(next(line for line in proc.stderr.splitlines() if line.startswith('["'))))
    assert "nanobanana_cli.stores.history" in at_submit  # the job is recorded before the POST
    assert sorted(at_submit & AFTER_SUBMIT) == []
    assert [path.suffix for path in (tmp_path / "out").iterdir()] == [".png"]  # and it still waited and saved


def test_each_table_summary_is_the_commands_own_first_sentence():
    for entry in COMMANDS:
        real = command_from(entry)
        first_paragraph = " ".join(real.help.split("\n\n")[0].split())
        assert first_paragraph == entry.summary or first_paragraph.startswith(entry.summary + " "), entry.name
        assert real.get_short_help_str(40) == entry.summary, "listings show it whole"


def test_the_lazy_app_shows_the_same_help_as_the_eager_one():
    from typer.testing import CliRunner

    runner = CliRunner()
    for args in (["--help"], ["history", "--help"], ["generate", "--help"], ["config", "--help"]):
        lazy = runner.invoke(build_app(lazy=True), args, prog_name="nanobanana", terminal_width=100)
        eager = runner.invoke(build_app(), args, prog_name="nanobanana", terminal_width=100)
        assert lazy.output == eager.output and lazy.exit_code == eager.exit_code == 0, args
    eager = build_app()
    registered = [command.name for command in eager.registered_commands] + [group.name for group in eager.registered_groups]
    assert registered == [entry.name for entry in COMMANDS]  # every command of the table, in its order, and no other


def test_a_mistyped_command_is_still_told_the_nearest_one(cli):
    run = cli("generat", "a fox")
    assert run.exit_code == 2 and "generate" in run.stderr
