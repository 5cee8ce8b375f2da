"""Token storage, precedence, secrecy; saved defaults and their precedence."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from nanobanana_cli.sandbox import Faults

from .conftest import SENTINEL_TOKEN
from .imaging import image_info, ratio


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def config_dir(tmp_path) -> Path:
    return tmp_path / "config"


@pytest.fixture
def no_env_token(sandbox, monkeypatch):
    """A sandbox whose token the environment does not provide: only a stored token can work."""
    monkeypatch.delenv("RUNCOMFY_API_TOKEN")
    return sandbox


def test_login_with_token_verifies_stores_0600_in_0700_and_then_needs_no_env(cli, no_env_token, config_dir):
    run = cli("auth", "login", "--with-token", input=SENTINEL_TOKEN + "\n")
    assert run.exit_code == 0, run.stderr
    token_file = config_dir / "token"
    assert token_file.read_text().strip() == SENTINEL_TOKEN
    assert mode_of(token_file) == 0o600 and mode_of(config_dir) == 0o700
    checks = [r for r in no_env_token.stats.requests if r.path.endswith("/status")]
    assert len(checks) == 1  # one cheap request proved the token
    generated = cli("generate", "a fox", "-q")
    assert generated.exit_code == 0 and Path(generated.stdout.strip()).is_file()


def test_login_with_a_rejected_token_stores_nothing(cli, no_env_token, config_dir):
    run = cli("auth", "login", "--with-token", input="definitely-wrong-token\n")
    assert run.exit_code == 3 and "rejected" in run.stderr
    assert not (config_dir / "token").exists()


def test_login_no_verify_stores_without_any_request(cli, no_env_token, config_dir):
    assert cli("auth", "login", "--with-token", "--no-verify", input="offline-token-1234\n").exit_code == 0
    assert (config_dir / "token").read_text().strip() == "offline-token-1234"
    assert no_env_token.stats.requests == []


@pytest.mark.parametrize("text", ["", "two tokens\n"])
def test_login_refuses_empty_or_spaced_tokens(cli, no_env_token, text):
    assert cli("auth", "login", "--with-token", input=text).exit_code == 2


def test_login_without_a_terminal_or_flag_says_how(cli, no_env_token):
    run = cli("auth", "login")
    assert run.exit_code == 2 and "--with-token" in run.stderr


def test_token_file_is_never_briefly_world_readable(monkeypatch, tmp_path):
    """The file is created by mkstemp (0600) and renamed; no chmod after the write."""
    from nanobanana_cli.stores import paths, tokens

    seen_modes = []
    real_replace = os.replace

    def spy(src, dst):
        seen_modes.append(mode_of(Path(src)))
        real_replace(src, dst)

    monkeypatch.setattr(paths.os, "replace", spy)
    tokens.TokenStore(tmp_path / "c").save("abc")
    assert seen_modes == [0o600]


def test_status_tells_the_truth_for_each_source(cli, no_env_token, monkeypatch):
    run = cli("auth", "status")
    assert run.exit_code == 3 and "no API token" in run.stderr

    cli("auth", "login", "--with-token", input=SENTINEL_TOKEN)
    doc = json.loads(cli("auth", "status", "--json").stdout)
    assert doc["active"] == {"source": "stored", "token": "****" + SENTINEL_TOKEN[-4:]}
    assert doc["api"] == "accepted"

    monkeypatch.setenv("YOUR_API_TOKEN", "env-token-that-is-wrong")
    run = cli("auth", "status", "--json")
    doc = json.loads(run.stdout)
    assert run.exit_code == 3 and doc["active"]["source"] == "YOUR_API_TOKEN" and doc["api"] == "rejected"
    assert [s["source"] for s in doc["sources"]] == ["YOUR_API_TOKEN", "stored"]

    monkeypatch.setenv("RUNCOMFY_API_TOKEN", SENTINEL_TOKEN)
    human = cli("auth", "status")
    assert human.exit_code == 0
    assert "from RUNCOMFY_API_TOKEN" in human.stdout and "api: accepted" in human.stdout

    flag = json.loads(cli("auth", "status", "--json", "--token", "x" * 20).stdout)
    assert flag["active"] == {"source": "--token", "token": "****xxxx"} and flag["api"] == "rejected"


def test_status_masks_short_tokens_completely(cli, monkeypatch):
    monkeypatch.setenv("RUNCOMFY_API_TOKEN", "zq9xw7")
    run = cli("auth", "status", "--no-verify", "--json")
    assert json.loads(run.stdout)["active"]["token"] == "****" and "zq9xw7" not in run.stdout


def test_status_when_the_api_is_unreachable_exits_7(cli, sandbox, monkeypatch):
    sandbox.stop()
    monkeypatch.setenv("NANOBANANA_RETRIES", "0")
    run = cli("auth", "status")
    assert run.exit_code == 7 and "cannot reach" in run.stderr


def test_logout_removes_the_stored_token(cli, no_env_token, config_dir):
    cli("auth", "login", "--with-token", "--no-verify", input="a-token-to-remove\n")
    assert cli("auth", "logout").exit_code == 0
    assert not (config_dir / "token").exists()
    assert cli("generate", "a fox").exit_code == 3
    assert "no stored token" in cli("auth", "logout").stderr


def test_auth_token_prints_the_active_token_alone(cli, monkeypatch):
    monkeypatch.setenv("YOUR_API_TOKEN", "printable-token-5678")
    run = cli("auth", "token")
    assert run.exit_code == 0 and run.stdout == "printable-token-5678\n"


def test_downloads_and_redirects_off_the_api_host_never_carry_the_token(cli, start_sandbox):
    sandbox = start_sandbox(faults=Faults(redirect_result=1))
    assert cli("generate", "a fox", "-n", "2", "-q").exit_code == 0
    asset_requests = [r for r in sandbox.stats.requests if r.listener == "assets"]
    assert any(r.path.split("?", 1)[0].endswith("/result") for r in asset_requests)  # the redirect was followed
    assert any(r.path.startswith("/files/") for r in asset_requests)
    for request in asset_requests:
        assert "Authorization" not in request.headers and SENTINEL_TOKEN not in json.dumps(request.headers)
    assert all(r.headers.get("Authorization") == f"Bearer {SENTINEL_TOKEN}" for r in sandbox.stats.requests if r.listener == "api")


def test_debug_http_log_never_shows_the_token(cli, sandbox):
    run = cli("--debug", "generate", "a fox", "-q")
    assert run.exit_code == 0 and "debug: POST" in run.stderr and "Bearer" not in run.stderr


# -- config -------------------------------------------------------------------------------------


def test_config_set_get_unset_list_path(cli, config_dir):
    assert cli("config", "set", "aspect", "9:16").exit_code == 0
    assert cli("config", "set", "format", "jpg").exit_code == 0
    assert json.loads((config_dir / "config.json").read_text()) == {"aspect_ratio": "9:16", "output_format": "jpeg"}
    assert cli("config", "get", "aspect_ratio").stdout == "9:16\n"
    assert json.loads(cli("config", "get", "format", "--json").stdout) == {
        "key": "output_format", "value": "jpeg", "source": "config file",
    }
    listed = json.loads(cli("config", "list", "--json").stdout)
    assert listed["num_images"] == {"value": 1, "source": "default"}
    assert cli("config", "unset", "aspect").exit_code == 0
    assert cli("config", "get", "aspect").stdout == "16:9\n"
    assert cli("config", "path").stdout.strip() == str(config_dir / "config.json")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("colour", "red", "valid keys are aspect_ratio, output_format"),
        ("aspect", "7:1", "choose one of 21:9"),
        ("num_images", "9", "choose 1, 2, 3 or 4"),
        ("timeout", "0", "above 0"),
        ("base_url", "http://example.com", "unencrypted"),
    ],
)
def test_config_rejects_unknown_keys_and_invalid_values(cli, config_dir, key, value, message):
    run = cli("config", "set", key, value)
    assert run.exit_code == 2 and message in run.stderr
    assert not (config_dir / "config.json").exists()


def test_corrupt_config_file_is_named_in_a_one_line_error(cli, sandbox, config_dir):
    config_dir.mkdir(parents=True)
    (config_dir / "config.json").write_text("{not json")
    run = cli("generate", "a fox")
    assert run.exit_code == 2
    assert str(config_dir / "config.json") in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert sandbox.stats.requests == []


def test_invalid_value_edited_into_the_file_is_reported_with_the_file(cli, sandbox, config_dir):
    config_dir.mkdir(parents=True)
    (config_dir / "config.json").write_text('{"num_images": 12}')
    run = cli("generate", "a fox")
    assert run.exit_code == 2 and "config.json" in run.stderr and "choose 1, 2, 3 or 4" in run.stderr


def test_defaults_precedence_flag_then_env_then_file_then_builtin(cli, sandbox, monkeypatch, tmp_path):
    cli("config", "set", "aspect_ratio", "1:1")
    cli("config", "set", "output_dir", str(tmp_path / "from-config"))
    cli("config", "set", "num_images", "2")

    def generated(*args):
        run = cli("generate", "a fox", "--json", *args)
        assert run.exit_code == 0, run.stderr
        return json.loads(run.stdout)

    doc = generated()
    assert doc["input"]["aspect_ratio"] == "1:1" and doc["input"]["num_images"] == 2
    assert all(Path(o["path"]).parent == tmp_path / "from-config" for o in doc["outputs"])
    assert image_info(doc["outputs"][0]["path"])[1] == ratio("1:1")

    monkeypatch.setenv("NANOBANANA_ASPECT_RATIO", "3:4")
    assert generated()["input"]["aspect_ratio"] == "3:4"
    assert generated("-a", "21:9", "-n", "1")["input"] == {
        "prompt": "a fox", "aspect_ratio": "21:9", "output_format": "png", "num_images": 1,
    }
    monkeypatch.setenv("NANOBANANA_ASPECT_RATIO", "banana")
    run = cli("generate", "a fox")
    assert run.exit_code == 2 and "$NANOBANANA_ASPECT_RATIO" in run.stderr


def test_base_url_from_config(cli, sandbox, monkeypatch):
    monkeypatch.delenv("NANOBANANA_BASE_URL")
    assert cli("config", "set", "base_url", sandbox.base_url).exit_code == 0
    assert cli("generate", "a fox", "-q").exit_code == 0
    assert sandbox.stats.submits == 1
