"""A request id has RunComfy's documented shape before it reaches a URL, a path, a hook, the history or a hint.

`[A-Za-z0-9_-]{1,128}`, and never starting with "-": a server answering `--delete` would
otherwise hand a hook an option (`upload.sh --delete`) and print `nanobanana watch --delete`.
"""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from nanobanana_cli.api.models import REQUEST_ID_PATTERN, validate_request_id
from nanobanana_cli.errors import InvalidInputError
from nanobanana_cli.sandbox import Faults


# fixed values: pytest-xdist workers must collect the same test ids
@pytest.mark.parametrize("good", ["0b9f2c4e-5d1a-4f3e-9a7b-2c8d6e1f0a3b", "0b9f2c4e5d1a4f3e9a7b2c8d6e1f0a3b", "3f2a9c1e-aa_bb",
                                  "_private", "A" * 128])
def test_real_ids_pass(good):
    assert REQUEST_ID_PATTERN.match(good) and validate_request_id(good) == good


@pytest.mark.parametrize("bad", ["--delete", "-x", "abc\n", "a b", "a/b", "\x1b[2J", "", "a" * 129, "é", "a\u202e"])
def test_ids_that_could_act_as_an_option_or_a_path_are_refused(bad):
    assert not REQUEST_ID_PATTERN.match(bad)  # what the server answers is checked as it is
    if bad.strip() == bad:  # what a user types is trimmed first
        with pytest.raises(InvalidInputError):
            validate_request_id(bad)


def test_a_server_answering_the_id_minus_minus_delete_is_refused_before_any_hook_history_or_hint(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(request_id="--delete"))
    log = tmp_path / "hook.log"
    hook = f"{shlex.quote(sys.executable)} -c 'import sys; open(sys.argv[1], \"a\").write(repr(sys.argv[2:]))' {log} {{id}}"
    run = cli("generate", "a fox", "-o", tmp_path / "out", "--on-done", hook)
    assert run.exit_code == 7, run.stderr  # uncertain: a job was created, but under no id we can use
    assert "no usable request id" in run.stderr
    assert "watch --delete" not in run.stderr and "result --delete" not in run.stderr
    assert not log.exists()  # the hook never ran
    assert len(sandbox.jobs()) == 1  # sent once, never re-sent
    recorded = json.loads(cli("history", "--json").stdout)
    assert [entry["status"] for entry in recorded] == ["uncertain"]
    assert all(entry["request_id"] != "--delete" for entry in recorded)


def test_a_user_given_id_that_looks_like_an_option_is_refused_without_a_request(cli, sandbox):
    run = cli("status", "--", "--delete")
    assert run.exit_code == 2 and "not starting with '-'" in run.stderr
    assert sandbox.stats.requests == []
