"""README states what the program does: the config keys, -n's range, the sidecar's name, and a
viewer command for Linux as well as macOS."""

from __future__ import annotations

import re
from pathlib import Path

from nanobanana_cli.engine.provenance import sidecar_path
from nanobanana_cli.stores.settings import SETTINGS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_config_key_list_names_every_setting():
    paragraph = README.split("\nKeys: ", 1)[1].split("Precedence", 1)[0]
    assert set(re.findall(r"`([a-z_]+)`", paragraph)) == set(SETTINGS)


def test_num_images_is_not_documented_as_at_most_4_for_generate(cli, sandbox, tmp_path):
    assert "`-n/--num-images` (1–4" not in README
    run = cli("generate", "a fox", "-n", "6", "-o", tmp_path / "out", "-q")
    assert run.exit_code == 0 and len(run.stdout.split()) == 6  # what README now says works


def test_the_sidecar_is_named_as_written():
    assert sidecar_path(Path("fox-1.png")).name == "fox-1.png.json"
    assert "sidecar `NAME.json`" not in README and "NAME.png.json" in README


def test_opening_the_images_is_shown_for_linux_too():
    assert "xargs open" in README and "xargs xdg-open" in README
