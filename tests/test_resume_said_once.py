"""A resumed generate run says what it resumes once: the run's own line, not the batch engine's
"resuming: k of N" after it."""

from __future__ import annotations


def test_a_rerun_after_a_failure_says_once_what_it_resumes(cli, sandbox, tmp_path):
    args = ("generate", "a fox, {calm,angry sandbox:fail,shy}", "-o", tmp_path, "--yes")
    assert cli(*args).exit_code == 5
    again = cli(*args)
    assert again.exit_code == 5, again.stderr
    assert again.stderr.count("resuming") == 1 and "2 of 3 job(s) done, 1 to submit" in again.stderr
    assert "estimated cost $" in again.stderr and "for 1 image(s)" in again.stderr
