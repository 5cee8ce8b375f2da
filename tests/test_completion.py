"""Tab completion in real interactive bash, zsh and fish, each in a pseudo-terminal with the committed
script loaded: what the line shows after <TAB> is what a user gets.

CI installs zsh and fish (.ci/run); elsewhere a missing shell is skipped, with the reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import HELD
from .test_terminal import Terminal

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COMPLETIONS = ROOT / "completions"
RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")


def start_shell(shell: str, home: Path) -> Terminal:
    """An interactive `shell` with nothing of the user's setup but our completion script, at a `> ` prompt."""
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (CI installs it from the distribution's packages in .ci/run)")
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local")}
    setups = {
        "bash": (["bash", "--norc", "--noprofile", "-i"], f"PS1='> '; source {COMPLETIONS / 'nanobanana.bash'}"),
        "zsh": (["zsh", "-f", "-i"], f"PS1='> '; autoload -Uz compinit && compinit -u -D; source {COMPLETIONS / '_nanobanana'}"),
        "fish": (["fish", "--no-config", "-i"], f"function fish_prompt; echo '> '; end; source {COMPLETIONS / 'nanobanana.fish'}"),
    }
    argv, setup = setups[shell]
    terminal = Terminal(argv, env=env, cwd=home)
    terminal.send(setup + "\n")
    terminal.send("echo READY\n")
    terminal.wait_for(lambda text: "\nREADY" in text or text.startswith("READY"))
    return terminal


def complete(terminal: Terminal, typed: str, expected: str) -> str:
    """Type `typed`, press Tab, and wait until the screen shows `expected`; then clear the line."""
    terminal.send(typed + "\t")
    try:
        return terminal.wait_for(lambda text: expected in text)
    finally:
        terminal.send("\x03")  # Ctrl-C: a fresh prompt
        terminal.send("echo CLEARED\n")
        terminal.wait_for(lambda text: text.count("CLEARED") >= 1)


@pytest.fixture(params=["bash", "zsh", "fish"])
def shell(request, tmp_path):
    terminal = start_shell(request.param, tmp_path / "home")
    yield terminal
    terminal.close()


def test_values_containing_a_colon_complete(shell):
    complete(shell, "nanobanana generate -a 9:", "nanobanana generate -a 9:16")
    complete(shell, "nanobanana batch p.txt --aspect 21", "nanobanana batch p.txt --aspect 21:9")


def test_commands_and_options_complete(shell):
    complete(shell, "nanobanana gene", "nanobanana generate")
    complete(shell, "nanobanana generate --num", "nanobanana generate --num-images")
    complete(shell, "nanobanana help exit", "nanobanana help exit-codes")


def test_job_commands_complete_recent_request_ids(shell, cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    ids = [cli("generate", f"fox {n}", "--no-wait", "-q").stdout.strip() for n in range(2)]
    first, second = ids
    shared = os.path.commonprefix(ids)
    for command, request_id in (("status", first), ("result", second), ("cancel", first), ("watch", second)):
        typed = f"nanobanana {command} {request_id[: len(shared) + 1]}"
        complete(shell, typed, f"nanobanana {command} {request_id}")
