"""Every URL safety check, made with the parser that requests itself connects with.

`urllib.parse.urlsplit` and urllib3 disagree on URLs such as `http://evil\\@127.0.0.1/`: a
check made with one while the other connects can pass a host it never looked at. So every check
here uses urllib3's `parse_url`, and refuses what parsers commonly disagree on (backslashes,
userinfo, whitespace and control characters) outright.
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from ..errors import APIError, UsageError
from ..sanitise import escape

EXCERPT_LENGTH = 160
# scheme://user:password@ : up to the last "@" before the path, as every parser reads the authority
_USERINFO = re.compile(r"\A([A-Za-z][A-Za-z0-9+.-]*:/*)[^/?#]*@")


# A URL every parser reads alike (an ASCII letters-digits-dots host, a port, a path of unreserved
# characters): read here, so that describing a request (a dry run) does not import the HTTP stack;
# urllib3 reads the rest. No re.IGNORECASE: with it [A-Za-z] also matches the Kelvin sign and the long s,
# which IDNA maps to other letters or refuses (and it costs ~0.7 ms more to compile, at every start).
_PLAIN_URL = re.compile(
    r"\A(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?)://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::(?P<port>[0-9]{1,5}))?"
    r"(?:/[A-Za-z0-9._~/-]*)?\Z"
)


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int | None


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _ambiguity(url: str) -> str | None:
    """Why parsers might read `url` differently, or None."""
    if "\\" in url:
        return "a backslash"
    if any(ord(char) < 0x21 or 0x7F <= ord(char) <= 0x9F for char in url):
        return "whitespace or control characters"
    return None


def parse_origin(url: str) -> Origin | None:
    """(scheme, host, port) exactly as urllib3 will connect, or None for anything unsafe or unparsable."""
    if not isinstance(url, str) or _ambiguity(url):
        return None
    plain = _PLAIN_URL.match(url)
    if plain is not None and (plain["port"] is None or int(plain["port"]) <= 65535):
        return Origin(plain["scheme"].lower(), plain["host"].lower(), int(plain["port"]) if plain["port"] else None)
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parsed = parse_url(url)
    except LocationParseError:
        return None
    if parsed.auth is not None or not parsed.host or parsed.scheme not in ("http", "https"):
        return None
    return Origin(parsed.scheme, parsed.host.lower(), parsed.port)


def has_userinfo(url: str) -> bool:
    return _USERINFO.match(url) is not None


def redacted(url: str, secret: str | None = None) -> str:
    """A URL fit to show in a message: its user:password@ part and our token masked, escaped, cut short.

    A server may hand our token back inside a URL (`http://TOKEN:x@host/`): a refusal must not print it.
    """
    if secret:
        url = url.replace(secret, "***")
    url = _USERINFO.sub(r"\1***@", url)
    return escape(url[:EXCERPT_LENGTH] + ("…" if len(url) > EXCERPT_LENGTH else ""))


def check_base_url(base_url: str) -> str:
    """The API root, refusing plain http off this machine so a token never travels in clear text."""
    url = base_url.strip().rstrip("/")
    origin = parse_origin(url)
    if origin is None:
        reason = _ambiguity(url)
        raise UsageError(
            f"invalid base URL {url[:EXCERPT_LENGTH]!r}: "
            + (f"it contains {reason}" if reason else "expected https://host[:port], without user:password@"),
            hint="e.g. --base-url https://model-api.runcomfy.net",
        )
    if origin.scheme == "http" and not is_loopback_host(origin.host):
        raise UsageError(
            f"refusing plain http to {origin.host}: the API token would travel unencrypted",
            hint="use https://, or http:// only with 127.0.0.1/localhost (the sandbox)",
        )
    return url


def same_origin(url: object, base_url: str) -> bool:
    """Only URLs on the API's own origin may receive the token."""
    theirs = parse_origin(url) if isinstance(url, str) else None
    return theirs is not None and theirs == parse_origin(base_url)


def check_asset_url(url: str, api_base_url: str, *, secret: str | None = None) -> str:
    """An output file's URL (or a redirect hop) that may be fetched, without the token.

    https from anywhere; plain http only from loopback, and only when the API itself is a
    loopback http server (the sandbox): an https API never sends us to a clear-text host.
    No user:password@ part, whatever the scheme: its host would be handed the credentials.
    """
    if not isinstance(url, str):
        raise APIError(f"refusing to download output from {url!r}: not a URL")
    shown = redacted(url, secret)
    if has_userinfo(url):
        raise APIError(f"refusing to download output from '{shown}': the URL carries credentials (user:password@)")
    origin = parse_origin(url)
    api = parse_origin(api_base_url)
    if origin is not None and origin.scheme == "https":
        return url
    if origin is not None and api is not None and api.scheme == "http" and is_loopback_host(origin.host):
        return url
    reason = _ambiguity(url)
    why = f"it contains {reason}" if reason else "only https URLs are fetched"
    raise APIError(f"refusing to download output from '{shown}': {why}")
