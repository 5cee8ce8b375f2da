"""`nanobanana help models` and `help editing`: the family, how the schema in effect is chosen,
--set, --resolution, prices, comparing models; edit inputs, their limits, --fit and URLs."""

from __future__ import annotations

import re

from nanobanana_cli.api.family import FAMILY
from nanobanana_cli.engine.image_inputs import DEFAULT_MAX_IMAGE_BYTES, MAX_REQUEST_BYTES, MIB


def test_both_topics_are_listed(cli):
    listing = cli("help").stdout
    assert re.search(r"^\s+models\s", listing, re.M) and re.search(r"^\s+editing\s", listing, re.M)


def test_the_models_topic_lists_the_family_and_how_the_schema_is_chosen(cli):
    run = cli("help", "models")
    assert run.exit_code == 0, run.stderr
    text = run.stdout
    for member in FAMILY:
        assert re.search(rf"^\s+{re.escape(member.alias)}\s+{re.escape(member.text_to_image)} / {re.escape(member.edit)}$",
                         text, re.M)
    for words in ("catalog", "cached for", "bundled", "--refresh", "marked stale", "--set KEY=VALUE", "--resolution",
                  "base_price_usd", "price_unit", "--model A,B", "{model}", "--max-cost"):
        assert words in text, words
    assert "Usage:" not in text  # the topic, not `models --help`


def test_the_editing_topic_states_the_limits_fit_and_urls(cli):
    text = cli("help", "editing").stdout
    assert f"at most {DEFAULT_MAX_IMAGE_BYTES // MIB} MiB per image" in text
    assert f"at most {MAX_REQUEST_BYTES // MIB} MiB" in text
    for words in ("data URI", "--fit", "Pillow", "https URL", "sha256", "regen", "nanobanana edit"):
        assert words in text, words


def test_topic_lines_fit_the_reference_width(cli):
    for topic in ("models", "editing"):
        assert all(len(line) <= 96 for line in cli("help", topic).stdout.splitlines()), topic
