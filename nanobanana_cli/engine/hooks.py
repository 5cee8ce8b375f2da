"""`--on-done 'CMD {path}'`: run a command for each saved image, never through a shell; and
`--notify`: a desktop notification when a long wait ends.

The template is split with `shlex` once, before any value is known; placeholders are then
replaced inside each argument. A prompt such as `; rm -rf ~` therefore arrives as inert text in
one argument: nothing the server or the prompt contains can start another command.
"""

from __future__ import annotations

import shlex
import shutil
import string
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import UsageError

PLACEHOLDERS = ("path", "id", "prompt", "i", "n", "aspect", "format")
HOOK_TIMEOUT_SECONDS = 300
STDERR_FD = 2
NOTIFY_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class HookResult:
    argv: list[str]
    returncode: int | None  # None: it could not be started or ran past the timeout
    problem: str | None = None


class Hook:
    def __init__(self, template: str) -> None:
        try:
            self.argv_template = shlex.split(template)
        except ValueError as exc:
            raise UsageError(f"--on-done {template!r}: {exc}", hint="quote it like a shell command") from None
        if not self.argv_template:
            raise UsageError("--on-done is empty", hint="e.g. --on-done 'open {path}'")
        for argument in self.argv_template:
            for _, field, _, _ in string.Formatter().parse(argument):
                if field is not None and field not in PLACEHOLDERS:
                    raise UsageError(
                        f"--on-done: unknown placeholder {{{field}}}",
                        hint=f"use {', '.join('{' + name + '}' for name in PLACEHOLDERS)}; {{{{ and }}}} for braces",
                    )

    def argv(self, values: Mapping[str, object]) -> list[str]:
        return [argument.format_map({name: str(values.get(name, "")) for name in PLACEHOLDERS}) for argument in self.argv_template]

    def run(self, values: Mapping[str, object]) -> HookResult:
        argv = self.argv(values)
        try:
            # The hook's output goes to our stderr: stdout carries only our own result.
            completed = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=STDERR_FD, timeout=HOOK_TIMEOUT_SECONDS, check=False
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
            timeout=NOTIFY_TIMEOUT_SECONDS, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False  # no desktop session (ssh, CI): a notification is a nicety, never a failure
    return completed.returncode == 0
