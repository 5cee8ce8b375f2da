"""The gallery takes what the history knows of its own images, and reads no other job."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nanobanana_cli.stores.history import History


def saved(run) -> list[Path]:
    assert run.exit_code == 0, run.stderr
    return [Path(line) for line in run.stdout.split()]


@pytest.fixture
def rows_read(monkeypatch) -> list[str]:
    """The request id of every history row turned into an entry, whichever query read it."""
    read: list[str] = []
    entry = History._entry
    monkeypatch.setattr(History, "_entry", staticmethod(lambda row: read.append(row["request_id"]) or entry(row)))
    return read


def jobs_by_file(paths: list[Path]) -> dict[str, str]:
    with History() as history:
        return {Path(path).name: entry.request_id for entry in history.entries(limit=None) for path in entry.paths
                if Path(path).name in {p.name for p in paths}}


def card(page: str, name: str) -> str:
    (found,) = re.findall(rf'<figure><a href="{re.escape(name)}".*?</figure>', page)
    return found


def test_every_image_shows_its_job_s_prompt_cost_and_timings_however_it_was_named(cli, sandbox, tmp_path):
    out = tmp_path / "g"
    embedded = saved(cli("generate", "an embedded fox", "-n", "2", "-a", "3:2", "-o", out, "-q"))
    bare = saved(cli("generate", "a bare fox", "--metadata", "none", "-o", out, "-q"))  # its name's short id only
    anonymous = saved(cli("generate", "an anonymous fox", "--metadata", "none", "--name", "fox-{i}", "-o", out, "-q"))
    jobs = jobs_by_file(embedded + bare + anonymous)
    costs = {request_id: number / 100 for number, request_id in enumerate(sorted(set(jobs.values())), start=1)}
    with History() as history:
        for request_id, cost in costs.items():
            history.update(request_id, cost=cost)
    page = Path(cli("gallery", out).stdout.strip()).read_text()
    for paths, prompt in ((embedded, "an embedded fox"), (bare, "a bare fox"), (anonymous, "an anonymous fox")):
        for path in paths:
            shown = card(page, path.name)
            assert f'<span class="p">{prompt}</span>' in shown and f"job ${costs[jobs[path.name]]:.4f}" in shown, shown
            # instant sandbox jobs are first seen finished: their whole time is known, queue and run are not
            assert re.search(r"· \d+\.\d s in all", shown) and "queued" not in shown and "ran " not in shown, shown
    assert "3:2 · png" in card(page, embedded[0].name)


def test_the_gallery_reads_its_own_jobs_and_no_other_row_of_the_history(cli, sandbox, tmp_path, rows_read):
    out, elsewhere = tmp_path / "g", tmp_path / "elsewhere"
    mine = saved(cli("generate", "my fox", "-n", "2", "-o", out, "-q"))
    mine += saved(cli("generate", "my bare fox", "--metadata", "none", "-o", out, "-q"))
    mine += saved(cli("generate", "my anonymous fox", "--metadata", "none", "--name", "fox-{i}", "-o", out, "-q"))
    others = saved(cli("generate", "someone else's fox", "-n", "2", "-o", elsewhere, "-q"))
    others += saved(cli("generate", "another fox", "--metadata", "none", "--name", "fox-{i}", "-o", elsewhere, "-q"))
    (out / "foreign.png").write_bytes(others[0].read_bytes()[:33] + b"\0\0\0\0IEND\xaeB`\x82")  # a file of no job
    ours, theirs = set(jobs_by_file(mine).values()), set(jobs_by_file(others).values())
    assert len(ours) == 3 and len(theirs) == 2
    rows_read.clear()
    page = Path(cli("gallery", out).stdout.strip()).read_text()
    assert page.count("<figure>") == len(mine) + 1 and "someone else" not in page
    assert set(rows_read) == ours, "only the folder's own jobs are read from the history"
