"""A command that sends nothing never imports the HTTP stack (requests, urllib3): a dry run, help,
and everything that reads the history or files only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nanobanana_cli.api.models import GenerationInput
from nanobanana_cli.engine.downloads import file_sha256
from nanobanana_cli.engine.provenance import write_sidecar
from nanobanana_cli.stores.history import History

from .image_samples import saved

PROBE = """
import json, sys
from nanobanana_cli.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""
HTTP_STACK = ("requests", "urllib3")


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """A data and config directory holding one finished job and the image it saved."""
    env = {**os.environ, "NANOBANANA_DATA_DIR": str(tmp_path / "data"), "NANOBANANA_CONFIG_DIR": str(tmp_path / "config")}
    env.pop("RUNCOMFY_API_TOKEN", None)
    out = tmp_path / "out"
    out.mkdir()
    image = out / "a-fox-3f2a9c1e-1.png"
    image.write_bytes(saved("PNG"))
    write_sidecar(image, {"prompt": "a fox", "request_id": "3f2a9c1e-0000-4000-8000-000000000001", "num_images": 1})
    request_id = "3f2a9c1e-0000-4000-8000-000000000001"
    with History(tmp_path / "data" / "history.sqlite3") as history:
        history.record_submission(request_id, GenerationInput("a fox"), "https://model-api.runcomfy.net")
        digest = file_sha256(image)
        history.update(request_id, status="succeeded", paths=[str(image)],
                       files=[{"path": str(image), "bytes": image.stat().st_size, "sha256": digest, "delivered_sha256": digest}])
    return env


def run(env: dict[str, str], *args: str) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120, env=env)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def http_stack(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HTTP_STACK)


@pytest.mark.parametrize("args", [
    ["generate", "a fox", "--dry-run", "--token", "t"],
    ["generate", "a fox", "--dry-run", "--curl", "--token", "t", "--base-url", "http://127.0.0.1:8188"],
    ["generate", "--help"],
    ["--help"],
    ["history"],
    ["history", "stats"],
    ["inspect", "{out}/a-fox-3f2a9c1e-1.png"],
    ["gallery", "{out}"],
    ["explain"],
    ["explain", "3f2a9c1e-0000-4000-8000-000000000001"],
    ["regen", "{out}/a-fox-3f2a9c1e-1.png", "--dry-run", "--token", "t"],
    ["config", "list"],
    ["help", "file-names"],
])
def test_commands_that_send_nothing_never_import_the_http_stack(home, tmp_path, args):
    code, modules = run(home, *(arg.format(out=tmp_path / "out") for arg in args))
    assert code in (0, None), args  # each did its work (a failure could stop before the imports in question)
    assert http_stack(modules) == []
    assert "nanobanana_cli.api.client" not in modules


def test_the_probe_sees_the_http_stack_where_it_is_used(home):
    """The same probe on a command that does talk to an API (here one that cannot be reached)."""
    _, modules = run(home, "status", "3f2a9c1e-0000-4000-8000-000000000001", "--token", "t",
                     "--base-url", "http://127.0.0.1:9", "--retries", "0")
    assert "requests" in modules
