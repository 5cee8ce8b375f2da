"""Ids as people type them: the 8-character short ids the tool prints, unique prefixes resolved from
the history as git does, and the `local:` keys `history` lists for submits never answered."""

from __future__ import annotations

import json

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.sandbox import Faults
from nanobanana_cli.stores.history import History


def submit(cli, prompt: str = "a fox") -> str:
    run = cli("generate", prompt, "--no-wait", "-q")
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


def record(tmp_path, request_id: str, base_url: str, prompt: str = "a recorded fox") -> None:
    with History(tmp_path / "data" / "history.sqlite3") as history:
        history.record_submission(request_id, GenerationInput(prompt), base_url)


def test_the_printed_short_id_is_accepted_by_every_command_that_takes_an_id(cli, sandbox, tmp_path):
    request_id = submit(cli)
    short = request_id[:8]
    assert cli("status", short).stdout.strip() == "completed: succeeded"
    assert cli("result", short).stdout.split() == cli("result", request_id).stdout.split()
    watched = cli("watch", short, "-o", tmp_path / "out", "--json")
    assert watched.exit_code == 0, watched.stderr
    assert json.loads(watched.stdout)["request_id"] == request_id
    assert json.loads(cli("explain", short, "--json").stdout)["request_id"] == request_id
    # only full ids ever reach the server
    assert not any(f"/{short}/" in r.path for r in sandbox.stats.requests)
    removed = cli("history", "rm", short)
    assert removed.exit_code == 0 and "removed 1 job" in removed.stderr
    assert json.loads(cli("history", "--json").stdout) == []


def test_cancel_takes_a_prefix_too(cli, start_sandbox):
    start_sandbox(queue_seconds=30)
    request_id = submit(cli)
    run = cli("cancel", request_id[:10])
    assert run.exit_code == 0 and f"cancelled {request_id}" in run.stderr


def test_an_ambiguous_prefix_is_a_usage_error_listing_the_candidates(cli, sandbox, tmp_path):
    record(tmp_path, "abcdef12-0000-4000-8000-000000000001", sandbox.base_url)
    record(tmp_path, "abcdef12-0000-4000-8000-000000000002", sandbox.base_url)
    for command in (["status"], ["explain"], ["history", "rm"], ["cancel"], ["watch"], ["result"]):
        run = cli(*command, "abcdef12")
        assert run.exit_code == 2, (command, run.stderr)
        assert "ambiguous" in run.stderr
        assert "abcdef12-0000-4000-8000-000000000001" in run.stderr and "abcdef12-0000-4000-8000-000000000002" in run.stderr
    assert sandbox.stats.requests == []  # nothing was sent for an ambiguous id
    assert len(json.loads(cli("history", "--json").stdout)) == 2  # nor removed


def test_a_prefix_shorter_than_8_characters_is_not_expanded(cli, sandbox):
    request_id = submit(cli)
    run = cli("status", request_id[:7])
    assert run.exit_code == 4  # sent as typed, unknown to the server


def test_a_local_key_is_explained_shown_and_removed_without_asking_the_server(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(drop_after_submit=1))
    assert cli("generate", "a fox whose answer is lost", "-o", tmp_path / "out").exit_code == 7
    (entry,) = json.loads(cli("history", "--json").stdout)
    key = entry["request_id"]
    assert key.startswith("local:")
    requests_before = len(sandbox.stats.requests)

    explained = cli("explain", key, "--json")
    assert explained.exit_code == 0, explained.stderr
    assert json.loads(explained.stdout)["status"] == "uncertain"

    status = cli("status", key)
    assert status.exit_code == 0, status.stderr
    assert status.stdout.strip() == "uncertain"
    assert "outcome is unknown" in status.stderr and "dashboard" in status.stderr
    document = json.loads(cli("status", key, "--json").stdout)
    assert (document["request_id"], document["status"]) == (None, "uncertain")
    assert document["input"]["prompt"] == "a fox whose answer is lost"

    for command in ("result", "cancel", "watch"):
        refused = cli(command, key)
        assert refused.exit_code == 4 and "outcome is unknown" in refused.stderr, (command, refused.stderr)
    assert len(sandbox.stats.requests) == requests_before  # a local key is never sent

    assert cli("history", "rm", key[:10]).exit_code == 0
    assert json.loads(cli("history", "--json").stdout) == []
