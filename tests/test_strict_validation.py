"""Strict validation of what is billed and of what is printed as JSON.

An integer is an integer (`2.0` and `true` compare equal to a choice and would be sent as they
are); a prompt must be valid UTF-8 (exit 2, not "unexpected UnicodeEncodeError"); and `--json`
never prints NaN or Infinity, which are not JSON: null, with the raw value named in a warning.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.errors import InvalidInputError
from nanobanana_cli.sandbox import Faults


def strict_json(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("count", [2.0, 1.0, True, "2", None])
def test_num_images_must_be_an_int(count):
    with pytest.raises(InvalidInputError, match="number of images"):
        GenerationInput("a fox", num_images=count)


def test_a_batch_line_with_num_images_2_point_0_is_refused_before_anything_is_sent(cli, sandbox, tmp_path):
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"prompt": "a fox", "num_images": 2.0}\n{"prompt": "a cat", "num_images": true}\n')
    run = cli("batch", lines, "-o", tmp_path / "out")
    assert run.exit_code == 2, run.stderr
    assert "lines.jsonl:1: invalid number of images 2.0" in run.stderr and "lines.jsonl:2: invalid number of images True" in run.stderr
    assert sandbox.jobs() == []


def test_regen_never_sends_num_images_2_point_0_from_a_files_provenance(cli, sandbox, tmp_path):
    from nanobanana_cli.engine.provenance import embed

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    image = tmp_path / "gift.png"
    with image.open("wb") as target:
        embed(io.BytesIO(buffer.getvalue()), target, {"prompt": "a fox", "num_images": 2.0, "aspect_ratio": "1:1"})
    # one file made again is one image: the file's own (malformed) count is never read, let alone sent
    run = cli("regen", image, "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert [job.input["num_images"] for job in sandbox.jobs()] == [1]
    assert cli("regen", image, "-n", "2", "-o", tmp_path / "out").exit_code == 0
    assert [job.input["num_images"] for job in sandbox.jobs()] == [1, 2]


def run_with_bytes(*args: bytes, stdin: bytes, stdin_errors: str) -> subprocess.CompletedProcess:
    """argv as raw bytes, as a shell hands over a prompt typed in Latin-1 or read from a binary file."""
    return subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"nanobanana_cli", *args], input=stdin, capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": f"utf-8:{stdin_errors}"}, check=False,
    )


@pytest.mark.parametrize(("how", "stdin_errors"), [("argv", "strict"), ("stdin", "strict"), ("stdin", "surrogateescape")])
def test_a_prompt_that_is_not_utf8_is_exit_2_with_a_clear_message(how, stdin_errors, sandbox, tmp_path):
    """argv always arrives surrogate-escaped; stdin is strict in a UTF-8 locale, lenient in the C one."""
    prompt = b"a fox \xff in the snow"
    argv = [b"generate", prompt if how == "argv" else b"-", b"-o", os.fsencode(tmp_path)]
    run = run_with_bytes(*argv, stdin=prompt + b"\n" if how == "stdin" else b"", stdin_errors=stdin_errors)
    stderr = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 2, stderr
    assert "not valid UTF-8" in stderr and "unexpected" not in stderr
    assert sandbox.jobs() == []


def test_a_nan_cost_from_the_server_is_null_in_json_with_a_warning_naming_it(cli, sandbox):
    submitted = cli("generate", "a fox", "--no-wait", "-q")
    assert submitted.exit_code == 0, submitted.stderr
    sandbox.inject(Faults(result_field="cost:NaN,queue_position:Infinity"))
    run = cli("result", submitted.stdout.strip(), "--json")
    assert run.exit_code == 0, run.stderr
    document = strict_json(run.stdout)
    assert document["cost"] is None
    assert "warning: cost is NaN, which JSON cannot carry; written as null" in run.stderr


def test_nan_and_infinity_in_a_files_provenance_are_null_in_inspect_json(cli, tmp_path):
    from nanobanana_cli.engine.provenance import embed

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    image = tmp_path / "gift.png"
    with image.open("wb") as target:
        embed(io.BytesIO(buffer.getvalue()), target, {"prompt": "a fox", "seed": float("inf"), "list": [float("-inf")]})
    run = cli("inspect", image, "--json")
    report = strict_json(run.stdout)
    assert report["provenance"]["seed"] is None and report["provenance"]["list"] == [None]
    assert "provenance.seed is Infinity" in run.stderr and "provenance.list[0] is -Infinity" in run.stderr
