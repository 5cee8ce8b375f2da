"""Regenerate what is derived from the CLI: shell completion scripts and docs/cli.md.

    python scripts/reference.py          # rewrite completions/ and docs/cli.md
    python scripts/reference.py --check  # exit 1 if a committed file is stale (the tests do this too)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELLS = {"bash": "nanobanana.bash", "zsh": "_nanobanana", "fish": "nanobanana.fish"}
HELP_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}


def _nanobanana(*args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("NANOBANANA_", "RUNCOMFY", "YOUR_API"))}
    env.update(HELP_ENV)
    proc = subprocess.run(
        [sys.executable, "-m", "nanobanana_cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    return proc.stdout


def completion_script(shell: str) -> str:
    # Typer guesses the shell from the parent process unless detection is off; only then does
    # --show-completion take the shell's name, which is what generating all three needs.
    os.environ["_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION"] = "1"
    try:
        return _nanobanana("--show-completion", shell)
    finally:
        del os.environ["_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION"]


def command_paths() -> list[list[str]]:
    """Every command, from the app's own registry, in the order the root help lists them."""
    from nanobanana_cli.cli import build_app

    app = build_app()

    paths: list[list[str]] = [[]]
    for command in app.registered_commands:
        paths.append([command.name])
    for group in app.registered_groups:
        paths.append([group.name])
        paths.extend([group.name, command.name] for command in group.typer_instance.registered_commands)
    return paths


def cli_reference() -> str:
    sections = [
        "# nanobanana command reference\n",
        "Generated from `--help` by `python scripts/reference.py`; a test fails when it is stale.\n",
    ]
    for path in command_paths():
        title = " ".join(["nanobanana", *path])
        sections.append(f"## `{title}`\n\n```text\n{_nanobanana(*path, '--help').rstrip()}\n```\n")
    return "\n".join(sections)


def expected_files() -> dict[Path, str]:
    files = {ROOT / "completions" / name: completion_script(shell) for shell, name in SHELLS.items()}
    files[ROOT / "docs" / "cli.md"] = cli_reference()
    return files


def main(argv: list[str]) -> int:
    stale = []
    for path, text in expected_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if "--check" not in argv:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(("stale: " if "--check" in argv else "rewrote: ") + ", ".join(map(str, stale)), file=sys.stderr)
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
