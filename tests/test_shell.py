"""Shell integration: completions (through the real completion machinery), generated docs,
dry runs, --open, doctor, help texts, and every scripting recipe in README.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SENTINEL_TOKEN, wait_until
from .imaging import image_info, ratio

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))
import reference  # noqa: E402


def shell_env(**extra: str) -> dict[str, str]:
    env = os.environ.copy()
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.update(extra)
    return env


# -- generated files ----------------------------------------------------------------------------


def test_committed_completions_and_cli_reference_are_current(reference_files):
    stale = [str(path.relative_to(ROOT)) for path, text in reference_files.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert stale == [], "regenerate with: python scripts/reference.py"


def test_cli_reference_documents_every_command():
    text = (ROOT / "docs" / "cli.md").read_text()
    for path in reference.command_paths()[1:]:
        assert f"## `nanobanana {' '.join(path)}`" in text
    assert "](docs/cli.md)" in (ROOT / "README.md").read_text()


# -- completion, through the machinery each shell's script uses ---------------------------------


def bash_complete(words: list[str]) -> list[str]:
    """Source the committed bash script and call its completion function, as bash would on Tab."""
    words_literal = " ".join(f"'{word}'" for word in words)
    script = (
        f"source {ROOT / 'completions' / 'nanobanana.bash'}\n"
        f"COMP_WORDS=({words_literal}); COMP_CWORD={len(words) - 1}\n"
        "_nanobanana_completion nanobanana\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    proc = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, env=shell_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["nanobanana", "gen"], ["generate"]),
        (["nanobanana", "a"], ["auth"]),
        (["nanobanana", "generate", "--asp"], ["--aspect"]),
        (["nanobanana", "generate", "--aspect", ""], ["21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16"]),
        (["nanobanana", "generate", "-f", ""], ["png", "jpeg", "webp", "jpg"]),
        (["nanobanana", "auth", ""], ["login", "status", "logout", "token"]),
        (["nanobanana", "config", "set", "out"], ["output_format", "output_dir"]),
    ],
)
def test_bash_completion(words, expected):
    assert bash_complete(words) == expected


def program_complete(shell: str, line: str) -> str:
    extra = {"_NANOBANANA_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line}
    if shell == "fish":
        extra["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    proc = subprocess.run(["nanobanana"], capture_output=True, text=True, env=shell_env(**extra), timeout=60)
    return proc.stdout


def test_every_script_drives_the_same_protocol():
    for path in ("nanobanana.bash", "_nanobanana", "nanobanana.fish"):
        script = (ROOT / "completions" / path).read_text()
        assert "_NANOBANANA_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args" in script
        assert "_TYPER_COMPLETE_ARGS" in script


def test_completion_gives_one_line_per_candidate_whatever_the_width():
    for columns in ("20", "80"):
        proc = subprocess.run(["nanobanana"], capture_output=True, text=True, timeout=60, env=shell_env(
            COLUMNS=columns, TERMINAL_WIDTH=columns, _NANOBANANA_COMPLETE="complete_fish",
            _TYPER_COMPLETE_FISH_ACTION="get-args", _TYPER_COMPLETE_ARGS="nanobanana generate --"))
        lines = proc.stdout.splitlines()
        assert all(line.startswith("--") and line.count("\t") == 1 for line in lines), lines
        described = dict(line.split("\t") for line in lines)
        assert described["--num-images"] == "How many images (per prompt of a matrix)"
        assert described["--no-preview"] == "Turn --preview off"
        assert described["--template"] == "Print each job as this format over its JSON fields"


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion(shell):
    assert "generate" in program_complete(shell, "nanobanana gen")
    assert "--num-images" in program_complete(shell, "nanobanana generate --num")
    ratios = program_complete(shell, "nanobanana generate --aspect ")
    for ratio_text in ("21", "9:16" if shell == "fish" else "9\\\\:16"):
        assert ratio_text in ratios
    assert "webp" in program_complete(shell, "nanobanana batch p.txt -f ")


def test_install_completion_keeps_working(tmp_path):
    env = shell_env(HOME=str(tmp_path), _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1")
    proc = subprocess.run(["nanobanana", "--install-completion", "bash"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    installed = list(tmp_path.rglob("nanobanana.sh")) + list(tmp_path.rglob("*nanobanana*"))
    assert installed and "nanobanana" in (tmp_path / ".bashrc").read_text()


# -- help -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", reference.command_paths()[1:], ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example_and_a_short_flag(cli, path):
    group = path[0] in ("auth", "config") and len(path) == 1
    run = cli(*path, "-h")
    assert run.exit_code == 0
    assert group or "Example" in run.stdout, "each command's help shows an example"
    assert "-h, --help" in run.stdout, "the help lists its short flag"
    assert cli(*path, "--help").stdout == run.stdout, "-h is the same help as --help"


# -- dry runs -----------------------------------------------------------------------------------


def test_dry_run_prints_the_exact_request_and_sends_nothing(cli, sandbox, tmp_path):
    run = cli("generate", "a red fox", "-a", "9:16", "-f", "jpg", "--dry-run", "-o", tmp_path / "never")
    assert run.exit_code == 0
    head, body = run.stdout.split("\n\n", 1)
    assert head.splitlines()[0] == f"POST {sandbox.base_url}/v1/models/google/nano-banana/text-to-image"
    assert "Authorization: Bearer ***" in head
    assert json.loads(body) == {"prompt": "a red fox", "aspect_ratio": "9:16", "output_format": "jpeg", "num_images": 1}
    assert sandbox.stats.requests == [] and not (tmp_path / "never").exists()


def test_dry_run_validates_first(cli, sandbox):
    assert cli("generate", "x" * 1001, "--dry-run").exit_code == 2
    assert cli("generate", "a fox", "--curl").exit_code == 2


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_dry_run_curl_command_really_submits_the_same_job(cli, sandbox, tmp_path):
    run = cli("generate", "a fox & friends 'quoted'", "-n", "2", "--dry-run", "--curl")
    assert run.exit_code == 0 and SENTINEL_TOKEN not in run.stdout and "$RUNCOMFY_API_TOKEN" in run.stdout
    proc = subprocess.run(["bash", "-c", run.stdout], capture_output=True, text=True, env=shell_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "request_id" in json.loads(proc.stdout)
    (job,) = sandbox.jobs()
    assert job.input == {"prompt": "a fox & friends 'quoted'", "aspect_ratio": "16:9", "output_format": "png", "num_images": 2}


def test_batch_dry_run_lists_every_line_as_json(cli, sandbox, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text('one\n# skip\n{"prompt": "two", "num_images": 3}\n')
    run = cli("batch", prompts, "--dry-run", "--json", "-o", tmp_path / "never")
    assert run.exit_code == 0
    docs = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(d["line"], d["body"]["prompt"], d["body"]["num_images"]) for d in docs] == [(1, "one", 1), (3, "two", 3)]
    assert sandbox.stats.requests == [] and not (tmp_path / "never").exists()
    curl = cli("batch", prompts, "--dry-run", "--curl").stdout
    assert curl.count("curl --request POST") == 2 and "# line 3" in curl


# -- --open ---------------------------------------------------------------------------------------


def test_open_without_a_display_is_a_noted_no_op(cli, sandbox, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    run = cli("generate", "a fox", "--open")
    assert run.exit_code == 0 and "no display found" in run.stderr and Path(run.stdout.strip()).is_file()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fakes xdg-open")
def test_open_hands_every_image_to_the_system_viewer(cli, sandbox, monkeypatch, tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    opened = tmp_path / "opened.txt"
    viewer = fake_bin / "xdg-open"
    viewer.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    viewer.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISPLAY", ":99")
    run = cli("generate", "a fox", "-n", "2", "--open", "-q")
    assert run.exit_code == 0
    wait_until(lambda: opened.exists() and len(opened.read_text().split()) >= 2, "the viewer to open both images")
    assert sorted(opened.read_text().split()) == sorted(run.stdout.split())


# -- doctor ---------------------------------------------------------------------------------------


def test_doctor_all_green_against_the_sandbox(cli, sandbox):
    run = cli("doctor", "--json")
    assert run.exit_code == 0, run.stdout
    checks = {c["name"]: c for c in json.loads(run.stdout)}
    assert {c["state"] for c in checks.values()} == {"ok"}
    assert checks["token"]["detail"] == f"****{SENTINEL_TOKEN[-4:]} from RUNCOMFY_API_TOKEN"
    assert set(checks) >= {"config directory", "config file", "history", "token", "base URL", "API reachable", "token accepted"}


def test_doctor_names_each_failure_and_its_fix(cli, sandbox, monkeypatch, tmp_path):
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    run = cli("doctor")
    assert run.exit_code == 1
    assert re.search(r"^fail\s+token\s+no API token found", run.stdout, re.M)
    assert "fix: run `nanobanana auth login`" in run.stdout
    assert re.search(r"^ok\s+API reachable", run.stdout, re.M) and re.search(r"^skip\s+token accepted", run.stdout, re.M)
    rejected = cli("doctor", "--token", "wrong-token-000", "--json")
    states = {c["name"]: c["state"] for c in json.loads(rejected.stdout)}
    assert rejected.exit_code == 1 and states["token accepted"] == "fail"
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "config.json").write_text("[1, 2")
    broken = {c["name"]: c for c in json.loads(cli("doctor", "--json").stdout)}
    assert broken["config file"]["state"] == "fail" and "config.json" in broken["config file"]["detail"]


def test_doctor_when_the_api_is_unreachable(cli, sandbox):
    sandbox.stop()
    run = cli("doctor", "--json")
    states = {c["name"]: c["state"] for c in json.loads(run.stdout)}
    assert run.exit_code == 1 and states["API reachable"] == "fail" and states["token accepted"] == "skip"


# -- README recipes ---------------------------------------------------------------------------


def readme_recipes() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    return dict(re.findall(r"<!-- recipe: ([\w-]+) -->\n```sh\n(.*?)```", text, re.S))


def test_readme_has_the_recipes_the_issue_asks_for():
    assert set(readme_recipes()) == {"submit-then-watch", "ci-step", "exit-codes", "large-runs", "dry-run"}


@pytest.mark.skipif(shutil.which("jq") is None, reason="the recipes use jq")
@pytest.mark.parametrize("name", sorted(readme_recipes()))
def test_readme_recipe_runs(name, start_sandbox, tmp_path):
    start_sandbox(queue_seconds=0.1, run_seconds=0.1)
    (tmp_path / "prompts.txt").write_text("a red fox\na blue whale\na green frog\n")
    proc = subprocess.run(["bash", "-e", "-c", readme_recipes()[name]], capture_output=True, text=True,
                          env=shell_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert SENTINEL_TOKEN not in proc.stdout + proc.stderr
    if name == "submit-then-watch":
        (path,) = proc.stdout.split()[-1:]
        assert Path(path).is_file() and image_info(path)[0] == "png"
    if name == "ci-step":
        assert len(json.loads((tmp_path / "render.json").read_text())["outputs"]) == 2
        assert all(image_info(p)[1] == ratio("1:1") for p in (tmp_path / "renders").iterdir())
    if name == "exit-codes":
        assert len(list((tmp_path / "out").iterdir())) == 1
    if name == "large-runs":
        assert len([p for p in (tmp_path / "out").iterdir() if p.suffix == ".png"]) == 3
        assert len(list((tmp_path / "out-xargs").iterdir())) == 3
    if name == "dry-run":
        assert "curl --request POST" in (tmp_path / "submit.sh").read_text()


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    command = readme.split("# Install, then run the test suite (what CI runs):\n", 1)[1].splitlines()[0]
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci_lines[-1] == command
