"""A history database that cannot be read: `explain`, which reads nothing else, fails with the same
clear error and `mv` fix as the `history` commands, rather than a warning and then a misleading
"no job recorded yet" or "not in this machine's history". Commands that can work without the
history (inspect, gallery) warn once and carry on."""

from __future__ import annotations

import os

import pytest

ID = "3f2a9c1e-1b81-43e1-a9e4-9ea217535eed"


def break_history() -> str:
    data = os.environ["NANOBANANA_DATA_DIR"]
    os.makedirs(data, exist_ok=True)
    path = os.path.join(data, "history.sqlite3")
    for extra in ("-wal", "-shm"):
        if os.path.exists(path + extra):
            os.remove(path + extra)
    with open(path, "wb") as broken:
        broken.write(b"this is not a database" * 300)
    return path


@pytest.mark.parametrize("args", [(), (ID,), ("3f2a9c1e",), ("--last",), ("--json",)])
def test_explain_of_a_broken_history_says_so_with_the_fix(cli, args):
    path = break_history()
    run = cli("explain", *args)
    assert run.exit_code == 1
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert f"the job history cannot be read (file is not a database): {path}" in error
    assert f"mv {path} {path}.broken" in error
    assert "no job recorded" not in run.stderr and "not in this machine's history" not in run.stderr
    assert "warning" not in run.stderr  # one message, the error, not a warning before it


def test_explain_with_no_history_yet_still_says_no_job_recorded(cli):
    run = cli("explain")
    assert run.exit_code == 4 and "no job recorded yet" in run.stderr


def test_inspect_and_gallery_carry_on_without_a_broken_history_and_warn(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    (image,) = (tmp_path / "out").glob("*.png")
    break_history()
    run = cli("gallery", tmp_path / "out", "-o", tmp_path / "page.html")
    assert run.exit_code == 0 and (tmp_path / "page.html").is_file()
    assert "job history unavailable (file is not a database); carrying on without it" in run.stderr
    run = cli("inspect", image)
    assert run.exit_code == 0 and "a fox" in run.stdout  # from the image's own metadata
