"""--json keeps its promise on failure (issue 22, "JSON and scripting"): an error that ends a job command
before it printed a document is printed as a job document too (status error, request_id null, the
message, exit_code), while the error line still goes to stderr; and `generate --json` has one shape
whatever -n: one compact document per job, one per line."""

from __future__ import annotations

import json
import socket

import pytest

UNKNOWN = "0f0f0f0f-1111-4222-8333-444455556666"
IMAGE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


def error_document(run, args: tuple[str, ...]) -> dict:
    """The one document on stdout, checked to be the error's."""
    document = json.loads(run.stdout)  # one document, shaped like the command's others
    if args[0] in ("generate", "edit"):
        assert len(run.stdout.splitlines()) == 1, run.stdout  # generate's documents are one per line
    assert document["status"] == "error" and document["request_id"] is None and document["outputs"] == []
    assert document["exit_code"] == run.exit_code != 0
    assert document["error"] and document["error"] in run.stderr  # the error line still goes to stderr
    assert run.stderr.startswith("error: ")
    return document


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "args",
    [("status", UNKNOWN), ("result", UNKNOWN), ("cancel", UNKNOWN)],
    ids=["status", "result", "cancel"],
)
def test_an_unknown_id_prints_an_error_document(cli, sandbox, args):
    run = cli(*args, "--json")
    document = error_document(run, args)
    assert "not found" in document["error"] or "unknown" in document["error"]


@pytest.mark.parametrize(
    "args",
    [("status", UNKNOWN), ("generate", "a red fox"), ("edit", "as ink", "-i", "in.png")],
    ids=["status", "generate", "edit"],
)
def test_a_rejected_token_prints_an_error_document_and_submits_nothing(cli, sandbox, monkeypatch, tmp_path, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.png").write_bytes(IMAGE_PNG)
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "not-the-token")
    run = cli(*args, "--json")
    document = error_document(run, args)
    assert "RUNCOMFY_API_TOKEN" in document["error"] and "not-the-token" not in run.stdout
    assert sandbox.stats.submits == 0


def test_a_rejected_token_in_a_run_prints_each_jobs_error_document(cli, sandbox, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "not-the-token")
    run = cli("generate", "a {red,blue} fox", "--json", "-o", tmp_path)
    documents = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(doc["line"], doc["status"], doc["request_id"], doc["exit_code"]) for doc in documents] == [
        (1, "error", None, run.exit_code), (2, "error", None, run.exit_code)]
    assert run.exit_code == 3 and sandbox.stats.submits == 0


@pytest.mark.parametrize("args", [("status", UNKNOWN), ("generate", "a red fox"), ("result", UNKNOWN)], ids=["status", "generate", "result"])
def test_an_unreachable_api_prints_an_error_document(cli, monkeypatch, args):
    monkeypatch.setenv("NANOBANANA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "a-token")
    run = cli(*args, "--retries", "0", "--json")
    error_document(run, args)


@pytest.mark.parametrize(
    "args",
    [("generate", "a red fox", "--curl"), ("generate", "a fox", "--name", "../escape"), ("edit", "as ink", "-i", "in.png", "--curl")],
    ids=["curl-without-dry-run", "bad-name", "edit-curl"],
)
def test_a_usage_error_after_parsing_prints_an_error_document(cli, sandbox, monkeypatch, tmp_path, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.png").write_bytes(IMAGE_PNG)
    run = cli(*args, "--json")
    assert run.exit_code == 2
    error_document(run, args)
    assert sandbox.stats.requests == []


def test_watch_of_an_unknown_id_prints_its_document_once(cli, sandbox):
    run = cli("watch", UNKNOWN, "--json")
    document = json.loads(run.stdout)  # the job's own document (naming the id asked for), not a second one
    assert document["status"] == "error" and document["request_id"] == UNKNOWN and document["exit_code"] == run.exit_code == 4


def test_a_failed_job_prints_its_own_document_only(cli, sandbox, tmp_path):
    run = cli("generate", "a fox sandbox:fail", "--json", "-o", tmp_path)
    assert run.exit_code == 5
    (line,) = run.stdout.splitlines()
    document = json.loads(line)
    assert document["status"] == "failed" and document["request_id"] is not None


def test_without_json_an_error_prints_nothing_on_stdout(cli, sandbox):
    run = cli("status", UNKNOWN)
    assert run.exit_code != 0 and run.stdout == "" and run.stderr.startswith("error: ")


# -- one shape for generate --json ----------------------------------------------------------------


@pytest.mark.parametrize("args", [("-n", "1"), ("-n", "4"), ("-n", "6"), ("-n", "2", "--var", "c=red,blue")],
                         ids=["1", "4", "6", "matrix"])
def test_generate_json_is_one_compact_document_per_job_whatever_n(cli, sandbox, tmp_path, args):
    prompt = "a {c} fox" if "--var" in args else "a fox"
    run = cli("generate", prompt, *args, "--json", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == sandbox.stats.submits  # one line per job
    documents = [json.loads(line) for line in lines]
    assert all(line == json.dumps(doc, separators=(",", ":")) for line, doc in zip(lines, documents))  # compact
    assert [doc["line"] for doc in documents] == list(range(1, len(lines) + 1))
    assert all(doc["skipped"] is False and "name" not in doc for doc in documents)
    keys = {frozenset(doc) for doc in documents}
    assert len(keys) == 1
    if len(lines) == 1:
        assert json.loads(run.stdout)["status"] == "succeeded"  # json.load of the whole output works for one job


def test_a_single_job_and_a_run_print_documents_with_the_same_fields(cli, sandbox, tmp_path):
    single = json.loads(cli("generate", "a fox", "--json", "-o", tmp_path).stdout)
    run = [json.loads(line) for line in cli("generate", "a fox", "-n", "5", "--json", "-o", tmp_path).stdout.splitlines()]
    assert all(set(doc) == set(single) for doc in run)


def test_regen_of_an_image_it_knows_nothing_of_prints_an_error_document(cli, sandbox, tmp_path):
    image = tmp_path / "plain.png"
    image.write_bytes(IMAGE_PNG)
    run = cli("regen", image, "--json")
    assert run.exit_code == 2
    error_document(run, ("regen",))
    assert sandbox.stats.requests == []


def test_a_lost_submit_answer_prints_an_uncertain_document(cli, start_sandbox, tmp_path):
    from nanobanana_cli.sandbox import Faults

    start_sandbox(faults=Faults(drop_after_submit=1))
    run = cli("generate", "a fox whose answer is lost", "--json", "-o", tmp_path)
    assert run.exit_code == 7
    (line,) = run.stdout.splitlines()
    document = json.loads(line)
    assert document["status"] == "uncertain" and document["request_id"] is None and document["exit_code"] == 7
