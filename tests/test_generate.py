"""`nanobanana generate` end to end against a sandbox on 127.0.0.1: exit codes, streams, files, requests."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from .conftest import HELD
from .imaging import image_info, ratio, sha256_of

ANSI = re.compile(r"\x1b\[")


def submits(sandbox) -> int:
    return sandbox.stats.submits


def test_four_images_in_the_requested_ratio_are_saved_and_listed(cli, sandbox, tmp_path):
    run = cli("generate", "a glass greenhouse at dusk", "-a", "9:16", "-n", "4", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    paths = run.stdout.split()
    assert len(paths) == 4 and len(set(paths)) == 4
    for path in paths:
        assert Path(path).parent == (tmp_path / "out").resolve()
        assert image_info(path) == ("png", ratio("9:16"))
        assert Path(path).name.startswith("a-glass-greenhouse-at-dusk-")
    assert "submitted" in run.stderr and ANSI.search(run.stdout) is None
    assert submits(sandbox) == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(Path(p).name for p in paths)


def test_the_request_the_server_saw_matches_the_options(cli, sandbox):
    assert cli("generate", "a fox", "-a", "21:9", "-f", "jpg", "-n", "2").exit_code == 0
    submit = next(r for r in sandbox.stats.requests if r.method == "POST")
    assert submit.path == "/v1/models/google/nano-banana/text-to-image"
    assert submit.headers["User-Agent"].startswith("nanobanana-cli/")
    job = sandbox.jobs()[0]
    assert job.input == {"prompt": "a fox", "aspect_ratio": "21:9", "output_format": "jpeg", "num_images": 2}


@pytest.mark.parametrize(("fmt", "expected", "suffix"), [("jpeg", "jpeg", ".jpg"), ("jpg", "jpeg", ".jpg"), ("webp", "webp", ".webp"), ("png", "png", ".png")])
def test_each_format_is_saved_as_real_bytes_of_that_format(cli, sandbox, fmt, expected, suffix):
    run = cli("generate", "a fox", "-f", fmt, "-a", "4:5", "-q")
    assert run.exit_code == 0, run.stderr
    (path,) = run.stdout.split()
    assert path.endswith(suffix)
    assert image_info(path) == (expected, ratio("4:5"))


def test_json_is_one_document_with_verifiable_outputs(cli, sandbox):
    run = cli("generate", "a red fox", "-n", "2", "--json")
    assert run.exit_code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert set(doc) >= {"request_id", "status", "input", "outputs", "elapsed_seconds"}
    assert doc["status"] == "succeeded"
    assert doc["input"] == {"prompt": "a red fox", "aspect_ratio": "16:9", "output_format": "png", "num_images": 2}
    assert len(doc["outputs"]) == 2
    for item in doc["outputs"]:
        data = Path(item["path"]).read_bytes()
        assert item["bytes"] == len(data) and item["sha256"] == sha256_of(item["path"])
        assert item["url"].startswith(sandbox.asset_base_url)
    assert doc["request_id"] in run.stderr  # the id is on stderr too, before the wait


def test_quiet_prints_only_paths_and_nothing_on_stderr(cli, sandbox):
    run = cli("generate", "a fox", "-n", "3", "-q")
    assert run.exit_code == 0
    assert run.stderr == ""
    assert all(Path(line).is_file() for line in run.stdout.splitlines()) and len(run.stdout.splitlines()) == 3


def test_no_wait_prints_only_the_id_and_does_not_poll(cli, start_sandbox):
    sandbox = start_sandbox(queue_seconds=HELD)
    run = cli("generate", "a fox", "--no-wait", "-q")
    assert run.exit_code == 0 and run.stderr == ""
    request_id = run.stdout.strip()
    assert sandbox.job(request_id) is not None
    assert [r.method for r in sandbox.stats.requests] == ["POST"]


def test_no_wait_json_has_the_urls_to_follow(cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    doc = json.loads(cli("generate", "a fox", "--no-wait", "--json").stdout)
    assert doc["status"] == "in_queue"
    assert doc["status_url"].endswith(f"/v1/requests/{doc['request_id']}/status")
    assert doc["cancel_url"].endswith("/cancel") and doc["input"]["prompt"] == "a fox"


def test_no_download_prints_urls_and_writes_nothing(cli, sandbox):
    run = cli("generate", "a fox", "-n", "2", "--no-download")
    assert run.exit_code == 0
    urls = run.stdout.split()
    assert len(urls) == 2 and all(u.startswith(sandbox.asset_base_url) for u in urls)
    assert list(Path.cwd().iterdir()) == []


@pytest.mark.parametrize("args", [("-",), ()])
def test_prompt_from_stdin(cli, sandbox, args):
    run = cli("generate", *args, "--json", input="a fox read from stdin\n")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["input"]["prompt"] == "a fox read from stdin"


def test_missing_prompt_on_a_terminal_is_a_usage_error(cli, sandbox):
    run = cli("generate", tty_stdin=True)
    assert run.exit_code == 2 and "no prompt given" in run.stderr
    assert submits(sandbox) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-a", "7:3"), "21:9"),
        (("-f", "gif"), "png"),
        (("-n", "0"), "invalid number of images 0"),  # above 4 is several jobs: tests/test_workflows.py
    ],
)
def test_invalid_options_exit_2_and_send_nothing(cli, sandbox, args, message):
    run = cli("generate", "a fox", *args)
    assert run.exit_code == 2
    assert message in run.stderr
    assert sandbox.stats.requests == []


@pytest.mark.parametrize("prompt", ["   ", "x" * 1001])
def test_invalid_prompts_exit_2_and_send_nothing(cli, sandbox, prompt):
    run = cli("generate", prompt)
    assert run.exit_code == 2 and run.stderr.startswith("error: ")
    assert len(run.stderr.strip().splitlines()) == 1
    assert sandbox.stats.requests == []


def test_output_dir_that_is_a_file_fails_before_submitting(cli, sandbox, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = cli("generate", "a fox", "-o", blocker)
    assert run.exit_code == 2 and "file" in run.stderr
    assert submits(sandbox) == 0


def test_no_token_exits_3_and_names_the_ways_to_set_one(cli, sandbox, monkeypatch):
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    run = cli("generate", "a fox")
    assert run.exit_code == 3
    assert "RUNCOMFY_API_TOKEN" in run.stderr and "--token" in run.stderr
    assert sandbox.stats.requests == []


def test_token_precedence_flag_then_runcomfy_api_token_then_your_api_token(cli, sandbox, monkeypatch):
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "wrong-token-from-env")
    assert cli("generate", "a fox", "-q").exit_code == 3
    assert cli("generate", "a fox", "-q", "--token", sandbox.token).exit_code == 0
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    monkeypatch.setenv("YOUR_API_TOKEN", sandbox.token)
    assert cli("generate", "a fox", "-q").exit_code == 0


def test_rejected_token_exits_3(cli, sandbox):
    run = cli("generate", "a fox", "--token", "not-the-token")
    assert run.exit_code == 3 and "rejected the token" in run.stderr
    assert submits(sandbox) == 0


def test_failed_job_exits_5_with_the_reason(cli, sandbox):
    run = cli("generate", "a fox sandbox:fail")
    assert run.exit_code == 5
    assert "failed" in run.stderr and "could not render" in run.stderr
    assert run.stdout == "" and list(Path.cwd().iterdir()) == []


def test_timeout_exits_6_with_the_id_and_the_resume_command(cli, start_sandbox):
    sandbox = start_sandbox(queue_seconds=HELD)
    run = cli("generate", "a fox", "--timeout", "0.2")
    assert run.exit_code == 6
    (request_id,) = [job.request_id for job in sandbox.jobs()]
    assert f"nanobanana watch {request_id}" in run.stderr
    assert submits(sandbox) == 1


def test_unreachable_api_exits_7(cli, sandbox, monkeypatch):
    sandbox.stop()
    run = cli("generate", "a fox", "--base-url", sandbox.base_url, "--retries", "1")
    assert run.exit_code == 7 and "cannot reach" in run.stderr and "connection refused" in run.stderr


def test_plain_http_to_a_remote_host_is_refused(cli, monkeypatch):
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "t" * 20)
    run = cli("generate", "a fox", "--base-url", "http://api.example.com")
    assert run.exit_code == 2 and "unencrypted" in run.stderr


def test_the_sandbox_flag_runs_offline_without_any_token(cli):
    run = cli("generate", "a greenhouse", "-a", "9:16", "-n", "4", "--sandbox")
    assert run.exit_code == 0, run.stderr
    paths = run.stdout.split()
    assert len(paths) == 4
    assert all(image_info(p) == ("png", ratio("9:16")) for p in paths)


def test_second_identical_download_is_a_no_op_and_a_different_file_is_never_overwritten(cli, sandbox, tmp_path):
    first = cli("generate", "a fox", "-q", "-o", tmp_path).stdout.split()[0]
    request_id = sandbox.jobs()[0].request_id
    again = cli("result", request_id, "--download", "-q", "-o", tmp_path / "again").stdout.split()[0]
    assert sha256_of(again) == sha256_of(first)
    # a different file under the name the next download wants must survive untouched
    Path(again).write_bytes(b"precious")
    third = cli("result", request_id, "--download", "-q", "-o", tmp_path / "again").stdout.split()[0]
    assert Path(again).read_bytes() == b"precious"
    assert third != again and sha256_of(third) == sha256_of(first)
    fourth = cli("result", request_id, "--download", "-q", "-o", tmp_path / "again").stdout.split()[0]
    assert fourth == third
    assert not [p for p in (tmp_path / "again").iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_saved_images_get_the_mode_the_users_umask_gives_new_files(cli, sandbox, tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        run = cli("generate", "a fox", "-n", "2", "-q", "-o", tmp_path / "out")
    finally:
        os.umask(previous)
    assert run.exit_code == 0, run.stderr
    saved = [Path(line) for line in run.stdout.split()]
    assert len(saved) == 2 and {stat.S_IMODE(path.stat().st_mode) for path in saved} == {mode}
    assert [path.name for path in (tmp_path / "out").iterdir() if path.name.endswith(".part")] == []
