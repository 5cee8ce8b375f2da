"""`nanobanana help [TOPIC]`: topics that no single command's --help covers, and each command's help."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import UsageError
from ..render.output import Output
from ..render.topics import TOPICS, topic_list, topic_text


def _complete_topic(incomplete: str) -> list[str]:
    return [name for name in TOPICS if name.startswith(incomplete)]


def help_topic(
    ctx: typer.Context,
    topic: Annotated[
        Optional[str],
        typer.Argument(help=f"One of: {', '.join(TOPICS)}; or a command.", show_default=False, autocompletion=_complete_topic),
    ] = None,
) -> None:
    """Explain a topic (environment, exit codes, JSON output, file names), or show a command's help.

    Examples:

      nanobanana help

      nanobanana help json

      nanobanana help generate
    """
    output = Output()
    if topic is None:
        text = topic_list()
    elif topic in TOPICS:
        text = topic_text(topic)
    else:
        root = ctx.find_root()
        command = root.command.get_command(root, topic)  # type: ignore[attr-defined]
        if command is None:
            raise UsageError(f"no help topic or command {topic!r}", hint=f"topics: {', '.join(TOPICS)}; or see `nanobanana --help`")
        with typer.Context(command, info_name=topic, parent=root) as context:
            text = command.get_help(context).rstrip()
    for line in text.splitlines():
        output.result_line(line)
