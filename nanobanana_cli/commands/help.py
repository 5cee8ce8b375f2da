"""`nanobanana help [TOPIC]`: topics that no single command's --help covers, and each command's help."""

from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from ..render.output import Output
from ..render.topics import TOPICS, topic_list, topic_text


def _complete_topic(incomplete: str) -> list[str]:
    return [name for name in TOPICS if name.startswith(incomplete)]


def help_topic(
    ctx: typer.Context,
    topic: Annotated[
        Optional[list[str]],
        typer.Argument(
            help=f"One of: {', '.join(TOPICS)}; or a command, with its subcommand if it has some (history stats).",
            show_default=False, autocompletion=_complete_topic,
        ),
    ] = None,
) -> None:
    """Explain a topic (environment, exit codes, JSON output, file names, models, editing), or show a
    command's help.

    Examples:

      nanobanana help

      nanobanana help json

      nanobanana help models

      nanobanana help generate

      nanobanana help history stats
    """
    output = Output()
    if not topic:
        text = topic_list()
    elif len(topic) == 1 and topic[0] in TOPICS:
        text = topic_text(topic[0])
    else:
        text = _command_help(ctx.find_root(), topic)
    for line in text.splitlines():
        output.result_line(line)


def _command_help(root: Any, words: list[str]) -> str:
    """The help of `nanobanana WORDS --help`, walking down command groups one word at a time."""
    context = root
    for depth, word in enumerate(words):
        group = context.command
        command = group.get_command(context, word) if hasattr(group, "get_command") else None
        if command is None:
            asked = " ".join(words[: depth + 1])
            raise UsageError(f"no help topic or command {asked!r}", hint=f"topics: {', '.join(TOPICS)}; or see `nanobanana --help`")
        context = typer.Context(command, info_name=word, parent=context)
    with context:
        return context.command.get_help(context).rstrip()
