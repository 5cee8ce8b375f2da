"""Where settings come from: flag, then environment, then the config file, then built-in defaults.

The token follows the same order (flag > environment > stored file). The stored token lives in
its own file, created 0600 inside a 0700 directory, so it is never readable by anyone else, not
even for an instant.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AuthError, UsageError
from ..api.models import ASPECT_RATIOS, DEFAULT_BASE_URL, FORMAT_ALIASES, NUM_IMAGES_CHOICES, OUTPUT_FORMATS
from ..api.retry import DEFAULT_RETRIES

APP_NAME = "nanobanana"
CONFIG_DIR_ENV = "NANOBANANA_CONFIG_DIR"
DATA_DIR_ENV = "NANOBANANA_DATA_DIR"
# RunComfy's docs tell users to set YOUR_API_TOKEN; RunComfy's own CLI reads RUNCOMFY_TOKEN.
TOKEN_ENV_VARS = ("RUNCOMFY_API_TOKEN", "YOUR_API_TOKEN", "RUNCOMFY_TOKEN")
CONFIG_FILE = "config.json"
TOKEN_FILE = "token"


def config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private_file(path: Path, text: str) -> None:
    """Write atomically to a file that is 0600 from the moment it exists."""
    _private_dir(path.parent)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


# -- settings ---------------------------------------------------------------------------------


def _choice(options: tuple[str, ...], aliases: dict[str, str] | None = None) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = (aliases or {}).get(raw.strip().lower(), raw.strip().lower())
        if value not in options:
            raise ValueError(f"choose one of {', '.join(options)}")
        return value

    return parse


def _num_images(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) not in NUM_IMAGES_CHOICES:
        raise ValueError("choose 1, 2, 3 or 4")
    return int(raw)


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not value > 0:
        raise ValueError("expected a number of seconds above 0")
    return value


def _retries(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) > 20:
        raise ValueError("expected a whole number from 0 to 20")
    return int(raw)


def _megabytes(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError("expected a whole number of megabytes, at least 1")
    return int(raw)


def _base_url(raw: str) -> str:
    from ..api.client import check_base_url

    try:
        return check_base_url(raw)
    except UsageError as exc:
        raise ValueError(str(exc)) from None


def _directory(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected a directory path")
    return str(Path(raw.strip()).expanduser())


@dataclass(frozen=True)
class Setting:
    key: str
    env: str
    default: Any
    parse: Callable[[str], Any]


SETTINGS = {
    setting.key: setting
    for setting in (
        Setting("aspect_ratio", "NANOBANANA_ASPECT_RATIO", "16:9", _choice(ASPECT_RATIOS)),
        Setting("output_format", "NANOBANANA_OUTPUT_FORMAT", "png", _choice(OUTPUT_FORMATS, FORMAT_ALIASES)),
        Setting("num_images", "NANOBANANA_NUM_IMAGES", 1, _num_images),
        Setting("output_dir", "NANOBANANA_OUTPUT_DIR", ".", _directory),
        Setting("base_url", "NANOBANANA_BASE_URL", DEFAULT_BASE_URL, _base_url),
        Setting("timeout", "NANOBANANA_TIMEOUT", None, _seconds),
        Setting("retries", "NANOBANANA_RETRIES", DEFAULT_RETRIES, _retries),
        Setting("max_download_mb", "NANOBANANA_MAX_DOWNLOAD_MB", 2048, _megabytes),
    )
}
KEY_ALIASES = {"aspect": "aspect_ratio", "format": "output_format", "n": "num_images", "num": "num_images"}


def canonical_key(key: str) -> Setting:
    name = key.strip().lower().replace("-", "_")
    name = KEY_ALIASES.get(name, name)
    if name not in SETTINGS:
        raise UsageError(f"unknown setting {key!r}: valid keys are {', '.join(SETTINGS)}")
    return SETTINGS[name]


def parse_value(setting: Setting, raw: str, *, origin: str) -> Any:
    try:
        return setting.parse(str(raw))
    except ValueError as exc:
        raise UsageError(f"invalid {setting.key} {raw!r} from {origin}: {exc}") from None


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "flag", the environment variable's name, "config file" or "default"


class ConfigStore:
    """The user's saved defaults: a flat JSON object in the config directory."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or config_dir()) / CONFIG_FILE

    def load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise UsageError(f"cannot read config file {self.path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            raise UsageError(
                f"config file {self.path} is not valid JSON ({exc})",
                hint=f"fix it, or delete it to start over: rm {self.path}",
            ) from None
        if not isinstance(data, dict):
            raise UsageError(f"config file {self.path} must hold a JSON object", hint=f"delete it: rm {self.path}")
        return data

    def save(self, data: dict[str, Any]) -> None:
        _private_dir(self.path.parent)
        write_private_file(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def set(self, key: str, raw: str) -> tuple[Setting, Any]:
        setting = canonical_key(key)
        value = parse_value(setting, raw, origin="the command line")
        data = self.load()
        data[setting.key] = value
        self.save(data)
        return setting, value

    def unset(self, key: str) -> bool:
        setting = canonical_key(key)
        data = self.load()
        if setting.key not in data:
            return False
        del data[setting.key]
        self.save(data)
        return True

    def resolve(self, key: str, flag: Any = None) -> Resolved:
        """Flag > environment > config file > built-in default, validating what is not a flag."""
        setting = SETTINGS[key]
        if flag is not None:
            return Resolved(flag, "flag")
        raw = os.environ.get(setting.env, "").strip()
        if raw:
            return Resolved(parse_value(setting, raw, origin=f"${setting.env}"), setting.env)
        data = self.load()
        if setting.key in data and data[setting.key] is not None:
            return Resolved(parse_value(setting, str(data[setting.key]), origin=str(self.path)), "config file")
        return Resolved(setting.default, "default")


# -- the token --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedToken:
    token: str
    source: str  # "--token", an environment variable's name, or "stored"

    @property
    def masked(self) -> str:
        return mask_token(self.token)


def mask_token(token: str) -> str:
    """At most the last 4 characters, and none of a token too short to spare them."""
    return "****" + token[-4:] if len(token) >= 12 else "****"


class TokenStore:
    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or config_dir()) / TOKEN_FILE

    def load(self) -> str | None:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuthError(f"cannot read the stored token {self.path}: {exc.strerror or exc}") from None
        return token or None

    def save(self, token: str) -> None:
        write_private_file(self.path, token.strip() + "\n")

    def delete(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


def token_sources(flag: str | None) -> list[ResolvedToken]:
    """Every token that is set, highest precedence first."""
    found = []
    if flag and flag.strip():
        found.append(ResolvedToken(flag.strip(), "--token"))
    for name in TOKEN_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            found.append(ResolvedToken(value, name))
    stored = TokenStore().load()
    if stored:
        found.append(ResolvedToken(stored, "stored"))
    return found


def resolve_token(flag: str | None) -> ResolvedToken:
    found = token_sources(flag)
    if not found:
        raise AuthError(
            "no API token found",
            hint="run `nanobanana auth login`, pass --token, or export RUNCOMFY_API_TOKEN (or YOUR_API_TOKEN); "
            "to try without an account, add --sandbox",
        )
    return found[0]


def resolve_base_url(flag: str | None) -> str:
    return ConfigStore().resolve("base_url", flag).value


def resolve_retries(flag: int | None) -> int:
    return ConfigStore().resolve("retries", flag).value
