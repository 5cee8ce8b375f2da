"""The command a failed batch says to run again repeats --fit and --name: run as printed, it resumes
(only the failed line is sent again) instead of refusing the images the first run shrank."""

from __future__ import annotations

import re
import shlex

from .test_batch_lines import write
from .test_model_costs_and_fit import noise_png


def test_the_rerun_hint_of_a_batch_that_needed_fit_and_a_name_resumes_as_printed(cli, sandbox, tmp_path):
    assert noise_png(tmp_path / "big.png", 1500) > 6 * 1024 * 1024  # refused without --fit
    prompts = write(tmp_path / "p.jsonl", '{"prompt": "as a watercolour", "images": ["big.png"]}',
                    '{"prompt": "a bad fox sandbox:fail"}')
    out = tmp_path / "out"
    run = cli("batch", prompts, "-o", out, "--fit", "--name", "fox-{n}")
    assert run.exit_code == 5, run.stderr
    hint = re.search(r"to retry the failed lines: (nanobanana batch .*)$", run.stderr, re.M)[1]
    assert hint == f"nanobanana batch {prompts} -o {out} --name 'fox-{{n}}' --fit"
    before = sandbox.stats.submits
    again = cli(*shlex.split(hint)[1:])
    assert again.exit_code == 5, again.stderr  # the failed line fails again; the shrunk image is not refused
    assert sandbox.stats.submits == before + 1  # only the failed line is sent again
