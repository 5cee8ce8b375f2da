"""`model --model X` beside the positional, and completion of `model`'s argument and of `--set`
keys, through the protocol every shipped script speaks (_TYPER_COMPLETE_ARGS in, one candidate a line out)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nanobanana_cli.api.family import ALIASES

BIN = Path(sys.executable).parent


def complete(line: str) -> list[str]:
    """The candidates (values, without descriptions) the program gives for `line`, as fish asks."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "_NANOBANANA_COMPLETE": "complete_fish",
           "_TYPER_COMPLETE_FISH_ACTION": "get-args", "_TYPER_COMPLETE_ARGS": line}
    proc = subprocess.run(["nanobanana"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [row.split("\t")[0] for row in proc.stdout.splitlines() if row]


def test_model_argument_and_option_complete_the_family_aliases():
    offered = complete("nanobanana model ")
    assert set(ALIASES) <= set(offered)
    assert complete("nanobanana model nano-banana-2-") == ["nano-banana-2-lite"]
    assert complete("nanobanana model --model nano-banana-p") == ["nano-banana-pro"]


def test_set_offers_the_models_other_fields_as_keys():
    offered = complete("nanobanana generate x --model nano-banana-2 --set ")
    assert {"safety_tolerance=", "enable_web_search="} <= set(offered)
    # the fields a flag fills are refused by --set, so never offered
    for key in ("prompt", "num_images", "aspect_ratio", "output_format", "resolution", "seed"):
        assert f"{key}=" not in offered
    assert complete("nanobanana generate x --model nano-banana-2 --set saf") == ["safety_tolerance="]
    assert complete("nanobanana generate x -m nano-banana-2 --set enable_web_search=") == [
        "enable_web_search=true", "enable_web_search=false"]


def test_set_completion_follows_the_model_and_the_edit_endpoint():
    assert complete("nanobanana generate x --set ") == []  # nano-banana has only the flagged fields
    edit = complete("nanobanana edit x --model nano-banana-2 --set ")
    assert "safety_tolerance=" in edit and "image_urls=" not in edit
    assert complete("nanobanana generate x --model no-such-model --set ") == []


def test_model_option_shows_the_same_model_as_the_argument(cli, sandbox):
    by_argument = cli("model", "nano-banana-2", "--edit", "--json")
    by_option = cli("model", "--model", "nano-banana-2", "--edit", "--json")
    assert by_option.exit_code == 0, by_option.stderr
    shown, expected = json.loads(by_option.stdout), json.loads(by_argument.stdout)
    assert shown["model_id"] == expected["model_id"] == "google/nano-banana-2/edit"
    assert shown["fields"] == expected["fields"] and any(row["name"] == "image_urls" for row in shown["fields"])
    assert cli("model", "-m", "nano-banana-pro").stdout.startswith("google/nano-banana/pro/text-to-image:")


@pytest.mark.parametrize("second", ["nano-banana-2", "nano-banana"])
def test_model_refuses_both_the_argument_and_the_option(cli, sandbox, second):
    run = cli("model", "nano-banana", "--model", second)
    assert run.exit_code == 2
    assert "two models given" in run.stderr and "--model" in run.stderr
    assert run.stdout == ""
