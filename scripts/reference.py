"""Regenerate what is derived from the CLI: shell completion scripts, docs/cli.md and the man page.

    python scripts/reference.py          # rewrite completions/, docs/cli.md and docs/nanobanana.1
    python scripts/reference.py --check  # exit 1 if a committed file is stale (the tests do this too)

docs/cli.md and docs/nanobanana.1 are rendered from the same text: each command's `--help` and
each `nanobanana help TOPIC`, produced with no config, environment or token in effect, so the
defaults they show are the built-in ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELLS = {"bash": "nanobanana.bash", "zsh": "_nanobanana", "fish": "nanobanana.fish"}
HELP_ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
MAN_SECTIONS = {"environment": "ENVIRONMENT", "exit-codes": "EXIT STATUS", "json": "JSON OUTPUT", "file-names": "FILE NAMES"}

def _nanobanana(*args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("NANOBANANA_", "RUNCOMFY", "YOUR_API"))}
    env.update(HELP_ENV)
    with tempfile.TemporaryDirectory() as empty:  # no config file and no stored token: built-in defaults
        env.update(NANOBANANA_CONFIG_DIR=empty, NANOBANANA_DATA_DIR=empty)
        proc = subprocess.run(
            [sys.executable, "-m", "nanobanana_cli", *args], capture_output=True, text=True, env=env, cwd=ROOT, check=True
        )
    return proc.stdout


def completion_script(shell: str) -> str:
    from nanobanana_cli.completion import SCRIPTS

    return SCRIPTS[shell]


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


def help_topics() -> list[str]:
    from nanobanana_cli.render.topics import TOPICS

    return list(TOPICS)


def reference_texts() -> list[tuple[str, str]]:
    """(title, text) of every command's help, then of every help topic: what both documents show."""
    texts = [(" ".join(["nanobanana", *path]), _nanobanana(*path, "--help").rstrip()) for path in command_paths()]
    texts += [(f"nanobanana help {topic}", _nanobanana("help", topic).rstrip()) for topic in help_topics()]
    return texts


def cli_reference(texts: list[tuple[str, str]]) -> str:
    sections = [
        "# nanobanana command reference\n",
        "Generated from `--help` and `nanobanana help TOPIC` by `python scripts/reference.py`, like the man page"
        " (nanobanana.1); a test fails when either is stale.\n",
    ]
    sections += [f"## `{title}`\n\n```text\n{text}\n```\n" for title, text in texts]
    return "\n".join(sections)


def _roff(text: str) -> str:
    """Verbatim text for a no-fill block: backslashes escaped, no line taken for a request, and
    non-ASCII characters (·, —, 日本の庭) named, so troff needs no input encoding."""
    escaped = "".join(char if ord(char) < 128 else f"\\[u{ord(char):04X}]" for char in text.replace("\\", "\\e"))
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in escaped.splitlines())


def man_page(texts: list[tuple[str, str]]) -> str:
    by_title = dict(texts)
    page = [
        '.TH NANOBANANA 1 "" "nanobanana" "User Commands"',
        ".SH NAME",
        "nanobanana \\- generate images with Google's nano-banana model on RunComfy, from the terminal",
        ".SH SYNOPSIS",
        ".B nanobanana",
        "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        ".nf",
        _roff(by_title["nanobanana"]),
        ".fi",
        ".SH COMMANDS",
    ]
    for title, text in texts[1:]:
        if title.startswith("nanobanana help ") and title.split()[-1] in MAN_SECTIONS:
            continue
        page += [f".SS {title}", ".nf", _roff(text), ".fi"]
    for topic, section in MAN_SECTIONS.items():
        page += [f".SH {section}", ".nf", _roff(by_title[f"nanobanana help {topic}"]), ".fi"]
    page += [".SH SEE ALSO", "docs/cli.md in the source tree; \\fBnanobanana help\\fR"]
    return "\n".join(page) + "\n"


def expected_files() -> dict[Path, str]:
    files = {ROOT / "completions" / name: completion_script(shell) for shell, name in SHELLS.items()}
    texts = reference_texts()
    files[ROOT / "docs" / "cli.md"] = cli_reference(texts)
    files[ROOT / "docs" / "nanobanana.1"] = man_page(texts)
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
