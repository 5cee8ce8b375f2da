"""`generate --model X --help` and `edit --model X --help`: the command's help, then X's fields,
types, values and defaults as `model X` shows them (from the catalog in effect)."""

from __future__ import annotations

from nanobanana_cli.model_help import fields_after_help
from nanobanana_cli.sandbox.models import load_models

from .test_sandbox_family import T2I_2, write_schema_file


def test_generate_help_with_a_model_ends_with_its_fields_from_the_catalog(cli, start_sandbox, tmp_path):
    start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    plain = cli("generate", "--help")
    run = cli("generate", "--model", "nano-banana-2", "--help")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.startswith(plain.stdout)  # the normal help, whole
    fields = run.stdout[len(plain.stdout):]
    assert f"{T2I_2}: NB2 (test file)" in fields
    assert "input:   resolution: string, one of 1K, 8K, default 1K" in fields  # the served schema, not the snapshot
    assert "input:   num_images: integer, one of 1, 2, from 1 to 2, default 1" in fields
    assert "input:" not in plain.stdout


def test_edit_help_shows_the_edit_models_fields_and_every_model_of_a_list(cli):
    run = cli("edit", "-h", "-m", "nano-banana-2,nano-banana-pro")
    assert run.exit_code == 0, run.stderr
    assert "Usage: nanobanana edit" in run.stdout
    assert "google/nano-banana-2/edit:" in run.stdout and "google/nano-banana/pro/edit:" in run.stdout
    assert "input:   image_urls: array" in run.stdout


def test_an_unknown_model_after_the_help_is_a_usage_error(cli):
    run = cli("generate", "--help", "--model", "dall-e")
    assert run.exit_code == 2 and "Usage: nanobanana generate" in run.stdout and "unknown model 'dall-e'" in run.stderr


def test_only_generate_and_edit_with_help_and_a_model_add_fields():
    assert fields_after_help(["generate", "x", "--model=nano-banana-2", "--help"]) == [["model", "nano-banana-2"]]
    assert fields_after_help(["--debug", "edit", "-mnano-banana", "-h"]) == [["model", "nano-banana", "--edit"]]
    assert fields_after_help(["generate", "--model", "nano-banana-2"]) == []
    assert fields_after_help(["generate", "--help"]) == []
    assert fields_after_help(["batch", "f.txt", "--model", "nano-banana-2", "--help"]) == []
    assert fields_after_help(["generate", "--model", "nano-banana-2", "--", "--help"]) == []
