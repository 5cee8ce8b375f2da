"""Settings: one table of every key, and the snapshot each command resolves it into.

Precedence: flag, then environment, then the config file, then built-in defaults (the schema's,
for model options).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ..api.models import ASPECT_RATIOS, DEFAULT_BASE_URL, FORMAT_ALIASES, NUM_IMAGES_CHOICES, OUTPUT_FORMATS
from ..api.retry import DEFAULT_RETRIES
from ..api.schema import TEXT_TO_IMAGE as SCHEMA
from ..errors import UsageError
from .paths import config_dir, write_private_file
from .tokens import ResolvedToken, resolve_token

CONFIG_FILE = "config.json"
# Where a saved image's provenance goes: into the file, into NAME.json beside it, or nowhere.
METADATA_MODES = ("embed", "sidecar", "none")


def _choice(options: tuple[str, ...], aliases: Mapping[str, str] | None = None) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = (aliases or {}).get(raw.strip().lower(), raw.strip().lower())
        if value not in options:
            raise ValueError(f"choose one of {', '.join(options)}")
        return value

    return parse


def _aspect(raw: str) -> str:
    """A ratio some model of the family takes (the bundled snapshot's); each model's own schema is
    checked at submit."""
    from ..api.family import bundled_entries

    known = list(ASPECT_RATIOS)
    for entry in bundled_entries():
        prop = entry.get("input_schema", {}).get("properties", {}).get("aspect_ratio", {})
        known += [value for value in prop.get("enum", ()) if isinstance(value, str) and value not in known]
    return _choice(tuple(known))(raw)


def _model(raw: str) -> str:
    """An alias of the family or a full model id (api/family.py)."""
    from ..api.family import resolve

    try:
        resolve(raw.strip())
    except UsageError as exc:
        raise ValueError(str(exc)) from None
    return raw.strip()


def _num_images(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) not in NUM_IMAGES_CHOICES:
        raise ValueError(f"choose {SCHEMA['num_images'].choices_spoken}")
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
    from ..api.urls import check_base_url

    try:
        return check_base_url(raw)
    except UsageError as exc:
        raise ValueError(str(exc)) from None


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _job_count(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ValueError("expected a whole number of jobs, at least 1")
    return int(raw)


def _hook(raw: str) -> str:
    """A command template for each saved image, checked now rather than after the images are paid for."""
    if not raw.strip():
        return ""  # none: how `--on-done ''` turns off a configured hook
    from ..engine.hooks import Hook

    try:
        Hook(raw)
    except UsageError as exc:
        raise ValueError(f"{exc}; {exc.hint}" if exc.hint else str(exc)) from None
    return raw


def _directory(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected a directory path")
    return str(Path(raw.strip()).expanduser())


class Setting(NamedTuple):  # not a frozen dataclass: ~0.1 ms to define instead of ~0.8, at every start-up
    key: str
    env: str
    default: Any
    parse: Callable[[str], Any]


SETTINGS = {
    setting.key: setting
    for setting in (
        Setting("aspect_ratio", "NANOBANANA_ASPECT_RATIO", SCHEMA["aspect_ratio"].default, _aspect),
        Setting(
            "output_format", "NANOBANANA_OUTPUT_FORMAT", SCHEMA["output_format"].default,
            _choice(OUTPUT_FORMATS, FORMAT_ALIASES),
        ),
        Setting("num_images", "NANOBANANA_NUM_IMAGES", SCHEMA["num_images"].default, _num_images),
        # the model: an alias (nano-banana, nano-banana-2, …) or a full id; None is nano-banana
        Setting("model", "NANOBANANA_MODEL", None, _model),
        Setting("output_dir", "NANOBANANA_OUTPUT_DIR", ".", _directory),
        Setting("base_url", "NANOBANANA_BASE_URL", DEFAULT_BASE_URL, _base_url),
        Setting("timeout", "NANOBANANA_TIMEOUT", None, _seconds),
        Setting("retries", "NANOBANANA_RETRIES", DEFAULT_RETRIES, _retries),
        Setting("max_download_mb", "NANOBANANA_MAX_DOWNLOAD_MB", 2048, _megabytes),
        Setting("metadata", "NANOBANANA_METADATA", "embed", _choice(METADATA_MODES)),
        # workflows: what happens around the images (previews, a command per image, a notification)
        Setting("preview", "NANOBANANA_PREVIEW", False, _boolean),
        Setting("on_done", "NANOBANANA_ON_DONE", None, _hook),
        # whether on_done hooks inherit the API token's environment variables (off: see engine/hooks.py)
        Setting("hook_token", "NANOBANANA_HOOK_TOKEN", False, _boolean),
        Setting("notify", "NANOBANANA_NOTIFY", False, _boolean),
        Setting("notify_after", "NANOBANANA_NOTIFY_AFTER", 10.0, _seconds),
        Setting("matrix_confirm_above", "NANOBANANA_MATRIX_CONFIRM_ABOVE", 8, _job_count),
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


class Resolved(NamedTuple):  # not a frozen dataclass: ~0.1 ms to define instead of ~0.8, at every start-up
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



class Settings:
    """Every setting of one command, resolved once: flag > environment > config file > default.

    The config file is read at most once, and each key is validated the first time it is asked
    for (so a bad value for a key this command never uses does not stop it). Values never change
    afterwards: the client, the download plan and the defaults are all built from one snapshot.
    """

    def __init__(self, flags: dict[str, Any] | None = None, *, token_flag: str | None = None, store: ConfigStore | None = None) -> None:
        self._flags = {key: value for key, value in (flags or {}).items() if value is not None}
        unknown = set(self._flags) - set(SETTINGS)
        if unknown:
            raise KeyError(f"not settings: {', '.join(sorted(unknown))}")
        self.token_flag = token_flag
        self.store = store or ConfigStore()
        self._file: dict[str, Any] | None = None
        self._resolved: dict[str, Resolved] = {}

    def resolved(self, key: str) -> Resolved:
        if key not in self._resolved:
            self._resolved[key] = self._resolve(SETTINGS[key])
        return self._resolved[key]

    def __getitem__(self, key: str) -> Any:
        return self.resolved(key).value

    def _resolve(self, setting: Setting) -> Resolved:
        if setting.key in self._flags:
            return Resolved(self._flags[setting.key], "flag")
        raw = os.environ.get(setting.env, "").strip()
        if raw:
            return Resolved(parse_value(setting, raw, origin=f"${setting.env}"), setting.env)
        if self._file is None:
            self._file = self.store.load()
        if self._file.get(setting.key) is not None:
            return Resolved(parse_value(setting, str(self._file[setting.key]), origin=str(self.store.path)), "config file")
        return Resolved(setting.default, "default")

    def all(self) -> dict[str, Resolved]:
        return {key: self.resolved(key) for key in SETTINGS}

    @property
    def base_url(self) -> str:
        return self["base_url"]

    def token(self) -> ResolvedToken:
        """The token in effect (flag > environment > stored); `AuthError` with the fix when there is none."""
        return resolve_token(self.token_flag)

    def generation_defaults(self) -> dict[str, Any]:
        """The model options a submit uses where the prompt's own line or flags leave them out."""
        return {key: self[key] for key in ("aspect_ratio", "output_format", "num_images")}
