"""Help that tells the truth: defaults as they are in effect, the token lookup order, help topics, and
a man page rendered from the same text as docs/cli.md."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nanobanana_cli.engine.naming import NAME_FIELDS
from nanobanana_cli.engine.outcome import JOB_FIELDS
from nanobanana_cli.errors import EXIT_CODE_HELP
from nanobanana_cli.stores.settings import SETTINGS
from nanobanana_cli.stores.tokens import TOKEN_ENV_VARS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import reference  # noqa: E402


def flat(text: str) -> str:
    """Help text with its line wrapping (which may break after a hyphen) undone."""
    return " ".join(re.sub(r"-\n\s+", "-", text).split())


def test_defaults_in_help_are_the_ones_in_effect_with_their_source(cli, monkeypatch):
    before = flat(cli("generate", "--help").stdout)
    assert "[default: (16:9, built-in)]" in before and "[default: (png, built-in)]" in before
    assert cli("config", "set", "aspect_ratio", "9:16").exit_code == 0
    monkeypatch.setenv("NANOBANANA_NUM_IMAGES", "3")
    after = flat(cli("generate", "--help").stdout)
    assert "[default: (9:16, from config file)]" in after
    assert "[default: (3, from $NANOBANANA_NUM_IMAGES)]" in after
    assert "(16:9" not in after
    assert "[default: (9:16, from config file)]" in flat(cli("batch", "--help").stdout)


def test_token_help_gives_the_whole_lookup_order_and_the_source_in_effect(cli, monkeypatch):
    order = ", ".join(["--token", *(f"${name}" for name in TOKEN_ENV_VARS), "the token stored by `nanobanana auth login`"])
    assert order in flat(cli("status", "--help").stdout)
    assert "[default: (none set)]" in flat(cli("status", "--help").stdout)
    monkeypatch.setenv("YOUR_API_TOKEN", "t" * 20)
    assert "[default: (from $YOUR_API_TOKEN)]" in flat(cli("generate", "--help").stdout)
    monkeypatch.delenv("YOUR_API_TOKEN")
    assert cli("auth", "login", "--with-token", "--no-verify", input="s" * 20).exit_code == 0
    assert "[default: (the stored token)]" in flat(cli("generate", "--help").stdout)


def test_help_lists_the_topics_and_each_topic_covers_its_table(cli):
    listing = cli("help")
    assert listing.exit_code == 0
    for topic in ("environment", "exit-codes", "json", "file-names"):
        assert re.search(rf"^\s+{topic}\s", listing.stdout, re.M)
    environment = cli("help", "environment").stdout
    assert all(name in environment for name in (*TOKEN_ENV_VARS, *(s.env for s in SETTINGS.values())))
    exit_codes = cli("help", "exit-codes").stdout
    assert all(re.search(rf"^\s+{int(code)}\s+{re.escape(text)}$", exit_codes, re.M) for code, text in EXIT_CODE_HELP.items())
    json_topic = cli("help", "json").stdout
    assert all(re.search(rf"^\s+{field}\s", json_topic, re.M) for field in JOB_FIELDS) and "--template" in json_topic
    names = cli("help", "file-names").stdout
    assert all(f"{{{field}}}" in names for field in NAME_FIELDS)


def test_help_on_a_command_is_its_help_and_an_unknown_topic_is_a_usage_error(cli):
    assert cli("help", "generate").stdout == cli("generate", "--help").stdout
    assert cli("help", "config").stdout == cli("config", "--help").stdout
    unknown = cli("help", "colours")
    assert unknown.exit_code == 2 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and unknown.stderr.startswith("error: ") and "file-names" in unknown.stderr


def test_the_man_page_and_the_reference_share_one_source(reference_files):
    files = reference_files
    page = files[ROOT / "docs" / "nanobanana.1"]
    markdown = files[ROOT / "docs" / "cli.md"]
    for path in reference.command_paths()[1:]:
        title = " ".join(["nanobanana", *path])
        assert f".SS {title} " in page and f"## `{title}`" in markdown  # then its synopsis
    for topic, section in reference.MAN_SECTIONS.items():
        assert f".SH {section}\n" in page and f"## `nanobanana help {topic}`" in markdown
    assert "Exit codes, the same for every command:" in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="needs groff to render the man page")
def test_the_man_page_renders_without_warnings():
    proc = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(ROOT / "docs" / "nanobanana.1")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
