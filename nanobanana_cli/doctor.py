"""`nanobanana doctor`: every check a support thread would ask for, each with its fix."""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from . import __version__
from .errors import AuthError, NanobananaError

if TYPE_CHECKING:
    from .stores.settings import Settings
    from .stores.tokens import ResolvedToken


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # "ok", "fail" or "skip"
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _writable(directory) -> str | None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def run_checks(settings: Settings) -> list[Check]:
    from .stores.paths import config_dir, data_dir
    from .stores.tokens import NO_TOKEN_HINT, token_sources

    checks = [Check("version", "ok", f"nanobanana {__version__}, Python {platform.python_version()} on {platform.system()}")]
    for label, directory, variable in (("config directory", config_dir(), "NANOBANANA_CONFIG_DIR"), ("data directory", data_dir(), "NANOBANANA_DATA_DIR")):
        problem = _writable(directory)
        checks.append(Check(label, "fail" if problem else "ok", f"{directory}" + (f": {problem}" if problem else ""),
                            f"make it writable, or point {variable} elsewhere" if problem else None))
    checks += [_config_check(settings), _history_check()]
    sources = token_sources(settings.token_flag)
    if sources:
        checks.append(Check("token", "ok", f"{sources[0].masked} from {sources[0].source}"))
    else:
        checks.append(Check("token", "fail", "no API token found", NO_TOKEN_HINT))
    try:
        api = settings.base_url
    except NanobananaError as exc:
        checks.append(Check("base URL", "fail", str(exc), exc.hint))
        return checks
    checks.append(Check("base URL", "ok", api))
    return checks + _api_checks(settings, api, sources[0] if sources else None)


def _config_check(settings: Settings) -> Check:
    path = settings.store.path
    try:
        settings.all()
    except NanobananaError as exc:
        return Check("config file", "fail", str(exc), exc.hint or "fix the value with `nanobanana config set`")
    return Check("config file", "ok", f"{path}" + ("" if path.exists() else " (not created yet)"))


def _history_check() -> Check:
    from .stores.history import History

    warnings: list[str] = []
    with History(warn=warnings.append) as history:
        history.entries(limit=1)
    return Check("history", "fail" if warnings else "ok", warnings[0] if warnings else str(history.path),
                 f"move the file aside: mv {history.path} {history.path}.broken" if warnings else None)


def _api_checks(settings: Settings, api: str, token: ResolvedToken | None) -> list[Check]:
    from .engine.connect import open_client
    from .stores.tokens import describe_source, rejected_token_hint

    # Without a token the same request still proves the API answers (it will say 401).
    probe_token = token.token if token else "nanobanana-doctor-no-token"
    started = time.monotonic()
    try:
        with open_client(settings, token=probe_token, retries=1) as client:
            accepted = client.verify_token()
    except AuthError:
        accepted = False
    except NanobananaError as exc:
        return [
            Check("API reachable", "fail", str(exc), "check your network, proxy settings (HTTPS_PROXY) or --base-url"),
            Check("token accepted", "skip", "the API could not be reached"),
        ]
    checks = [Check("API reachable", "ok", f"{api} answered in {(time.monotonic() - started) * 1000:.0f} ms")]
    if token is None:
        checks.append(Check("token accepted", "skip", "no token to check"))
    elif accepted:
        checks.append(Check("token accepted", "ok", f"the API accepts the token from {token.source}"))
    else:
        checks.append(Check("token accepted", "fail", f"{api} rejected {describe_source(token.source)}",
                            rejected_token_hint(token.source)))
    return checks
