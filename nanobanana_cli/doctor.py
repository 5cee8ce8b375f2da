"""`nanobanana doctor`: every check a support thread would ask for, each with its fix."""

from __future__ import annotations

import platform
import tempfile
import time
from dataclasses import asdict, dataclass

from . import __version__
from .errors import AuthError, NanobananaError


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


def run_checks(token_flag: str | None = None, base_url_flag: str | None = None) -> list[Check]:
    from .api.client import Client, check_base_url
    from .stores.settings import SETTINGS, ConfigStore, config_dir, data_dir, resolve_base_url, token_sources
    from .stores.history import History
    from .api.retry import RetryPolicy

    checks = [Check("version", "ok", f"nanobanana {__version__}, Python {platform.python_version()} on {platform.system()}")]
    for label, directory, variable in (("config directory", config_dir(), "NANOBANANA_CONFIG_DIR"), ("data directory", data_dir(), "NANOBANANA_DATA_DIR")):
        problem = _writable(directory)
        checks.append(Check(label, "fail" if problem else "ok", f"{directory}" + (f": {problem}" if problem else ""),
                            f"make it writable, or point {variable} elsewhere" if problem else None))

    store = ConfigStore()
    try:
        for key in SETTINGS:
            store.resolve(key)
        checks.append(Check("config file", "ok", f"{store.path}" + ("" if store.path.exists() else " (not created yet)")))
    except NanobananaError as exc:
        checks.append(Check("config file", "fail", str(exc), exc.hint or "fix the value with `nanobanana config set`"))

    warnings: list[str] = []
    with History(warn=warnings.append) as history:
        history.entries(limit=1)
    checks.append(Check("history", "fail" if warnings else "ok", warnings[0] if warnings else str(history.path),
                        f"move the file aside: mv {history.path} {history.path}.broken" if warnings else None))

    sources = token_sources(token_flag)
    if sources:
        checks.append(Check("token", "ok", f"{sources[0].masked} from {sources[0].source}"))
    else:
        checks.append(Check("token", "fail", "no API token found", "run `nanobanana auth login` or export RUNCOMFY_API_TOKEN"))

    try:
        api = check_base_url(resolve_base_url(base_url_flag))
    except NanobananaError as exc:
        checks.append(Check("base URL", "fail", str(exc), exc.hint))
        return checks
    checks.append(Check("base URL", "ok", api))

    # Without a token the same request still proves the API answers (it will say 401).
    probe_token = sources[0].token if sources else "nanobanana-doctor-no-token"
    started = time.monotonic()
    try:
        with Client(probe_token, api, retry=RetryPolicy(retries=1)) as client:
            accepted = client.verify_token()
    except AuthError:
        accepted = False
    except NanobananaError as exc:
        checks.append(Check("API reachable", "fail", str(exc), "check your network, proxy settings (HTTPS_PROXY) or --base-url"))
        checks.append(Check("token accepted", "skip", "the API could not be reached"))
        return checks
    checks.append(Check("API reachable", "ok", f"{api} answered in {(time.monotonic() - started) * 1000:.0f} ms"))
    if not sources:
        checks.append(Check("token accepted", "skip", "no token to check"))
    elif accepted:
        checks.append(Check("token accepted", "ok", f"the API accepts the token from {sources[0].source}"))
    else:
        checks.append(Check("token accepted", "fail", f"the API rejected the token from {sources[0].source}",
                            "get a new token from your RunComfy profile, then `nanobanana auth login`"))
    return checks
