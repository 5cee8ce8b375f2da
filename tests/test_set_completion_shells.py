"""`--set <Tab>` in real interactive bash, zsh and fish with the committed scripts: a key completes
to `KEY=` with the cursor right after the `=` (no space), and a value after `KEY=` completes in place
(bash splits words at '=' as it does at ':')."""

from __future__ import annotations

from .test_completion import clear_line, shell  # noqa: F401  (shell: the fixture, one interactive shell per parameter)

LINE = "nanobanana generate x -m nano-banana-2 --set "


def typed(terminal, keys: str, expected: str) -> str:
    """Type `keys` (Tab included), wait until the screen shows `expected`, then clear the line.
    (`clear_line` says why it is Ctrl-U.)"""
    terminal.send(keys)
    try:
        return terminal.wait_for(lambda text: expected in text)
    finally:
        clear_line(terminal)


def test_a_set_key_completes_to_key_equals_without_a_space(shell):  # noqa: F811
    # the 5 is typed on at once: had a space been added after the '=', it would stand before it
    typed(shell, LINE + "safety_tol\t5", LINE + "safety_tolerance=5")


def test_a_set_value_completes_after_its_key(shell):  # noqa: F811
    typed(shell, LINE + "enable_web_search=t\t", LINE + "enable_web_search=true")
