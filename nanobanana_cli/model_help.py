"""`generate --model X --help` (and `edit`): the command's help, then model X's fields, types,
values and defaults, as `nanobanana model X` shows them.

Typer prints a command's help from its parameters alone, before any value is read; so the
arguments are looked at here, before and after it runs: `fields_after_help(args)` gives the
`model` command line(s) to run once the help was printed (none for any other command line).
Pure, importing only what cli.py already has: `--help` stays fast.
"""

from __future__ import annotations

from .invocation import ROOT_FLAGS

HELP_FLAGS = ("--help", "-h")
COMMANDS = ("generate", "edit")


def fields_after_help(args: list[str]) -> list[list[str]]:
    """`["model", X]` (with `--edit` for `edit`) for each model named by --model/-m on a
    `generate` or `edit` command line that asks for --help; [] otherwise."""
    words = list(args)
    while words and words[0] in ROOT_FLAGS:
        words.pop(0)
    if not words or words[0] not in COMMANDS:
        return []
    command, rest = words[0], words[1:]
    if "--" in rest:
        rest = rest[: rest.index("--")]  # after `--` everything is the prompt
    if not any(word in HELP_FLAGS for word in rest):
        return []
    named: list[str] = []
    for index, word in enumerate(rest):
        if word in ("--model", "-m") and index + 1 < len(rest):
            named.append(rest[index + 1])
        elif word.startswith("--model="):
            named.append(word.removeprefix("--model="))
        elif word.startswith("-m") and not word.startswith("--") and len(word) > 2:
            named.append(word[2:])
    models = [name.strip() for text in named for name in text.split(",") if name.strip()]
    edit = ["--edit"] if command == "edit" else []
    return [["model", model, *edit] for model in dict.fromkeys(models)]
