"""The one sanitiser for text that did not originate in this program, before a terminal shows it.

Server answers, image provenance, sidecars, manifests, the catalog and the history (prompts
included) can all carry characters a terminal acts on: ESC and the other C0 controls start
sequences that retitle the window, clear the screen or plant a link; C1 controls (U+0080-U+009F)
do the same on terminals that read them; bidi controls reorder what is shown, so a line can read
differently from what it says; a newline or carriage return forges a line of its own. Each is
written as a visible escape (`\\x1b`, `\\u202e`, `\\n`) instead: shown, harmless, and never
stripped, since stripping could join two halves of something (a token) that masking missed.

`Output` passes every line through `escape` (so does `main()`'s error line); a value placed in one
line or one table cell is escaped with nothing kept, so its newlines and tabs cannot break the row.
Backslashes are left alone: a Windows path stays readable, at the price of `\\x1b` typed by
someone being indistinguishable from an escaped ESC, which is harmless.

Lives beside `errors` at the bottom of the layers: the API's parsers use it too.
"""

from __future__ import annotations

import re

# C0 (with \t and \n), DEL and C1; the line and paragraph separators; the bidi marks, embeddings,
# overrides and isolates (U+061C, U+200E-F, U+202A-E, U+2066-9); lone surrogates, which are what
# undecodable bytes of a file name or argv become and which no terminal encoding can write.
UNSAFE = "\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(keep: str) -> re.Pattern[str]:
    pattern = _PATTERNS.get(keep)
    if pattern is None:
        kept = "".join(re.escape(char) for char in keep)
        pattern = re.compile(f"(?![{kept}])[{UNSAFE}]" if kept else f"[{UNSAFE}]")
        _PATTERNS[keep] = pattern
    return pattern


def _visible(found: re.Match[str]) -> str:
    return found.group().encode("unicode_escape").decode("ascii")  # \x1b, \n, \x9b, \u202e, \udcff


def escape(text: str, *, keep: str = "") -> str:
    """`text` with every character a terminal would act on written as a visible escape.

    `keep` names characters to leave as they are: a whole multi-line result keeps "\\n", a value
    inside one line keeps nothing.
    """
    return _pattern(keep).sub(_visible, text)


def shown(value: object) -> str:
    """Any value from outside, as one line's worth of safe text (`None` included, as "None")."""
    return escape(value if isinstance(value, str) else str(value))


def is_safe(text: str, *, keep: str = "") -> bool:
    return _pattern(keep).search(text) is None
