"""The CLI as separate processes: real exit codes, Ctrl-C, startup imports, `nanobanana sandbox`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import HELD, SENTINEL_TOKEN, WAIT_LIMIT, wait_until
from .imaging import image_info, ratio


def nanobanana(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nanobanana_cli", *args],
        input=input, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(),
    )


@pytest.fixture
def sandbox_process(monkeypatch):
    """`nanobanana sandbox --port 0` in its own process; the test reads its export lines."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_cli", "sandbox", "--port", "0", "--token", SENTINEL_TOKEN,
         "--queue-seconds", "0.3", "--run-seconds", "0.3", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    exports = dict(
        process.stdout.readline().removeprefix("export ").strip().split("=", 1) for _ in range(2)
    )
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    yield exports
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=WAIT_LIMIT)
    finally:
        if process.poll() is None:  # Ctrl-C did not stop it: the test fails, but leaves no sandbox behind
            process.kill()
            process.wait()


def test_sandbox_prints_the_two_exports(sandbox_process):
    assert sandbox_process["NANOBANANA_BASE_URL"].startswith("http://127.0.0.1:")
    assert sandbox_process["RUNCOMFY_API_TOKEN"] == SENTINEL_TOKEN


def test_no_wait_status_watch_result_across_processes(sandbox_process, tmp_path):
    submitted = nanobanana("generate", "a red fox", "-a", "2:3", "-n", "2", "--no-wait", "-q")
    assert submitted.returncode == 0, submitted.stderr
    request_id = submitted.stdout.strip()
    status = nanobanana("status", request_id, "--json")
    # a 0.6 s job may be done by the time a second python process asks, on a busy machine
    assert status.returncode == 0 and json.loads(status.stdout)["status"] in ("in_queue", "in_progress", "succeeded")
    watched = nanobanana("watch", request_id, "-o", str(tmp_path), "--json")
    assert watched.returncode == 0, watched.stderr
    outputs = json.loads(watched.stdout)["outputs"]
    assert len(outputs) == 2
    result = nanobanana("result", request_id, "--download", "-o", str(tmp_path / "again"), "-q")
    assert result.returncode == 0
    for path in result.stdout.split():
        assert image_info(path)[1] == ratio("2:3")
    for proc in (submitted, status, watched, result):
        assert SENTINEL_TOKEN not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("generate", "x", "-a", "1:7"), 2),
        (("generate", "x", "-n", "0"), 2),
        (("frobnicate",), 2),
        (("status", "no-such-job"), 4),
        (("result", "../x"), 2),
    ],
)
def test_exit_codes_of_the_real_process(sandbox_process, args, code):
    proc = nanobanana(*args)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_token_exits_3_in_a_real_process(monkeypatch):
    proc = nanobanana("status", "abc")
    assert proc.returncode == 3 and "no API token found" in proc.stderr


def test_debug_shows_a_traceback_only_when_asked(monkeypatch):
    assert "Traceback" in nanobanana("--debug", "status", "abc").stderr
    monkeypatch.setenv("NANOBANANA_DEBUG", "1")
    assert "Traceback" in nanobanana("status", "abc").stderr


def test_ctrl_c_while_waiting_exits_130_leaves_the_job_alone_and_says_how_to_resume(start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_cli", "generate", "a fox", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    first_line = process.stderr.readline()
    assert first_line.startswith("submitted ")
    process.send_signal(signal.SIGINT)
    stdout, rest = process.communicate(timeout=WAIT_LIMIT)
    (request_id,) = [job.request_id for job in sandbox.jobs()]
    assert first_line.split()[1] == request_id
    assert process.returncode == 130
    assert f"nanobanana watch {request_id}" in rest and "not cancelled" in rest
    assert "Traceback" not in rest and stdout == ""
    assert not sandbox.job(request_id).cancelled
    assert [r.path.endswith("/cancel") for r in sandbox.stats.requests].count(True) == 0
    assert list(out.iterdir()) == []


def test_ctrl_c_during_the_submit_warns_that_a_job_may_exist(start_sandbox, tmp_path):
    from nanobanana_cli.sandbox import Faults

    # the submit is held for a minute (a stopping sandbox lets it go): Ctrl-C lands while it is out
    sandbox = start_sandbox(faults=Faults(slow_seconds=60, slow_requests=1))
    process = subprocess.Popen(
        [sys.executable, "-m", "nanobanana_cli", "generate", "a fox", "-o", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    wait_until(lambda: sandbox.stats.api_requests_started == 1, "the submit to arrive")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=WAIT_LIMIT)
    assert process.returncode == 130
    assert "interrupted while submitting \"a fox\" on google/nano-banana/text-to-image; a job may have been created" in err and "nanobanana history" in err


def test_help_and_version_do_not_import_heavy_modules():
    probe = (
        "import sys, json\n"
        "from nanobanana_cli.cli import main\n"
        "for argv in (['--help'], ['--version'], ['generate', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = ['requests', 'urllib3', 'rich.progress', 'sqlite3', 'nanobanana_cli.sandbox', 'PIL', 'nanobanana_cli.api.client']\n"
        "print(json.dumps([m for m in heavy if m in sys.modules]), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
    assert "nanobanana generate" in proc.stdout


def test_root_help_and_version_import_none_of_the_output_machinery():
    """`--help` and `--version` answer with Typer and the error boundary alone: no JSON, no Output."""
    probe = (
        "import sys\n"
        "from nanobanana_cli.cli import main\n"
        "for argv in (['--help'], ['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print(repr([m for m in ('json', 'shlex', 'nanobanana_cli.render.output') if m in sys.modules]), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert "Usage: nanobanana" in proc.stdout


def test_version_prints_name_and_version():
    from nanobanana_cli import __version__

    proc = nanobanana("--version")
    assert proc.returncode == 0 and proc.stdout == f"nanobanana {__version__}\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_version_to_a_full_disk_is_one_error_line_not_a_traceback():
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "nanobanana_cli", "--version"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "No space left on device" in proc.stderr


def test_version_to_a_reader_that_left_exits_0_quietly():
    reader, writer = os.pipe()
    os.close(reader)  # gone before the version is written: the write fails with EPIPE, deterministically
    try:
        proc = subprocess.run([sys.executable, "-m", "nanobanana_cli", "--version"], stdout=writer,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_a_long_output_reaches_the_reader_whole_before_the_process_ends(tmp_path, monkeypatch):
    """The console script ends without Python's module teardown once its output is flushed: every
    byte written must still arrive, well past a pipe's buffer."""
    import sqlite3

    from nanobanana_cli.stores.history import DB_NAME, History

    monkeypatch.setenv("NANOBANANA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NANOBANANA_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "data").mkdir()
    with History(tmp_path / "data" / DB_NAME) as history:
        history.count()  # created and migrated
    jobs = 3000
    with sqlite3.connect(tmp_path / "data" / DB_NAME) as db:
        db.executemany(
            "INSERT INTO jobs (request_id, submitted_at, updated_at, model, base_url, prompt, input, status)"
            " VALUES (?, ?, ?, 'google/nano-banana/text-to-image', 'http://127.0.0.1:9', ?, ?, 'succeeded')",
            [(f"job-{n:05d}", f"2026-12-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
              "2026-12-01T01:00:00Z", f"a fox number {n}", json.dumps({"prompt": f"a fox number {n}", "num_images": 1}))
             for n in range(jobs)],
        )
    db.close()
    proc = nanobanana("history", "--json", "-n", str(jobs))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout) > 256 * 1024
    listed = json.loads(proc.stdout)
    assert sorted(entry["request_id"] for entry in listed) == [f"job-{n:05d}" for n in range(jobs)]


def test_root_help_documents_the_exit_codes():
    out = nanobanana("-h").stdout
    for text in ("0 success", "3 missing or rejected API token", "6 wait timed out", "130 interrupted"):
        assert text in " ".join(out.split())


def test_package_exposes_the_client_for_python_users():
    proc = subprocess.run(
        [sys.executable, "-c", "from nanobanana_cli import Client, GenerationInput; print(Client.__name__, GenerationInput('x').prompt)"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.stdout.strip() == "Client x", proc.stderr


def test_package_ships_a_typing_marker():
    from importlib.resources import files

    assert files("nanobanana_cli").joinpath("py.typed").is_file()


def test_readme_python_api_example_runs_as_written(tmp_path):
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (example,) = re.findall(r"<!-- python-api -->\n```python\n(.*?)```", readme, re.S)
    proc = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    printed = [line.split() for line in proc.stdout.splitlines()]
    assert len(printed) == 2
    for path, size, digest in printed:
        assert Path(path).parent == tmp_path / "out" and Path(path).stat().st_size == int(size)
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest

