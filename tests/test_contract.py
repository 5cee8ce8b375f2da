"""stdout you can trust: one job document everywhere, --template, ids that never default silently,
one error format, a quiet closed pipe, --name, and the curl a dry run prints.

Every `--json` run here is also validated against docs/schema/ by the `cli` fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import HELD, SENTINEL_TOKEN, WAIT_LIMIT, wait_until
from .test_contract_schema import validate_json_output

BIN = Path(sys.executable).parent


def submit(cli, *args: str, prompt: str = "a fox") -> str:
    run = cli("generate", prompt, "--no-wait", "-q", *args)
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


def shell_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}


# -- one job document ---------------------------------------------------------------------------


def test_every_job_command_prints_the_same_versioned_document(cli, sandbox, tmp_path):
    request_id = submit(cli, "-n", "2")
    documents = {
        "generate": json.loads(cli("generate", "a red fox", "--json", "-o", tmp_path / "g").stdout),
        "status": json.loads(cli("status", request_id, "--json").stdout),
        "result": json.loads(cli("result", request_id, "--json").stdout),
        "result --download": json.loads(cli("result", request_id, "--download", "-o", tmp_path / "r", "--json").stdout),
        "watch": json.loads(cli("watch", request_id, "--json", "-o", tmp_path / "w").stdout),
    }
    for command, document in documents.items():
        assert document["schema_version"] == 1 and document["model"] == "google/nano-banana/text-to-image", command
        assert document["status"] == "succeeded" and document["exit_code"] == 0 and document["error"] is None, command
        assert document["submitted_at"] and document["input"]["prompt"], command
    assert [o["path"] for o in documents["status"]["outputs"]] == [None, None]
    assert all(o["sha256"] for o in documents["result --download"]["outputs"])
    assert documents["status"]["outputs"][0]["url"] == documents["watch"]["outputs"][0]["url"]


@pytest.mark.parametrize(("prompt", "args", "status", "code"), [
    ("a fox sandbox:fail", (), "failed", 5),
    ("a slow fox", ("--timeout", "0.2"), "timeout", 6),
])
def test_generate_json_prints_the_document_when_the_job_fails_or_times_out(cli, start_sandbox, prompt, args, status, code):
    start_sandbox(queue_seconds=HELD if args else 0)
    run = cli("generate", prompt, "--json", *args)
    assert run.exit_code == code
    document = json.loads(run.stdout)
    assert (document["status"], document["exit_code"]) == (status, code) and document["error"]
    assert document["request_id"] in run.stderr


def test_generate_json_prints_the_document_when_the_job_is_cancelled(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    process = subprocess.Popen([sys.executable, "-m", "nanobanana_cli", "generate", "a fox", "--json", "-o", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    wait_until(sandbox.jobs, "the job to be submitted")
    (job,) = sandbox.jobs()
    assert cli("cancel", job.request_id).exit_code == 0
    stdout, _ = process.communicate(timeout=WAIT_LIMIT)
    assert process.returncode == 5
    validate_json_output(["generate", "--json"], stdout)
    document = json.loads(stdout)
    assert (document["request_id"], document["status"], document["exit_code"]) == (job.request_id, "cancelled", 5)


def test_result_of_an_unfinished_job_and_cancel_print_job_documents(cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    request_id = submit(cli)
    unfinished = cli("result", request_id, "--json")
    assert unfinished.exit_code == 8
    assert json.loads(unfinished.stdout)["exit_code"] == 8 and json.loads(unfinished.stdout)["status"] == "in_queue"
    cancelled = json.loads(cli("cancel", request_id, "--json").stdout)
    assert (cancelled["status"], cancelled["outcome"], cancelled["exit_code"]) == ("cancelled", "cancelled", 0)


def test_batch_lines_are_job_documents(cli, sandbox, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text('one fox\n{"prompt": "two fox", "name": "second"}\n')
    run = cli("batch", prompts, "-o", tmp_path / "out", "--json")
    assert run.exit_code == 0, run.stderr
    documents = [json.loads(line) for line in run.stdout.splitlines()]
    assert sorted(d["line"] for d in documents) == [1, 2] and all(d["schema_version"] == 1 for d in documents)


# -- --template ---------------------------------------------------------------------------------


def test_template_prints_one_line_per_job_over_the_documents_fields(cli, sandbox, tmp_path):
    request_id = submit(cli, "-a", "1:1")
    assert cli("status", request_id, "--template", "{request_id} {status}").stdout == f"{request_id} succeeded\n"
    urls = cli("result", request_id, "--template", "{input[aspect_ratio]} {outputs[0][url]} {error}").stdout
    assert urls.startswith("1:1 http") and urls.endswith(" \n")
    generated = cli("generate", "a red fox", "-o", tmp_path, "--template", "{outputs[0][path]}|{outputs[1][path]}|{exit_code}")
    path, missing, code = generated.stdout.strip().split("|")
    assert Path(path).is_file() and missing == "" and code == "0"
    ids = [submit(cli), submit(cli)]
    watched = cli("watch", *ids, "-o", tmp_path, "--template", "{request_id}")
    assert sorted(watched.stdout.split()) == sorted(ids)


@pytest.mark.parametrize("template", ["{nope}", "{}", "{0}", "{status", "{input.prompt!x}"])
def test_an_unknown_template_field_is_a_usage_error_before_anything_is_sent(cli, sandbox, template):
    run = cli("generate", "a fox", "--template", template)
    assert run.exit_code == 2 and run.stdout == "" and run.stderr.startswith("error: ") and run.stderr.count("\n") == 1
    assert sandbox.stats.requests == []


def test_template_excludes_json_and_quiet(cli, sandbox):
    assert cli("status", "abc", "--json", "--template", "{status}").exit_code == 2


# -- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "result", "cancel", "watch"])
@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_id_is_a_usage_error_and_sends_nothing(cli, start_sandbox, command, blank):
    sandbox = start_sandbox(queue_seconds=HELD)
    submit(cli)  # a latest job exists: an empty id must not mean it
    before = len(sandbox.stats.requests)
    run = cli(command, blank)
    assert run.exit_code == 2 and "empty request id: did the command that set it fail?" in run.stderr
    assert len(sandbox.stats.requests) == before
    assert not sandbox.jobs()[0].cancelled


def test_the_latest_job_is_used_only_without_an_id_and_is_named(cli, start_sandbox):
    start_sandbox(queue_seconds=HELD)
    request_id = submit(cli, prompt="the newest fox")
    for args in ((), ("--last",)):
        run = cli("status", *args)
        assert run.exit_code == 0 and f"latest job: {request_id} (the newest fox)" in run.stderr


def test_a_job_of_another_api_is_named_not_looked_up_here(cli, start_sandbox, monkeypatch):
    first = start_sandbox()
    request_id = submit(cli)
    second = start_sandbox()
    run = cli("status", request_id)
    assert run.exit_code == 4 and first.base_url in run.stderr and f"--base-url {first.base_url}" in run.stderr
    assert second.stats.requests == []
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
    assert cli("status", request_id, "--base-url", first.base_url, "-q").stdout == "succeeded\n"


def test_resume_hints_name_the_output_directory_and_a_flagged_api(cli, start_sandbox, tmp_path, monkeypatch):
    sandbox = start_sandbox(queue_seconds=HELD)
    monkeypatch.delenv("NANOBANANA_BASE_URL")
    run = cli("generate", "a fox", "-o", tmp_path / "out", "--timeout", "0.2", "--base-url", sandbox.base_url)
    assert run.exit_code == 6
    (job,) = sandbox.jobs()
    assert f"nanobanana watch {job.request_id} -o {tmp_path / 'out'} --base-url {sandbox.base_url}" in run.stderr


def test_watch_and_result_download_save_where_the_job_saved_before(cli, sandbox, tmp_path):
    out = tmp_path / "renders"
    first = cli("generate", "a fox", "-o", out, "-q").stdout.split()
    request_id = sandbox.jobs()[0].request_id
    again = cli("result", request_id, "--download")
    assert again.exit_code == 0 and again.stdout.split() == first and f"saving into {out}" in again.stderr
    assert cli("watch", request_id, "-q").stdout.split() == first
    elsewhere = cli("result", request_id, "--download", "-o", tmp_path / "other", "-q").stdout.split()
    assert Path(elsewhere[0]).parent == (tmp_path / "other").resolve()


# -- one error format ---------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (("generate", "x", "-a", "7:3"), "invalid aspect ratio '7:3': choose one of"),
    (("config", "set", "timeout", "-5"), "invalid timeout '-5'"),
    (("frobnicate",), "no such command 'frobnicate'"),
    (("generate", "x", "--asp", "1:1"), "no such option: --asp"),
    (("status", "--bogus"), "no such option: --bogus"),
    (("generate", "x", "-n", "many"), "'many' is not a valid int"),
    (("batch",), "missing argument"),
])
def test_every_usage_error_is_one_line_with_the_fix_and_exit_2(cli, args, expected):
    run = cli(*args)
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ")
    assert expected in run.stderr.lower()
    assert "; see `nanobanana" in run.stderr or args[:2] == ("config", "set")  # that one names the valid values itself


def test_a_closed_pipe_ends_quietly_with_exit_0(cli, sandbox, tmp_path):
    for n in range(3):
        submit(cli, prompt=f"fox {n}")
    prompts = tmp_path / "many.txt"
    prompts.write_text("".join(f"fox number {n}\n" for n in range(3000)))  # far more than a pipe holds
    for command in (f"nanobanana batch {prompts} --dry-run", "nanobanana history"):
        proc = subprocess.run(["bash", "-c", f"set -o pipefail; {command} | head -1"], capture_output=True, text=True,
                              env=shell_env(), timeout=120)
        assert proc.returncode == 0 and proc.stderr == "", (command, proc.stderr)


# -- --dry-run --curl ---------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.parametrize("source", ["YOUR_API_TOKEN", "RUNCOMFY_TOKEN", "stored"])
def test_dry_run_curl_refers_to_where_the_active_token_is(cli, sandbox, monkeypatch, source):
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    if source == "stored":
        assert cli("auth", "login", "--with-token", "--no-verify", input=SENTINEL_TOKEN).exit_code == 0
    else:
        monkeypatch.setenv(source, SENTINEL_TOKEN)
    script = cli("generate", "a fox", "--dry-run", "--curl").stdout
    reference = "$(nanobanana auth token)" if source == "stored" else f"${source}"
    assert f"Authorization: Bearer {reference}" in script and SENTINEL_TOKEN not in script
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=shell_env(), timeout=60)
    assert proc.returncode == 0 and "request_id" in json.loads(proc.stdout), proc.stderr
    assert len(sandbox.jobs()) == 1


# -- file names ---------------------------------------------------------------------------------


def test_unicode_prompts_keep_their_letters_in_file_names(cli, sandbox, tmp_path):
    (path,) = cli("generate", "日本の庭 🌸", "-o", tmp_path, "-q").stdout.split()
    assert Path(path).name.startswith("日本の庭-") and "🌸" not in path


def test_name_template_names_every_file_of_generate_watch_and_batch(cli, sandbox, tmp_path):
    paths = cli("generate", "A Red Fox", "-n", "2", "-a", "9:16", "-f", "webp", "-o", tmp_path / "g",
                "--name", "{date}_{slug}_{i:02d}-of-{n}_{aspect}_{format}", "-q").stdout.split()
    today = time.strftime("%Y-%m-%d")
    assert [Path(p).name for p in paths] == [f"{today}_a-red-fox_0{i}-of-2_9x16_webp.webp" for i in (1, 2)]
    request_id = submit(cli, prompt="a watched fox")
    (watched,) = cli("watch", request_id, "-o", tmp_path / "w", "--name", "{id}-{slug}", "-q").stdout.split()
    assert Path(watched).name == f"{request_id[:8]}-a-watched-fox.png"
    prompts = tmp_path / "p.txt"
    prompts.write_text('{"prompt": "x", "name": "Hero Shot"}\n')
    (line,) = cli("batch", prompts, "-o", tmp_path / "b", "--name", "{slug}-{time}", "-q").stdout.split()
    assert Path(line).name.startswith("hero-shot-") and len(Path(line).stem) == len("hero-shot-") + 6


@pytest.mark.parametrize("template", ["../{slug}", "/tmp/{slug}", "a/{slug}", "..", ".{slug}", "{i:.>3}", "{bogus}",
                                      "{slug!r}", "", "{slug}\\x"])
def test_a_name_that_could_leave_the_output_directory_is_refused_before_submitting(cli, sandbox, tmp_path, template):
    run = cli("generate", "a fox", "-o", tmp_path / "out", "--name", template)
    assert run.exit_code == 2 and "invalid --name" in run.stderr and sandbox.stats.requests == []
    assert not (tmp_path / "out").exists()


def test_a_nul_in_a_name_is_refused():
    from nanobanana_cli.engine.naming import NameTemplate
    from nanobanana_cli.errors import UsageError

    with pytest.raises(UsageError, match="NUL"):
        NameTemplate.parse("{slug}\0.png")


# -- gallery --------------------------------------------------------------------------------------


def test_gallery_groups_images_by_job_in_submission_order(cli, sandbox, tmp_path):
    out = tmp_path / "g"
    first = cli("generate", "first fox", "-n", "2", "-o", out, "-q").stdout.split()
    second = cli("generate", "second fox", "-n", "2", "-a", "1:1", "-o", out, "-q").stdout.split()
    os.utime(first[1], (time.time() + 60, time.time() + 60))  # file times must not split a job
    page = Path(cli("gallery", out).stdout.strip()).read_text()
    sections = page.split("<section>")[1:]
    assert len(sections) == 2 and "first fox" in sections[0] and "second fox" in sections[1]
    for section, paths in zip(sections, (first, second)):
        assert [part.split('"')[0] for part in section.split('<img src="')[1:]] == [Path(p).name for p in paths]
    assert "1:1 · png" in sections[1]


def test_gallery_of_a_copied_folder_reads_prompt_and_parameters_from_the_files(cli, sandbox, tmp_path, monkeypatch):
    out = tmp_path / "g"
    paths = cli("generate", "a copied fox", "-n", "2", "-a", "9:16", "-o", out, "-q").stdout.split()
    monkeypatch.setenv("NANOBANANA_DATA_DIR", str(tmp_path / "another-machine"))  # no history of these jobs
    page = Path(cli("gallery", out).stdout.strip()).read_text()
    (section,) = page.split("<section>")[1:]
    assert "<h2>a copied fox</h2>" in section and "9:16 · png" in section and Path(paths[0]).name.split("-")[3] in section
