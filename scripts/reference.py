"""Regenerate what is derived from the CLI: shell completion scripts, docs/cli.md and the man page
(docs/nanobanana.1, which the wheel installs as share/man/man1/nanobanana.1).

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
    return _nanobanana_python("-m", "nanobanana_cli", *args)


def _nanobanana_python(*args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("NANOBANANA_", "RUNCOMFY", "YOUR_API"))}
    env.update(HELP_ENV)
    with tempfile.TemporaryDirectory() as empty:  # no config file and no stored token: built-in defaults
        env.update(NANOBANANA_CONFIG_DIR=empty, NANOBANANA_DATA_DIR=empty)
        proc = subprocess.run(
            [sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=True
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


EXAMPLES = [
    ("Try it offline, against the local sandbox: no account, no credits.",
     'nanobanana generate "a glass greenhouse at dusk" --sandbox'),
    ("Log in once; the token is stored privately.", "nanobanana auth login"),
    ("Four portrait images into out/, their paths on stdout.", 'nanobanana generate "a red fox" -a 9:16 -n 4 -o out/'),
    ("A prompt matrix: four jobs.", 'nanobanana generate "a {red,blue} car in {fog,snow}"'),
    ("Submit now, collect later.", 'ID=$(nanobanana generate "a red fox" --no-wait)\nnanobanana watch "$ID"'),
    ("Every prompt of a file (one per line), resumably.", "nanobanana batch prompts.txt -o out/"),
    ("The recorded jobs, and what they cost.", "nanobanana history\nnanobanana history stats"),
]


def _escape(text: str) -> str:
    """Filled text for troff: backslashes and hyphens escaped, non-ASCII named, no line taken for a request."""
    return _roff(text).replace("-", "\\-")


def _paragraphs(text: str) -> list[str]:
    """A command's help as man paragraphs: prose is filled, indented blocks (examples) kept as written."""
    out: list[str] = []
    for block in text.replace("\b\n", "").split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip() != "\b"]
        if not lines:
            continue
        if all(line.startswith("  ") for line in lines):
            out += [".RS", ".nf", *(_escape(line[2:]) for line in lines), ".fi", ".RE"]
        else:
            out += [".PP", _escape(" ".join(line.strip() for line in lines))]
    return out


def _options(command: object, ctx: object) -> list[str]:
    out: list[str] = []
    for param in command.get_params(ctx):  # type: ignore[attr-defined]
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        out += [".TP", f"\\fB{_escape(names)}\\fR", _escape(" ".join(help_text.split()))]
    return out


def render_man() -> str:
    """The man page, from the app's own commands, options and help topics (run with built-in defaults)."""
    import typer

    from nanobanana_cli.cli import build_app

    root = typer.main.get_command(build_app())
    root_ctx = typer.Context(root, info_name="nanobanana", **root.context_settings)
    topics = dict((title.split()[-1], text) for title, text in [(f"help {t}", _nanobanana("help", t).rstrip()) for t in help_topics()])
    page = [
        '.TH NANOBANANA 1 "" "nanobanana" "User Commands"',
        ".SH NAME",
        "nanobanana \\- generate images with Google's nano\\-banana model on RunComfy, from the terminal",
        ".SH SYNOPSIS",
        ".B nanobanana",
        "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".br",
        ".B nanobanana help",
        "[\\fITOPIC\\fR|\\fICOMMAND\\fR]",
        ".SH DESCRIPTION",
        *_paragraphs(root.help or ""),
        ".PP",
        "Results (saved paths, ids, JSON) go to standard output; progress, hints, warnings and errors go to"
        " standard error. Each command is described below; \\fBnanobanana \\fICOMMAND\\fB \\-\\-help\\fR shows the same.",
        ".SH OPTIONS",
        *_options(root, root_ctx),
        ".SH COMMANDS",
    ]
    for path in command_paths()[1:]:
        command, ctx = root, root_ctx
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
            ctx = typer.Context(command, info_name=name, parent=ctx, **command.context_settings)
        if getattr(command, "commands", None):  # a group: its commands follow
            page += [f".SS nanobanana {' '.join(path)} \\fICOMMAND\\fR", *_paragraphs(command.help or "")]
            continue
        usage = " ".join(command.collect_usage_pieces(ctx))  # type: ignore[attr-defined]
        page += [f".SS nanobanana {' '.join(path)} {_escape(usage)}", *_paragraphs(command.help or ""),
                 *_options(command, ctx)]
    page += [".PP", "Help topics: " + ", ".join(f"\\fBnanobanana help {_escape(t)}\\fR" for t in topics) + "."]
    for topic, section in MAN_SECTIONS.items():
        page += [f".SH {section}", ".nf", _roff(topics[topic]), ".fi"]
    page += [
        ".SH FILES",
        ".TP", "\\fI$NANOBANANA_CONFIG_DIR/config.json\\fR",
        "Defaults set with \\fBnanobanana config\\fR. The directory is the platform's user config directory"
        " (\\fI~/.config/nanobanana\\fR on Linux) unless NANOBANANA_CONFIG_DIR names another.",
        ".TP", "\\fI$NANOBANANA_CONFIG_DIR/token\\fR",
        "The API token stored by \\fBnanobanana auth login\\fR, readable by its owner only.",
        ".TP", "\\fI$NANOBANANA_DATA_DIR/history.sqlite3\\fR",
        "The job history. The directory is the platform's user data directory"
        " (\\fI~/.local/share/nanobanana\\fR on Linux) unless NANOBANANA_DATA_DIR names another.",
        ".SH EXAMPLES",
    ]
    for caption, commands in EXAMPLES:
        page += [".PP", _escape(caption), ".RS", ".nf", *(_escape(line) for line in commands.splitlines()), ".fi", ".RE"]
    page += [".SH SEE ALSO", "\\fBnanobanana help\\fR; docs/cli.md in the source tree"]
    return "\n".join(page) + "\n"


def man_page() -> str:
    """render_man() in a process of its own, with no config, environment or token in effect."""
    return _nanobanana_python(str(Path(__file__).resolve()), "--print-man")


def expected_files() -> dict[Path, str]:
    files = {ROOT / "completions" / name: completion_script(shell) for shell, name in SHELLS.items()}
    texts = reference_texts()
    files[ROOT / "docs" / "cli.md"] = cli_reference(texts)
    files[ROOT / "docs" / "nanobanana.1"] = man_page()
    return files


def main(argv: list[str]) -> int:
    if argv == ["--print-man"]:
        sys.path.insert(0, str(ROOT))
        sys.stdout.write(render_man())
        return 0
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
