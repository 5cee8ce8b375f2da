"""`nanobanana auth`: store, inspect and remove the API token."""

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import AuthError, NanobananaError, UsageError
from ..render.output import Output
from .options import BaseUrlOpt, JsonOpt, TokenOpt, command_settings, make_output

if TYPE_CHECKING:
    from ..stores.settings import Settings

auth_app = typer.Typer(
    help="Log in once, see which token is active and where it comes from, log out.",
    no_args_is_help=True,
)

NoVerifyOpt = Annotated[bool, typer.Option("--no-verify", help="Do not ask the API whether the token is accepted (offline).")]


def _check_with_api(token: str, settings: "Settings") -> bool:
    from ..engine.connect import open_client

    with open_client(settings, token=token) as client:
        return client.verify_token()


def _read_token(with_token: bool) -> str:
    if with_token:
        token = sys.stdin.read().strip()
    elif sys.stdin.isatty():
        import getpass

        token = getpass.getpass("RunComfy API token (input hidden): ").strip()
    else:
        raise UsageError("no terminal to ask for the token on", hint="pipe it in: echo \"$TOKEN\" | nanobanana auth login --with-token")
    if not token:
        raise UsageError("the token is empty", hint="copy it from your RunComfy profile page")
    if any(char.isspace() for char in token):
        raise UsageError("the token contains spaces or line breaks", hint="pass exactly one token")
    return token


def _warn_if_overridden(output: Output) -> None:
    import os

    from ..stores.tokens import TOKEN_ENV_VARS

    for name in TOKEN_ENV_VARS:
        if os.environ.get(name, "").strip():
            output.warn(f"${name} is set and takes precedence over the stored token")
            return


@auth_app.command("login")
def auth_login(
    with_token: Annotated[bool, typer.Option("--with-token", help="Read the token from stdin (for CI).")] = False,
    no_verify: NoVerifyOpt = False,
    base_url: BaseUrlOpt = None,
) -> None:
    """Store an API token for later runs, after checking that the API accepts it.

    Examples:

      nanobanana auth login

      echo "$RUNCOMFY_TOKEN" | nanobanana auth login --with-token
    """
    from ..stores.tokens import TokenStore, mask_token

    output = Output()
    token = _read_token(with_token)
    settings = command_settings(base_url=base_url)
    if not no_verify and not _check_with_api(token, settings):
        raise AuthError(
            f"the API at {settings.base_url} rejected this token, so it was not stored",
            hint="check it on your RunComfy profile page, or the API with --base-url",
        )
    store = TokenStore()
    store.save(token)
    checked = "stored" if no_verify else f"accepted by {settings.base_url} and stored"
    output.info(f"token {mask_token(token)} {checked} in {store.path}")
    _warn_if_overridden(output)


@auth_app.command("status")
def auth_status(
    token: TokenOpt = None,
    base_url: BaseUrlOpt = None,
    no_verify: NoVerifyOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Show which token is active, where it comes from (masked), and whether the API accepts it.

    Exits 0 when a token is active and accepted, 3 when none is set or it is rejected, 7 when
    the API cannot be reached.

    Example: nanobanana auth status --json
    """
    from ..stores.tokens import NO_TOKEN_HINT, TokenStore, describe_source, rejected_token_hint, token_sources

    output = make_output(json_, False)
    settings = command_settings(token, base_url=base_url)
    sources = token_sources(token)
    verdict: str | None = None
    failure: NanobananaError | None = None
    if not sources:
        failure = AuthError("no API token found", hint=NO_TOKEN_HINT)
    elif not no_verify:
        try:
            verdict = "accepted" if _check_with_api(sources[0].token, settings) else "rejected"
        except NanobananaError as exc:
            verdict, failure = "unknown", exc
        if verdict == "rejected":
            failure = AuthError(
                f"the API at {settings.base_url} rejected {describe_source(sources[0].source)}",
                hint=rejected_token_hint(sources[0].source),
            )
    stored_path = str(TokenStore().path)
    document: dict[str, Any] = {
        "active": {"source": sources[0].source, "token": sources[0].masked} if sources else None,
        "sources": [{"source": s.source, "token": s.masked} for s in sources],
        "api": verdict,
        "base_url": settings.base_url,
        "stored_path": stored_path,
    }
    lines = []
    if sources:
        active = sources[0]
        where = f"{active.source} ({stored_path})" if active.source == "stored" else active.source
        lines.append(f"token: {active.masked} from {where}")
        if verdict:
            lines.append(f"api: {verdict} by {settings.base_url}")
        lines += [f"also set, not used: {other.masked} from {other.source}" for other in sources[1:]]
    output.emit(document, lines)
    if failure is not None:
        raise failure


@auth_app.command("logout")
def auth_logout() -> None:
    """Remove the stored token (environment variables are left alone).

    Example: nanobanana auth logout
    """
    from ..stores.tokens import TokenStore

    output = Output()
    store = TokenStore()
    if store.delete():
        output.info(f"removed the stored token ({store.path})")
    else:
        output.info("no stored token to remove")
    _warn_if_overridden(output)


@auth_app.command("token")
def auth_token() -> None:
    """Print the active token alone on stdout, for scripts: curl -H "Authorization: Bearer $(nanobanana auth token)".

    Example: export RUNCOMFY_API_TOKEN=$(nanobanana auth token)
    """
    from ..stores.tokens import resolve_token

    Output().result_line(resolve_token(None).token)
