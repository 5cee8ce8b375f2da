"""Sharded batches, `merge`, and the gallery for real work, against the sandbox."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import pytest

from nanobanana_cli.engine.batch_file import parse_batch
from nanobanana_cli.engine.sharding import Shard
from nanobanana_cli.stores.history import History

from .conftest import HELD, beside, step_jobs

DEFAULTS = {"aspect_ratio": "16:9", "output_format": "png", "num_images": 1}
FORTY = "\n".join(f"fox number {n}" for n in range(1, 41)) + "\n"


def docs_of(run) -> list[dict]:
    return [json.loads(line) for line in run.stdout.splitlines()]


def images_in(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if path.suffix == ".png")


# -- shards --------------------------------------------------------------------------------------


def test_shards_are_stable_under_reordering_and_cover_each_line_once():
    text = "\n".join(f"prompt {n}" for n in range(200))
    lines, _ = parse_batch(text, DEFAULTS)
    shards = [Shard(k, 3) for k in (1, 2, 3)]
    owners = {line.generation.prompt: [shard.index for shard in shards if shard.holds(line.key)] for line in lines}
    assert all(len(found) == 1 for found in owners.values())
    assert all(20 < sum(found == [k] for found in owners.values()) < 120 for k in (1, 2, 3))  # roughly even
    shuffled = text.split("\n")
    random.Random(7).shuffle(shuffled)
    moved, _ = parse_batch("\n".join(["a new prompt", *shuffled]), DEFAULTS)
    assert all(owners[line.generation.prompt] == [s.index for s in shards if s.holds(line.key)] for line in moved if line.generation.prompt in owners)


def test_two_shards_of_forty_lines_cover_every_line_once_and_merge_reunites_them(cli, sandbox, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(FORTY)
    first = cli("batch", prompts, "--shard", "1/2", "-o", tmp_path / "s1", "--json")
    second = cli("batch", prompts, "--shard", "2/2", "-o", tmp_path / "s2", "--json")
    assert first.exit_code == 0 and second.exit_code == 0, first.stderr + second.stderr
    lines = [{doc["line"] for doc in docs_of(run)} for run in (first, second)]
    assert lines[0] and lines[1] and not lines[0] & lines[1] and lines[0] | lines[1] == set(range(1, 41))
    assert f"shard 1/2: {len(lines[0])} of 40 line(s)" in first.stderr
    assert (tmp_path / "s1" / "nanobanana-batch.shard-1-of-2.jsonl").is_file() and sandbox.stats.submits == 40

    merged = cli("merge", tmp_path / "s1", tmp_path / "s2", "-o", tmp_path / "all", "--gallery")
    assert merged.exit_code == 0, merged.stderr
    assert len(merged.stdout.split()) == 40 and len(images_in(tmp_path / "all")) == 40
    assert all(Path(path).parent == (tmp_path / "all").resolve() for path in merged.stdout.split())
    assert "40 line(s) from 2 director(ies)" in merged.stderr and "40 with their images" in merged.stderr
    whole = cli("batch", prompts, "-o", tmp_path / "all", "--json")  # the unsharded run finds everything done
    assert whole.exit_code == 0 and all(doc["skipped"] for doc in docs_of(whole)) and len(docs_of(whole)) == 40
    assert sandbox.stats.submits == 40
    assert (tmp_path / "all" / "index.html").read_text().count("<figure>") == 40


def test_shards_sharing_a_directory_never_bill_a_line_twice_whatever_runs_next(cli, sandbox, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(f"fox {n}" for n in range(12)))
    out = tmp_path / "shared"
    for shard in ("1/2", "2/2"):
        assert cli("batch", prompts, "--shard", shard, "-o", out, "-q").exit_code == 0
    assert sandbox.stats.submits == 12 and len(images_in(out)) == 12
    for again in ([], ["--shard", "1/3"], ["--shard", "3/3"]):  # unsharded, or with another N
        run = cli("batch", prompts, "-o", out, "--json", *again)
        assert run.exit_code == 0 and all(doc["skipped"] for doc in docs_of(run))
    assert sandbox.stats.submits == 12


def test_merge_keeps_the_request_id_of_a_damaged_image_so_a_rerun_fetches_it_again(cli, sandbox, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("fox a\nfox b\n")
    assert cli("batch", prompts, "-o", tmp_path / "one", "-q").exit_code == 0
    damaged = images_in(tmp_path / "one")[0]
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")  # same size, different bytes
    merged = cli("merge", tmp_path / "one", "-o", tmp_path / "all")
    assert merged.exit_code == 0 and "missing or changed" in merged.stderr and len(merged.stdout.split()) == 1
    rerun = cli("batch", prompts, "-o", tmp_path / "all", "--json")
    assert rerun.exit_code == 0 and sorted(doc["skipped"] for doc in docs_of(rerun)) == [False, True]
    assert sandbox.stats.submits == 2 and len(images_in(tmp_path / "all")) == 2  # downloaded again, not re-submitted


def test_a_moved_output_directory_is_still_resumed(cli, sandbox, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("fox a\nfox b\n")
    assert cli("batch", prompts, "-o", tmp_path / "ci-runner", "-q").exit_code == 0
    shutil.move(tmp_path / "ci-runner", tmp_path / "artifact")
    again = cli("batch", prompts, "-o", tmp_path / "artifact", "--json")
    assert all(doc["skipped"] for doc in docs_of(again)) and sandbox.stats.submits == 2
    assert all(Path(o["path"]).parent == (tmp_path / "artifact").resolve() for doc in docs_of(again) for o in doc["outputs"])


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1", "a/b"])
def test_an_invalid_shard_is_a_usage_error(cli, sandbox, tmp_path, spec):
    prompts = tmp_path / "p.txt"
    prompts.write_text("fox\n")
    run = cli("batch", prompts, "--shard", spec)
    assert run.exit_code == 2 and "K/N" in run.stderr and sandbox.stats.requests == []


def test_merge_refuses_a_directory_without_a_manifest(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    run = cli("merge", tmp_path / "empty", "-o", tmp_path / "all")
    assert run.exit_code == 2 and "no batch manifest" in run.stderr


# -- the gallery ---------------------------------------------------------------------------------


def test_the_gallery_has_search_a_lightbox_matrix_groups_cost_and_timings_and_nothing_external(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    out = tmp_path / "g"
    with beside(step_jobs(sandbox, 4), sandbox):  # each job seen queued, then running: its timings are known
        made = cli("generate", "a {red,blue} fox, {style}", "--var", "style=ink,oil", "-o", out, "-q")
    assert made.exit_code == 0, made.stderr
    with History() as history:  # what a job costs is in the history when the API reported it
        history.update(history.entries()[0].request_id, cost=0.039)
    page = Path(cli("gallery", out).stdout.strip()).read_text()
    assert page.count("<figure>") == 4 and page.count("<section>") == 0  # single-image jobs: cards sharing one grid
    assert 'id="q" type="search"' in page and 'id="lb"' in page and '<script type="module">' in page
    assert '<option value="v:style">style</option>' in page and '<option value="v:1">{red,blue}</option>' in page
    assert page.count("data-vars=\"{&quot;1&quot;: &quot;red&quot;, &quot;style&quot;: &quot;ink&quot;}\"") == 1
    assert '<span class="p">a red fox, ink</span>' in page and "16:9 · png" in page
    assert "job $0.0390" in page and re.search(r"(queued \d+\.\d s · ran \d+\.\d s · )?\d+\.\d s in all", page)
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert policy and "default-src 'none'" in policy[1]  # the browser refuses anything else, should a URL slip in
    page = page.replace(policy[0], "")  # (its base64 hashes may read as "//x")
    assert not re.search(r"https?:|//[a-z]|<link|src=\"(?!a-|blue|red|ink|oil)", page, re.I)  # no external asset of any kind


def test_the_gallery_of_a_copied_folder_reads_each_image_s_provenance(cli, sandbox, tmp_path, monkeypatch):
    out = tmp_path / "g"
    paths = cli("generate", "a copied fox", "-n", "2", "-a", "3:2", "-o", out, "-q").stdout.split()
    request_id = sandbox.jobs()[0].request_id
    shutil.copytree(out, tmp_path / "elsewhere")
    monkeypatch.setenv("NANOBANANA_DATA_DIR", str(tmp_path / "another-machine"))  # no history of this job
    page = Path(cli("gallery", tmp_path / "elsewhere").stdout.strip()).read_text()
    (section,) = page.split("<section>")[1:]
    assert "<h2>a copied fox</h2>" in section and "3:2 · png" in section and request_id in section  # the whole id
    assert [part.split('"')[0] for part in section.split('<img src="')[1:]] == [Path(p).name for p in paths]


def test_a_shard_shows_only_its_lines_and_an_empty_shard_is_no_error(cli, sandbox, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("just one fox\n")
    (line,), _ = parse_batch("just one fox", DEFAULTS)
    mine, other = ("1/2", "2/2") if Shard(1, 2).holds(line.key) else ("2/2", "1/2")
    shown = cli("batch", prompts, "--shard", mine, "--dry-run", "--json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["body"]["prompt"] == "just one fox"
    empty = cli("batch", prompts, "--shard", other, "-o", tmp_path / "out")
    assert empty.exit_code == 0 and "0 of 1 line(s); nothing to do" in empty.stderr and sandbox.stats.requests == []
