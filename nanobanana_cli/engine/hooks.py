"""`--on-done 'CMD {path}'`: run a command for each saved image, never through a shell; and
`--notify`: a desktop notification when a long wait ends.

The template is split with `shlex` once, before any value is known; placeholders are then
replaced inside each argument. A prompt such as `; rm -rf ~` therefore arrives as inert text in
one argument: nothing the server or the prompt contains can start another command.

Hooks are often someone else's upload script, and a notifier has no use for the API token: both
run with the token's environment variables removed, unless the user opts in for hooks
(`--hook-env-token`, `config set hook_token true`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import string
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import UsageError
from ..stores.tokens import TOKEN_ENV_VARS

PLACEHOLDERS = ("path", "id", "prompt", "i", "n", "aspect", "format")
HOOK_TIMEOUT_SECONDS = 300
STDERR_FD = 2
NOTIFY_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class HookResult:
    argv: list[str]
    returncode: int | None  # None: it could not be started or ran past the timeout
    problem: str | None = None


def environment_without_token() -> dict[str, str]:
    """Our environment, less the variables that may hold the API token."""
    return {name: value for name, value in os.environ.items() if name not in TOKEN_ENV_VARS}


class Hook:
    def __init__(self, template: str, *, pass_token: bool = False) -> None:
        self.pass_token = pass_token  # the user opted in: the hook inherits the token's variables
        try:
            self.argv_template = shlex.split(template)
        except ValueError as exc:
            raise UsageError(f"--on-done {template!r}: {exc}", hint="quote it like a shell command") from None
        if not self.argv_template:
            raise UsageError("--on-done is empty", hint="e.g. --on-done 'open {path}'")
        usage = f"use {', '.join('{' + name + '}' for name in PLACEHOLDERS)}; {{{{ and }}}} for braces"
        for argument in self.argv_template:
            try:
                fields = [(field, spec, conversion) for _, field, spec, conversion in string.Formatter().parse(argument)]
            except ValueError as exc:  # a lone brace: refused now, not after the images are paid for
                raise UsageError(f"--on-done {argument!r}: {exc}", hint=usage) from None
            for field, spec, conversion in fields:
                if field is not None and field not in PLACEHOLDERS:
                    raise UsageError(f"--on-done: unknown placeholder {{{field}}}", hint=usage)
                if field is not None and (spec or conversion):  # {n:x} would fail only when the hook runs
                    raise UsageError(f"--on-done: {{{field}}} takes no format or conversion", hint=usage)

    def argv(self, values: Mapping[str, object]) -> list[str]:
        return [argument.format_map({name: str(values.get(name, "")) for name in PLACEHOLDERS}) for argument in self.argv_template]

    def run(self, values: Mapping[str, object]) -> HookResult:
        argv = self.argv(values)
        try:
            # The hook's output goes to our stderr: stdout carries only our own result.
            completed = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=STDERR_FD, timeout=HOOK_TIMEOUT_SECONDS, check=False,
                env=None if self.pass_token else environment_without_token(),
            )
        except OSError as exc:
            return HookResult(argv, None, f"cannot run {argv[0]!r}: {exc.strerror or exc}")
        except subprocess.TimeoutExpired:
            return HookResult(argv, None, f"{argv[0]!r} ran past {HOOK_TIMEOUT_SECONDS}s and was stopped")
        return HookResult(argv, completed.returncode, None if completed.returncode == 0 else f"exited {completed.returncode}")


def notify_desktop(title: str, message: str) -> bool:
    """Best effort: `notify-send` (Linux, BSD) or `osascript` (macOS); False when neither exists or it fails.

    The texts are separate arguments here too: `--` ends notify-send's options, and AppleScript reads
    them from `argv` rather than from its own source, so no quoting of the message is ever needed.
    """
    if shutil.which("notify-send"):
        argv = ["notify-send", "--", title, message]
    elif shutil.which("osascript"):
        script = ["on run argv", "display notification (item 2 of argv) with title (item 1 of argv)", "end run"]
        argv = ["osascript", *(part for line in script for part in ("-e", line)), title, message]
    else:
        return False
    try:
        completed = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=NOTIFY_TIMEOUT_SECONDS, check=False, env=environment_without_token(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False  # no desktop session (ssh, CI): a notification is a nicety, never a failure
    return completed.returncode == 0
