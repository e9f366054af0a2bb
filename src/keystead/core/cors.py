"""CORS: which browser origins may call which endpoint, and the headers to send (contract §0.3).

    /oauth/token, /oauth/revoke   preflight: origin_matches(origin, every client's origins)
                                  (an OPTIONS request names no client), then the POST itself:
                                  allowed_origin(origin, client)   → cors_headers(origin)
    /userinfo, /api/v2/*          allowed_origin(origin, client of the token's azp)
    /.well-known/*                PUBLIC_CORS (any origin)
    /authorize web_message        web_message_allowed(redirect_uri, client) (contract §2.3)

An origin is `scheme://host[:port]`, compared case-insensitively with default ports dropped;
configured entries may use Auth0's `*` subdomain wildcard (redirects.host_matches).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import Final, NamedTuple

from keystead.core.clients import Client
from keystead.core.redirects import host_matches, split_url

TOKEN_ALLOW_METHODS: Final = ("POST",)
TOKEN_ALLOW_HEADERS: Final = ("Content-Type", "Auth0-Client", "DPoP")  # spa-js sends these
USERINFO_ALLOW_METHODS: Final = ("GET", "POST")
USERINFO_ALLOW_HEADERS: Final = ("Authorization", "Content-Type", "Auth0-Client")
API_ALLOW_METHODS: Final = ("GET", "POST", "PATCH", "PUT", "DELETE")
API_ALLOW_HEADERS: Final = ("Authorization", "Content-Type")
RATE_LIMIT_HEADERS: Final = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
PREFLIGHT_MAX_AGE: Final = 600  # seconds; Chromium caps at 7200, so longer buys nothing

# For answers that differ by Origin, allowed or not, so that caches keep them apart.
VARY_ORIGIN: Final = MappingProxyType({"Vary": "Origin"})
PUBLIC_CORS: Final = MappingProxyType({"Access-Control-Allow-Origin": "*"})

_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: str | None


def _parse(url: str, *, strict: bool) -> _Origin | None:
    """The origin of an http(s) URL; `strict` demands a bare origin, as in an Origin header."""
    parts = split_url(url)
    if parts is None or parts.scheme.lower() not in _DEFAULT_PORTS:
        return None
    if strict and (parts.path or parts.query is not None or parts.fragment is not None):
        return None
    scheme = parts.scheme.lower()
    port = None if parts.port == _DEFAULT_PORTS[scheme] else parts.port
    return _Origin(scheme, parts.host.lower(), port)


def _serialize(origin: _Origin) -> str:
    return f"{origin.scheme}://{origin.host}" + (f":{origin.port}" if origin.port else "")


def origin_of(url: str) -> str | None:
    """`https://app.example:8443/cb?x` → `https://app.example:8443`; None if not http(s).

    Also the `targetOrigin` for a web_message response: the redirect_uri's own origin, never `*`.
    """
    parsed = _parse(url, strict=False)
    return _serialize(parsed) if parsed else None


def client_origins(client: Client) -> tuple[str, ...]:
    """Every origin pattern `client` allows: web origins, allowed origins, callback origins."""
    entries = (*client.web_origins, *client.allowed_origins, *client.callbacks)
    found = (origin_of(entry) for entry in entries)
    return tuple(dict.fromkeys(o for o in found if o is not None))


def origin_matches(origin: str | None, patterns: Iterable[str]) -> bool:
    """Does the request's Origin header match one of `patterns` (bare `*` matches nothing)?"""
    if not origin:
        return False
    request = _parse(origin, strict=True)  # also refuses the opaque origin "null"
    if request is None:
        return False
    for pattern in patterns:
        allowed = _parse(pattern, strict=False)
        if (
            allowed is not None
            and (allowed.scheme, allowed.port) == (request.scheme, request.port)
            and host_matches(allowed.host, request.host)
        ):
            return True
    return False


def allowed_origin(origin: str | None, client: Client) -> bool:
    """May a page on `origin` call the Authentication API as `client` (contract §0.3)?"""
    return origin_matches(origin, client_origins(client))


def web_message_allowed(redirect_uri: str, client: Client) -> bool:
    """response_mode=web_message needs the redirect_uri's origin in Allowed Web Origins."""
    return origin_matches(origin_of(redirect_uri), client.web_origins)


def cors_headers(
    origin: str, *, expose: Sequence[str] = (), credentials: bool = False
) -> dict[str, str]:
    """Headers for an actual (non-preflight) response to an allowed `origin`."""
    headers = {"Access-Control-Allow-Origin": origin, **VARY_ORIGIN}
    if expose:
        headers["Access-Control-Expose-Headers"] = ", ".join(expose)
    if credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def preflight_headers(
    origin: str,
    *,
    methods: Sequence[str],
    headers: Sequence[str],
    max_age: int = PREFLIGHT_MAX_AGE,
    credentials: bool = False,
) -> dict[str, str]:
    """Headers for a 204 answer to an OPTIONS preflight from an allowed `origin`."""
    out = cors_headers(origin, credentials=credentials)
    out["Access-Control-Allow-Methods"] = ", ".join(methods)
    out["Access-Control-Allow-Headers"] = ", ".join(headers)
    out["Access-Control-Max-Age"] = str(max_age)
    return out
