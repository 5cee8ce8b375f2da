"""Hooks and the desktop notifier run without the API token in their environment.

An --on-done command is often someone else's upload script: it gets RUNCOMFY_API_TOKEN,
YOUR_API_TOKEN and RUNCOMFY_TOKEN only when the user opts in (`--hook-env-token`, or
`config set hook_token true`); the notifier never needs it.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from nanobanana_cli.stores.tokens import TOKEN_ENV_VARS

from .conftest import SENTINEL_TOKEN

# Appends (to the file it is given) each token variable it can see, and one that is not a token's.
PRINT_ENV = f"""import json, os, sys
names = {[*TOKEN_ENV_VARS, "NB_UNRELATED"]!r}
with open(sys.argv[1], "a") as log:
    log.write(json.dumps({{name: os.environ.get(name) for name in names}}) + "\\n")
"""


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "print_env.py"
    path.write_text(PRINT_ENV)
    return path


@pytest.fixture
def token_everywhere(sandbox, monkeypatch):
    for name in TOKEN_ENV_VARS:
        monkeypatch.setenv(name, SENTINEL_TOKEN)
    monkeypatch.setenv("NB_UNRELATED", "kept")
    return sandbox


def hook(script: Path, log: Path) -> str:
    return shlex.join([sys.executable, str(script), str(log)])


def seen(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.mark.parametrize("command", ["generate", "batch"])
def test_a_hook_does_not_see_the_token_by_default(command, cli, token_everywhere, script, tmp_path):
    log = tmp_path / "env.log"
    if command == "batch":
        (tmp_path / "prompts.txt").write_text("a fox\n")
        run = cli("batch", tmp_path / "prompts.txt", "-o", tmp_path / "out", "--on-done", hook(script, log))
    else:
        run = cli("generate", "a fox", "-o", tmp_path / "out", "--on-done", hook(script, log))
    assert run.exit_code == 0, run.stderr
    assert seen(log) == [{**dict.fromkeys(TOKEN_ENV_VARS), "NB_UNRELATED": "kept"}]


@pytest.mark.parametrize("opt_in", ["flag", "config", "environment"])
def test_a_hook_sees_the_token_when_the_user_opts_in(opt_in, cli, token_everywhere, script, tmp_path, monkeypatch):
    log = tmp_path / "env.log"
    extra: tuple[str, ...] = ()
    if opt_in == "flag":
        extra = ("--hook-env-token",)
    elif opt_in == "config":
        assert cli("config", "set", "hook_token", "true").exit_code == 0
    else:
        monkeypatch.setenv("NANOBANANA_HOOK_TOKEN", "1")
    run = cli("generate", "a fox", "-o", tmp_path / "out", "--on-done", hook(script, log), *extra)
    assert run.exit_code == 0, run.stderr
    assert seen(log) == [{**dict.fromkeys(TOKEN_ENV_VARS, SENTINEL_TOKEN), "NB_UNRELATED": "kept"}]
    if opt_in == "config":  # and the flag turns it off again
        run = cli("generate", "a fox", "-o", tmp_path / "out", "--on-done", hook(script, log), "--no-hook-env-token")
        assert run.exit_code == 0, run.stderr
        assert seen(log)[-1] == {**dict.fromkeys(TOKEN_ENV_VARS), "NB_UNRELATED": "kept"}


def test_the_desktop_notifier_never_sees_the_token(cli, token_everywhere, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "notify.log"
    notifier = bin_dir / "notify-send"
    notifier.write_text(f"#!{sys.executable}\nimport sys\nsys.argv[1:] = [{str(log)!r}]\n{PRINT_ENV}")
    notifier.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{'/usr/bin:/bin'}")
    monkeypatch.setenv("NANOBANANA_NOTIFY_AFTER", "0.000001")
    run = cli("generate", "a fox", "-o", tmp_path / "out", "--notify", "--hook-env-token")
    assert run.exit_code == 0, run.stderr
    assert seen(log) == [{**dict.fromkeys(TOKEN_ENV_VARS), "NB_UNRELATED": "kept"}]


@pytest.mark.parametrize(("template", "problem"), [
    ("echo {", "Single '{'"), ("echo {n:x}", "{n} takes no format"), ("echo {path!r}", "{path} takes no format"),
])
def test_a_hook_template_that_could_only_fail_after_the_images_is_refused_before_the_submit(cli, sandbox, template, problem):
    run = cli("generate", "a fox", "--on-done", template)
    assert run.exit_code == 2 and problem in run.stderr, run.stderr
    assert sandbox.jobs() == []
