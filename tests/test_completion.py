"""Tab completion in real interactive bash, zsh and fish, each in a pseudo-terminal with the committed
script loaded: what the line shows after <TAB> is what a user gets.

The terminal is 80 columns wide, a common size: descriptions longer than that must still reach the
shell as one candidate each.

CI installs zsh and fish (.ci/run); elsewhere a missing shell is skipped, with the reason.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HELD
from .test_terminal import Terminal

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COMPLETIONS = ROOT / "completions"
RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16")


def require(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (CI installs it from the distribution's packages in .ci/run)")


def shell_env(home: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home), "ZDOTDIR": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local" / "share")}


def start_shell(shell: str, home: Path, *, installed: bool = False) -> Terminal:
    """An interactive `shell` with nothing of the user's setup but our completion script, at a `> ` prompt.
    `installed`: the shell reads its own start-up files in `home`, where --install-completion wrote."""
    require(shell)
    home.mkdir(exist_ok=True)
    setups = {
        "bash": (["bash", "--norc", "--noprofile", "-i"], f"PS1='> '; source {COMPLETIONS / 'nanobanana.bash'}"),
        "zsh": (["zsh", "-f", "-i"], f"PS1='> '; autoload -Uz compinit && compinit -u -D; source {COMPLETIONS / '_nanobanana'}"),
        "fish": (["fish", "--no-config", "-i"], f"function fish_prompt; echo '> '; end; source {COMPLETIONS / 'nanobanana.fish'}"),
    }
    if installed:
        setups = {
            "bash": (["bash", "--rcfile", str(home / ".bashrc"), "-i"], "PS1='> '"),
            "zsh": (["zsh", "-i"], "PS1='> '"),
            "fish": (["fish", "-i"], "function fish_prompt; echo '> '; end"),
        }
    argv, setup = setups[shell]
    terminal = Terminal(argv, env=shell_env(home), cwd=home, columns=80)
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
        clear_line(terminal)


_clearings = itertools.count()


def clear_line(terminal: Terminal) -> None:
    """Empty the command line and wait until the shell is back at its prompt. Ctrl-U clears the line
    in all three shells and, unlike Ctrl-C (a signal), is read in order with the keys before it, so it
    cannot overtake a completion still being inserted. The marker is numbered and quoted so that
    only the echo's output, never the typed command or an earlier clearing, matches."""
    marker = f"<CLEARED{next(_clearings)}>"
    terminal.send(f"\x15echo '{marker}'\n")
    terminal.wait_for(lambda text: f"\n{marker}" in text)


@pytest.fixture(params=["bash", "zsh", "fish"])
def shell(request, tmp_path):
    terminal = start_shell(request.param, tmp_path / "home")
    yield terminal
    terminal.close()


def test_values_containing_a_colon_complete(shell):
    complete(shell, "nanobanana generate -a 9", "nanobanana generate -a 9:16")
    complete(shell, "nanobanana generate -a 9:", "nanobanana generate -a 9:16")
    complete(shell, "nanobanana batch p.txt --aspect 21", "nanobanana batch p.txt --aspect 21:9")


def test_commands_and_options_complete(shell):
    complete(shell, "nanobanana gene", "nanobanana generate")
    complete(shell, "nanobanana generate --nu", "nanobanana generate --num-images")
    complete(shell, "nanobanana --install-completion z", "nanobanana --install-completion zsh")
    complete(shell, "nanobanana help exit", "nanobanana help exit-codes")


def test_job_commands_complete_recent_request_ids(shell, cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    ids = [cli("generate", f"fox {n}", "--no-wait", "-q").stdout.strip() for n in range(2)]
    first, second = ids
    shared = os.path.commonprefix(ids)
    for command, request_id in (("status", first), ("result", second), ("cancel", first), ("watch", second)):
        typed = f"nanobanana {command} {request_id[: len(shared) + 1]}"
        complete(shell, typed, f"nanobanana {command} {request_id}")


@pytest.mark.parametrize("shell_name", ["zsh", "fish"])
def test_descriptions_are_whole_and_negative_flags_have_their_own(shell_name, tmp_path):
    """zsh and fish list the candidates with descriptions: each is a whole clause on one line, and
    --no-notify does not claim to send notifications."""
    terminal = start_shell(shell_name, tmp_path / "home")
    try:
        screen = complete(terminal, "nanobanana generate --no", "Turn --notify off")
        assert "Turn --preview off" in screen
        assert "Submit, print the request id, and stop" in screen
        listed = screen.split("nanobanana generate --no", 1)[1].strip()
        # zsh folds a line longer than the terminal, which is only display
        assert "Ring the bell and notify the desktop when a long wait ends" in listed.replace("\n", "")
        # seven candidates, no more: a wrapped description would have become candidates of its own
        candidates = ["--no-download", "--no-expand", "--no-hook-env-token", "--no-notify", "--no-preview", "--no-wait",
                      "--notify"]
        if shell_name == "zsh":
            assert listed.count(" -- ") == len(candidates), screen
        else:
            assert sorted(line.split()[0] for line in listed.splitlines() if line.strip()) == candidates, screen
        assert "\u2026" not in screen, "the shell had to cut a description to fit"
    finally:
        terminal.close()


@pytest.mark.parametrize("shell_name", ["bash", "zsh", "fish"])
def test_install_completion_installs_our_script_where_a_new_shell_finds_it(shell_name, tmp_path):
    require(shell_name)
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run([BIN / "nanobanana", "--install-completion", shell_name], env=shell_env(home),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    ours = (COMPLETIONS / {"bash": "nanobanana.bash", "zsh": "_nanobanana", "fish": "nanobanana.fish"}[shell_name]).read_text()
    assert [path.read_text() for path in home.rglob("*") if path.is_file() and path.read_text() == ours], proc.stderr
    again = subprocess.run([BIN / "nanobanana", "--install-completion", shell_name], env=shell_env(home),
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0
    for rc_file in (home / ".bashrc", home / ".zshrc"):
        if rc_file.exists():  # installing twice adds nothing twice
            lines = [line for line in rc_file.read_text().splitlines() if line]
            assert len(lines) == len(set(lines))
    terminal = start_shell(shell_name, home, installed=True)
    try:
        complete(terminal, "nanobanana generate -a 9", "nanobanana generate -a 9:16")
        complete(terminal, "nanobanana generate --nu", "nanobanana generate --num-images")
    finally:
        terminal.close()


def test_install_completion_refuses_an_unknown_shell(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    proc = subprocess.run([BIN / "nanobanana", "--install-completion", "tcsh"], env=shell_env(home),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "bash, zsh, fish" in proc.stderr
    assert list(home.iterdir()) == []
