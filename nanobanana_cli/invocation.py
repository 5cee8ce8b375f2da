"""The command line this process was started with, so that a hint can name the exact command to run
again (an interrupted run resumes from it) without ever repeating a secret."""

from __future__ import annotations

SECRET_OPTIONS = ("--token",)
# The root command's options (they go before the command): those the command then runs with, and all of them.
ROOT_FLAGS = ("--debug",)
ROOT_OPTIONS = (*ROOT_FLAGS, "--version", "-V")
MASK = "***"

_args: list[str] = []


def remember(args: list[str]) -> None:
    """Called once by `main()` with the arguments it runs."""
    _args[:] = args


def rerun_command() -> str:
    """`nanobanana ARGS…` quoted for a POSIX shell, every --token value replaced by ***."""
    import shlex  # here: every start-up imports this module, few commands print a command line

    shown: list[str] = []
    masked = hide_next = positional = False
    for arg in _args:
        if hide_next:
            arg, masked, hide_next = MASK, True, False
        elif positional or arg == "--":
            positional = True
        elif arg in SECRET_OPTIONS:
            hide_next = True
        elif arg.partition("=")[0] in SECRET_OPTIONS:
            arg, masked = f"{arg.partition('=')[0]}={MASK}", True
        shown.append(arg)
    command = shlex.join(["nanobanana", *shown])
    return command + (f" (with your token in place of {MASK})" if masked else "")
