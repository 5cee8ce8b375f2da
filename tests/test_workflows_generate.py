"""`generate` for real work, against the sandbox: prompt matrices, more than four images, previews,
--on-done hooks and --notify."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from nanobanana_cli.render.output import Mode, Output

from .conftest import HELD, WAIT_LIMIT, beside, finish_all, wait_until

RECORDER = "import json, sys\nwith open(sys.argv[1], 'a') as log: log.write(json.dumps(sys.argv[2:]) + '\\n')\n"


def numbers(paths: list[str]) -> list[int]:
    """The trailing `-N` of each file name: the image's number in its run."""
    return [int(re.search(r"-(\d+)\.\w+$", path)[1]) for path in paths]


@pytest.fixture
def recorder(tmp_path) -> tuple[Path, Path]:
    """A hook that appends its arguments, as JSON, to a log: what a hook really received."""
    script = tmp_path / "record.py"
    script.write_text(RECORDER)
    return script, tmp_path / "hook.log"


def hook_calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# -- prompt matrices -----------------------------------------------------------------------------


def test_a_matrix_makes_one_job_per_combination_named_by_its_values(cli, sandbox, tmp_path):
    run = cli("generate", "a {red,blue} fox", "--yes", "-o", tmp_path / "out")
    assert run.exit_code == 0, run.stderr
    assert sorted(job.input["prompt"] for job in sandbox.jobs()) == ["a blue fox", "a red fox"]
    paths = run.stdout.split()
    assert [Path(p).name.split("-")[0] for p in paths] == ["red", "blue"]  # in the matrix's order, values first
    assert all(Path(p).is_file() for p in paths)
    assert "2 prompt(s)" in run.stderr and "1. a red fox" in run.stderr and "2. a blue fox" in run.stderr
    assert (tmp_path / "out" / "nanobanana-batch.jsonl").is_file()


def test_var_fills_names_braces_escape_and_name_placeholders_carry_values(cli, sandbox, tmp_path):
    run = cli("generate", "{{draft}} a {red,blue} fox, {style} style", "--var", "style=ink, oil",
              "--name", "{var.style}-{var.1}-{i}", "-q", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    assert sorted(Path(p).name for p in run.stdout.split()) == ["ink-blue-1.png", "ink-red-1.png", "oil-blue-1.png", "oil-red-1.png"]
    assert "{draft} a red fox, ink style" in {job.input["prompt"] for job in sandbox.jobs()}


def test_no_expand_sends_the_prompt_verbatim_as_one_job(cli, sandbox):
    run = cli("generate", "a {red,blue} fox", "--no-expand", "-q")
    assert run.exit_code == 0, run.stderr
    assert [job.input["prompt"] for job in sandbox.jobs()] == ["a {red,blue} fox"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("a {colour} fox",), "no --var gives it values"),
        (("a {red,blue} fox", "--name", "{var.style}"), "no variable 'style'"),
        (("a {red,blue} fox", "--no-wait"), "--no-wait works on one job"),
        (("a fox", "--var", "style=ink", "--no-expand"), "--no-expand"),
        (("a fox", "--on-done", "echo {file}"), "unknown placeholder"),
    ],
)
def test_mistakes_exit_2_with_the_fix_and_send_nothing(cli, sandbox, args, message):
    run = cli("generate", *args)
    assert run.exit_code == 2 and message in run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ") and "; " in run.stderr
    assert sandbox.stats.requests == []


def test_a_large_matrix_is_confirmed_on_a_terminal_and_needs_yes_without_one(cli, sandbox, monkeypatch):
    monkeypatch.setenv("NANOBANANA_MATRIX_CONFIRM_ABOVE", "2")
    assert cli("model", "nano-banana").exit_code == 0  # the catalog's price, cached (the bundled snapshot has none)
    asked = len(sandbox.stats.requests)
    refused = cli("generate", "a {red,blue,green} fox")
    assert refused.exit_code == 2 and "3 jobs" in refused.stderr and "--yes" in refused.stderr
    unanswered = cli("generate", "a {red,blue,green} fox", tty_stdin=True)  # the terminal's input ends: no
    assert unanswered.exit_code == 1 and "Submit 3 jobs (estimated cost $" in unanswered.stderr and "not confirmed" in unanswered.stderr
    assert len(sandbox.stats.requests) == asked
    assert cli("generate", "a {red,blue,green} fox", "--yes", "-q").exit_code == 0 and sandbox.stats.submits == 3


def test_a_matrix_run_again_resumes_and_never_pays_twice(cli, sandbox, tmp_path):
    first = cli("generate", "a fox, {calm,angry sandbox:fail}", "--json", "-o", tmp_path)
    assert first.exit_code == 5
    assert [json.loads(line)["status"] for line in first.stdout.splitlines()] == ["succeeded", "failed"]
    assert "run the same command again" in first.stderr
    again = cli("generate", "a fox, {calm,angry sandbox:fail}", "--json", "-o", tmp_path)
    docs = [json.loads(line) for line in again.stdout.splitlines()]
    assert [doc["skipped"] for doc in docs] == [True, False]  # only the failed job went out again
    assert docs[0]["outputs"] == json.loads(first.stdout.splitlines()[0])["outputs"]
    assert sandbox.stats.submits == 3 and "resuming the run of this command" in again.stderr


def test_a_matrix_dry_run_shows_every_request_and_sends_none(cli, sandbox):
    run = cli("generate", "a {red,blue} fox", "-n", "6", "--dry-run", "--json")
    assert run.exit_code == 0
    bodies = [json.loads(line)["body"] for line in run.stdout.splitlines()]
    assert [(b["prompt"], b["num_images"]) for b in bodies] == [("a red fox", 4), ("a red fox", 2), ("a blue fox", 4), ("a blue fox", 2)]
    assert sandbox.stats.requests == []


# -- more than four images -----------------------------------------------------------------------


def test_ten_images_are_three_concurrent_jobs_numbered_1_to_10(cli, start_sandbox, tmp_path):
    sandbox = start_sandbox(queue_seconds=HELD)

    def all_three_out() -> None:  # held until the third is submitted: none may wait for another to end
        wait_until(lambda: len(sandbox.jobs()) == 3, "three jobs out at once")
        finish_all(sandbox)

    with beside(all_three_out, sandbox):
        run = cli("generate", "a fox", "-n", "10", "-q", "-o", tmp_path)
    assert run.exit_code == 0, run.stderr
    paths = run.stdout.split()
    assert len(paths) == 10 and numbers(paths) == list(range(1, 11)) and all(Path(p).is_file() for p in paths)
    assert sorted(job.input["num_images"] for job in sandbox.jobs()) == [2, 4, 4]
    assert sandbox.stats.peak_in_flight == 3


def test_json_of_a_run_is_one_document_per_job_in_order(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "-n", "6", "--json", "-o", tmp_path)
    docs = [json.loads(line) for line in run.stdout.splitlines()]
    assert [doc["line"] for doc in docs] == [1, 2] and [len(doc["outputs"]) for doc in docs] == [4, 2]
    assert numbers([o["path"] for doc in docs for o in doc["outputs"]]) == list(range(1, 7))


def test_max_cost_counts_every_image_of_the_run(cli, sandbox, tmp_path):
    price = json.loads(cli("model", "--json").stdout)["base_price_usd"]
    refused = cli("generate", "a fox", "-n", "10", "--max-cost", str(price * 9), "-o", tmp_path)
    assert refused.exit_code == 2 and "10 image(s)" in refused.stderr and sandbox.stats.submits == 0
    assert cli("generate", "a fox", "-n", "10", "--max-cost", str(price * 10 + 0.001), "-q", "-o", tmp_path).exit_code == 0


# -- previews ------------------------------------------------------------------------------------


class TTYStream:
    """A stderr that says it is a terminal, and keeps what is written to it."""

    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    @property
    def text(self) -> str:
        return "".join(self.written)


@pytest.mark.parametrize("mode", ["--json", "-q", None])
def test_preview_writes_nothing_without_a_terminal_or_in_json_or_quiet(cli, sandbox, monkeypatch, mode):
    monkeypatch.setenv("NANOBANANA_PREVIEW_PROTOCOL", "kitty")
    run = cli("generate", "a fox", "--preview", *([mode] if mode else []))
    assert run.exit_code == 0, run.stderr
    assert "\x1b" not in run.stderr + run.stdout


@pytest.mark.parametrize(("protocol", "escape"), [("kitty", "\x1b_Gf=100"), ("iterm", "\x1b]1337;File="), ("blocks", "\u2580")])
def test_preview_draws_on_a_terminal_stderr_in_its_protocol_only_in_human_mode(sandbox, tmp_path, monkeypatch, protocol, escape):
    from PIL import Image

    image = tmp_path / "a.png"
    Image.new("RGB", (16, 8), (200, 10, 10)).save(image)
    monkeypatch.setenv("NANOBANANA_PREVIEW_PROTOCOL", protocol)
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal = TTYStream()
    Output(Mode.HUMAN, stderr=terminal).preview(str(image))
    assert escape in terminal.text
    for mode in (Mode.JSON, Mode.QUIET):
        silent = TTYStream()
        Output(mode, stderr=silent).preview(str(image))
        assert silent.text == ""


def test_preview_through_a_real_pseudo_terminal(sandbox, tmp_path):
    """The whole command, its stderr a pty, preview from the config default: the kitty escape appears."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "NANOBANANA_PREVIEW": "true", "NANOBANANA_PREVIEW_PROTOCOL": "kitty", "TERM": "xterm-256color"}
    received: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the command is done
                return
            if not chunk:
                return
            received.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    process = subprocess.run([sys.executable, "-m", "nanobanana_cli", "generate", "a fox", "-o", str(tmp_path)],
                             stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL, env=env, timeout=60)
    os.close(terminal)
    reader.join(timeout=WAIT_LIMIT)
    os.close(controller)
    assert process.returncode == 0
    assert b"\x1b_Gf=100,a=T" in b"".join(received)
    assert b"\x1b" not in process.stdout  # stdout carries only the path


# -- hooks and notifications ---------------------------------------------------------------------


def test_on_done_gets_a_hostile_prompt_as_inert_text_one_argument_each(cli, sandbox, recorder, tmp_path):
    script, log = recorder
    prompt = "a fox; rm -rf ~ && touch pwned $(touch pwned2) `touch pwned3`"
    run = cli("generate", prompt, "-n", "2", "-q", "-o", tmp_path / "out",
              "--on-done", f"{sys.executable} {script} {log} {{path}} {{prompt}} {{i}}/{{n}} {{id}}")
    assert run.exit_code == 0, run.stderr
    calls = hook_calls(log)
    assert [call[:3] for call in calls] == [[path, prompt, f"{i}/2"] for i, path in enumerate(run.stdout.split(), start=1)]
    assert calls[0][3] == sandbox.jobs()[0].request_id
    assert not any(Path(name).exists() for name in ("pwned", "pwned2", "pwned3"))


def test_on_done_from_the_environment_numbers_a_run_1_to_n(cli, sandbox, recorder, monkeypatch, tmp_path):
    script, log = recorder
    monkeypatch.setenv("NANOBANANA_ON_DONE", f"{sys.executable} {script} {log} {{i}} {{n}}")
    assert cli("generate", "a fox", "-n", "6", "-q", "-o", tmp_path).exit_code == 0
    assert sorted(hook_calls(log), key=lambda call: int(call[0])) == [[str(i), "6"] for i in range(1, 7)]


def test_a_failing_hook_is_a_warning_not_a_failed_job(cli, sandbox, tmp_path):
    run = cli("generate", "a fox", "-o", tmp_path, "--on-done", f"{sys.executable} -c 'import sys; sys.exit(3)' {{path}}")
    assert run.exit_code == 0 and run.stdout.strip()
    assert "warning: --on-done" in run.stderr and "exited 3" in run.stderr


def test_on_done_in_batch_runs_for_each_saved_image(cli, sandbox, recorder, tmp_path):
    script, log = recorder
    prompts = tmp_path / "p.txt"
    prompts.write_text("fox one\nfox two\n")
    run = cli("batch", prompts, "-o", tmp_path / "out", "-q", "--on-done", f"{sys.executable} {script} {log} {{prompt}}")
    assert run.exit_code == 0
    assert sorted(call[0] for call in hook_calls(log)) == ["fox one", "fox two"]


@pytest.fixture
def notify_send(tmp_path, monkeypatch) -> Path:
    """A `notify-send` on PATH that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "notified.log"
    fake = bin_dir / "notify-send"
    fake.write_text(f"#!{sys.executable}\n{RECORDER.replace('sys.argv[1]', repr(str(log))).replace('sys.argv[2:]', 'sys.argv[1:]')}")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


def test_notify_after_a_long_wait_sends_a_desktop_notification(cli, start_sandbox, notify_send, monkeypatch):
    start_sandbox(run_seconds=0.2)
    monkeypatch.setenv("NANOBANANA_NOTIFY_AFTER", "0.1")
    run = cli("generate", "a fox", "--notify", "-q")
    assert run.exit_code == 0 and "\a" not in run.stderr  # no bell: stderr is not a terminal
    assert hook_calls(notify_send) == [["--", "nanobanana", "1 image(s) ready: a fox"]]


def test_a_short_wait_notifies_nobody_and_a_missing_notifier_is_no_error(cli, sandbox, notify_send, monkeypatch, tmp_path):
    monkeypatch.setenv("NANOBANANA_NOTIFY_AFTER", "3600")  # not the default 10 s: a busy machine may wait that long
    assert cli("generate", "a quick fox", "--notify", "-q").exit_code == 0  # under notify_after
    assert hook_calls(notify_send) == []
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("NANOBANANA_NOTIFY_AFTER", "0.001")
    run = cli("generate", "a fox", "--notify")
    assert run.exit_code == 0 and "warning" not in run.stderr


def test_the_bell_rings_only_on_a_terminal_in_human_mode(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    terminal, scripted = TTYStream(), TTYStream()
    Output(Mode.HUMAN, stderr=terminal).bell()
    Output(Mode.JSON, stderr=scripted).bell()
    assert terminal.text == "\a" and scripted.text == ""


def test_workflow_settings_are_checked_when_set(cli):
    assert cli("config", "set", "preview", "yes").exit_code == 0
    assert json.loads(cli("config", "get", "preview", "--json").stdout)["value"] is True
    for key, value, message in (("notify", "maybe", "true or false"), ("on_done", "echo {file}", "unknown placeholder"),
                                ("matrix_confirm_above", "0", "at least 1")):
        run = cli("config", "set", key, value)
        assert run.exit_code == 2 and message in run.stderr
