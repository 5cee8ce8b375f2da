"""A batch line the API refuses (422) although the cached schema allowed it marks that schema stale,
as generate does: the next batch asks the catalog again and refuses the line itself, before sending."""

from __future__ import annotations

from nanobanana_cli.sandbox.models import load_models

from .test_batch_lines import write
from .test_sandbox_family import T2I_2, write_schema_file
from .test_schema_refusals import cache_the_bundled_entry, catalog_gets, submits


def test_a_422_in_a_batch_marks_the_schema_stale_so_the_next_batch_refuses_before_sending(cli, start_sandbox, tmp_path):
    # the sandbox serves a schema whose resolution takes 1K and 8K only; the CLI's cache says 2K is fine
    sandbox = start_sandbox(models=load_models(write_schema_file(tmp_path / "schema.json")))
    cache_the_bundled_entry(sandbox, T2I_2)
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "a fox", "model": "nano-banana-2", "resolution": "2K"}')
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2, run.stderr
    assert "resolution" in run.stderr and "marked stale" in run.stderr
    assert len(submits(sandbox)) == 1 and catalog_gets(sandbox, T2I_2) == 0  # the cache was used, then refused
    run = cli("batch", prompts, "-o", tmp_path / "out")
    assert run.exit_code == 2 and "1K, 8K" in run.stderr, run.stderr
    assert catalog_gets(sandbox, T2I_2) == 1 and len(submits(sandbox)) == 1
