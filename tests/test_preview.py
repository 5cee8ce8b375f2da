"""Inline previews: the escape sequences of each protocol, and the choice of protocol."""

from __future__ import annotations

import base64
import re
import sys

import pytest
from PIL import Image

from nanobanana_cli.render import preview


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "a.png"
    image = Image.new("RGB", (40, 20), (200, 10, 10))
    image.paste((10, 10, 200), (0, 10, 40, 20))  # red over blue
    image.save(path)
    return path


def test_kitty_sends_the_png_in_base64_chunks_with_the_graphics_escape(png):
    out = preview.render(png, "kitty", 30)
    packets = re.findall(r"\x1b_G([^;]*);([^\x1b]*)\x1b\\", out)
    assert packets[0][0] == f"f=100,a=T,c=30,m={int(len(packets) > 1)}"
    assert base64.b64decode("".join(payload for _, payload in packets)) == png.read_bytes()


def test_iterm_sends_the_file_inline(png):
    out = preview.render(png, "iterm", 30)
    match = re.fullmatch(r"\x1b\]1337;File=inline=1;size=(\d+);width=30;preserveAspectRatio=1:([A-Za-z0-9+/=]+)\x07\n", out)
    assert match and int(match[1]) == png.stat().st_size and base64.b64decode(match[2]) == png.read_bytes()


def test_half_blocks_put_the_top_pixel_over_the_bottom_one(png):
    out = preview.render(png, "blocks", 20)
    first = out.splitlines()[0]
    assert first.startswith("\x1b[38;2;200;10;10m\x1b[48;2;200;10;10m\u2580") and first.endswith("\x1b[0m")
    last = out.splitlines()[-1]
    assert "\x1b[38;2;10;10;200m\x1b[48;2;10;10;200m\u2580" in last


def test_sixel_has_a_palette_bands_and_the_terminator(png):
    out = preview.render(png, "sixel", 8)
    assert out.startswith('\x1bPq"1;1;') and out.endswith("\x1b\\\n")
    assert re.search(r"#\d+;2;78;3;3", out) and re.search(r"#\d+;2;3;3;78", out)  # red and blue, in percent
    assert out.count("-") >= 2


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TERM": "xterm-kitty"}, "kitty"),
        ({"TERM_PROGRAM": "iTerm.app"}, "iterm"),
        ({"TERM": "foot"}, "sixel"),
        ({"TERM": "xterm-256color"}, "blocks"),
        ({"TERM": "xterm-kitty", "NANOBANANA_PREVIEW_PROTOCOL": "blocks"}, "blocks"),
    ],
)
def test_the_protocol_follows_the_terminal(environ, expected):
    assert preview.choose_protocol(environ) == expected


def test_without_pillow_jpeg_previews_say_what_to_install(tmp_path, monkeypatch):
    path = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(path)
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(preview.PreviewUnavailable, match="pip install"):
        preview.render(path, "blocks", 10)
    assert preview.render(path, "iterm", 10).startswith("\x1b]1337;")  # iTerm2 decodes it itself
