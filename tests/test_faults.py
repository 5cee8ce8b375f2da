"""The fault matrix: every injected failure against `generate` and `watch`.

Each case checks the exit code, that saved files are complete (bytes and sha256 match what the
CLI reports and decode as images), that nothing lands outside the output directory, that no
temporary file is left behind, and that exactly one job was submitted.
"""

from __future__ import annotations

import json
from email.utils import formatdate
from pathlib import Path

import pytest

from nanobanana_cli.api.client import Client
from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.api.retry import RetryPolicy
from nanobanana_cli.errors import SubmitUncertainError
from nanobanana_cli.sandbox import Faults

from .conftest import SENTINEL_TOKEN, wait_until
from .imaging import image_info, sha256_of

PAST_DATE = formatdate(0, usegmt=True)

RECOVERABLE = {
    "429 with Retry-After seconds": Faults(rate_limit=2, retry_after="0"),
    "429 with Retry-After date": Faults(rate_limit=1, retry_after=PAST_DATE),
    "502 HTML pages": Faults(server_error=2),
    "dropped poll connections": Faults(drop_connection=2),
    "malformed JSON": Faults(malformed_json=2),
    "undocumented status": Faults(unknown_status=2),
    "slow answers": Faults(slow_seconds=0.3, slow_requests=2),
    "truncated download": Faults(truncate_download=2),
    "HTML instead of an image": Faults(not_an_image=1),
    "503 on submit": Faults(submit_unavailable=2),
}

FATAL = {
    "job failed": (Faults(), 5, "could not render"),
    "502 beyond the retry budget": (Faults(server_error=50), 7, "HTTP 502"),
    "429 beyond the retry budget": (Faults(rate_limit=50, retry_after="0"), 7, "HTTP 429"),
    "never an image": (Faults(not_an_image=50), 7, "not a PNG, JPEG or WebP image"),
    "always truncated": (Faults(truncate_download=50), 7, "download of"),
    "always malformed": (Faults(malformed_json=50), 7, "not a JSON object"),
}


def run_scenario(cli, sandbox, command: str, faults: Faults, out: Path, *extra: str, prompt: str = "a fox in the snow"):
    if command == "generate":
        sandbox.inject(faults)
        return cli("generate", prompt, "-n", "2", "--json", "-o", out, *extra)
    submitted = cli("generate", prompt, "-n", "2", "--no-wait", "-q")
    assert submitted.exit_code == 0, submitted.stderr
    sandbox.inject(faults)
    return cli("watch", submitted.stdout.strip(), "--json", "-o", out, *extra)


def assert_clean(out: Path, work: Path) -> None:
    assert list(work.iterdir()) == [], "nothing may be written outside the output directory"
    if out.exists():
        assert [p.name for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".part"] == []


@pytest.mark.parametrize("command", ["generate", "watch"])
@pytest.mark.parametrize("name", list(RECOVERABLE))
def test_recoverable_faults_end_with_complete_files(cli, sandbox, tmp_path, command, name):
    out = tmp_path / "out"
    run = run_scenario(cli, sandbox, command, RECOVERABLE[name], out)
    assert run.exit_code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["status"] == "succeeded" and len(doc["outputs"]) == 2
    for item in doc["outputs"]:
        path = Path(item["path"])
        assert path.parent == out.resolve()
        assert path.stat().st_size == item["bytes"] and sha256_of(path) == item["sha256"]
        assert image_info(path)[0] == "png"
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(i["path"]).name for i in doc["outputs"])
    assert_clean(out, Path.cwd())
    assert sandbox.stats.submits == 1


@pytest.mark.parametrize("command", ["generate", "watch"])
@pytest.mark.parametrize("name", list(FATAL))
def test_fatal_faults_stop_with_the_documented_code_and_no_partial_files(cli, sandbox, tmp_path, command, name):
    faults, code, message = FATAL[name]
    out = tmp_path / "out"
    prompt = "a fox sandbox:fail" if name == "job failed" else "a fox"
    run = run_scenario(cli, sandbox, command, faults, out, "--retries", "1", prompt=prompt)
    assert run.exit_code == code, run.stderr
    assert message in run.stderr
    assert len([line for line in run.stderr.splitlines() if line.startswith("error: ")]) == 1
    assert not out.exists() or list(out.iterdir()) == []
    assert_clean(out, Path.cwd())
    refused_every_submit = command == "generate" and name == "429 beyond the retry budget"
    assert sandbox.stats.submits == (0 if refused_every_submit else 1)


def test_fail_jobs_fault_fails_every_new_job(cli, start_sandbox):
    start_sandbox(faults=Faults(fail_jobs=True))
    assert cli("generate", "a perfectly fine prompt").exit_code == 5


def test_retries_are_announced_one_line_each_in_human_mode(cli, start_sandbox):
    start_sandbox(faults=Faults(server_error=2))
    run = cli("generate", "a fox", "-o", "../out")
    assert run.exit_code == 0
    notices = [line for line in run.stderr.splitlines() if "retrying in" in line]
    assert len(notices) == 2 and "HTTP 502" in notices[0] and "attempt 2 of 5" in notices[0]


def test_quiet_mode_keeps_retry_notices_off_stderr(cli, start_sandbox):
    start_sandbox(faults=Faults(server_error=1))
    run = cli("generate", "a fox", "-q", "-o", "../out")
    assert run.exit_code == 0 and run.stderr == ""


def test_connection_dropped_after_submit_is_never_resubmitted(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(faults=Faults(drop_after_submit=1))
    run = cli("generate", "a fox", "-o", tmp_path / "out")
    assert run.exit_code == 7
    assert "may have been created" in run.stderr and "not sent again" in run.stderr
    assert sandbox.stats.submits == 1
    assert [r.method for r in sandbox.stats.requests] == ["POST"]


def test_submit_refused_with_503_is_retried_and_billed_once(cli, start_sandbox):
    sandbox = start_sandbox(faults=Faults(submit_unavailable=1))
    assert cli("generate", "a fox", "-q", "-o", "../out").exit_code == 0
    assert [r.status for r in sandbox.stats.requests if r.method == "POST"] == [503, 200]
    assert sandbox.stats.submits == 1


def test_read_timeout_on_submit_is_not_resent_but_on_a_poll_is(start_sandbox):
    # the submit's answer comes 2 s after it arrived, ten times the client's read timeout
    sandbox = start_sandbox(faults=Faults(slow_seconds=2, slow_requests=1))
    with Client(SENTINEL_TOKEN, sandbox.base_url, timeout=(2, 0.2), retry=RetryPolicy(retries=2, base=0)) as client:
        with pytest.raises(SubmitUncertainError, match="no answer in time"):
            client.submit(GenerationInput("a fox"))
    # the slowed server still creates the job: exactly what makes a resend a double bill
    wait_until(lambda: sandbox.stats.submits == 1, "the slowed submit to create its job")
    assert sandbox.stats.api_requests_started == 1  # one POST, never re-sent
    (request_id,) = [job.request_id for job in sandbox.jobs()]
    # The first poll is held an hour (a stopping sandbox lets it go) and re-sent after its read
    # timeout; the re-sent ones get a second each, three times, so a busy machine is no failure.
    sandbox.inject(Faults(slow_seconds=3600, slow_requests=1))
    with Client(SENTINEL_TOKEN, sandbox.base_url, timeout=(2, 1.0), retry=RetryPolicy(retries=3, base=0)) as client:
        assert client.status(request_id).status == "completed"
    assert sandbox.stats.api_requests_started >= 3


def test_download_size_cap_stops_a_runaway_asset(cli, start_sandbox, tmp_path, monkeypatch):
    start_sandbox(asset_padding_bytes=3 * 1024 * 1024)
    monkeypatch.setenv("NANOBANANA_MAX_DOWNLOAD_MB", "1")
    out = tmp_path / "out"
    run = cli("generate", "a fox", "-o", out)
    assert run.exit_code == 1 and "download limit" in run.stderr and "max_download_mb" in run.stderr
    assert list(out.iterdir()) == []
    monkeypatch.setenv("NANOBANANA_MAX_DOWNLOAD_MB", "8")
    run = cli("generate", "a fox", "-o", out, "-q")
    assert run.exit_code == 0 and Path(run.stdout.strip()).stat().st_size > 3 * 1024 * 1024
    assert image_info(run.stdout.strip())[0] == "png"


def test_output_dir_below_a_file_is_refused_before_submitting(cli, sandbox, tmp_path):
    (tmp_path / "plain-file").write_text("x")
    run = cli("generate", "a fox", "-o", tmp_path / "plain-file" / "sub")
    assert run.exit_code == 2 and "output directory" in run.stderr
    assert sandbox.stats.submits == 0


def test_request_ids_cannot_steer_the_url(cli, sandbox):
    for bad in ("..%2f..%2fmodels", "abc?x=1", "a/../../b", "id#frag"):
        run = cli("result", bad)
        assert run.exit_code == 2, bad
    assert sandbox.stats.requests == []
