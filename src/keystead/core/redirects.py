"""Where the server may send a browser: callbacks, logout return URLs (contract §2.1, §2.3, §6.1).

    /authorize   redirect_uri_allowed(uri, client.callbacks, client.app_type)  else error page
                 append_params(uri, {"code": …, "state": …}, "query")          the 302 Location
    /v2/logout   logout_url_allowed(returnTo, allowed_logout_urls)             else error page
    Management   callback_url_problem(uri)                                     validate on write

Matching is exact, with two deliberate exceptions: Auth0's `*` in the left-most host label
(https://*.example.com/cb) and RFC 8252 §7.3 loopback ports for native apps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote, urlencode

from keystead.core.clients import AppType

ResponseMode = Literal["query", "fragment"]

# Never a redirect target, whatever is registered (RFC 9700 §2.6, security case AZ-05).
FORBIDDEN_SCHEMES: Final = frozenset({"javascript", "data", "vbscript", "file", "blob"})
# RFC 8252 §7.3: only IP literals, never "localhost", which DNS or /etc/hosts may redirect.
LOOPBACK_LITERALS: Final = frozenset({"127.0.0.1", "[::1]"})

_URL: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<authority>[^/?#]*)"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?",
    re.DOTALL,
)
_SCHEME: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_LABEL: Final = re.compile(r"[a-z0-9\-]+")
_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


@dataclass(frozen=True)
class SplitUrl:
    """A `scheme://authority/path?query#fragment` URL, split without any normalisation."""

    scheme: str  # as written
    host: str  # as written; IPv6 literals keep their brackets
    port: str | None
    path: str
    query: str | None
    fragment: str | None


def _clean(url: str) -> bool:
    """Printable ASCII without spaces or backslashes (browsers read `\\` as `/`)."""
    return bool(url) and all("!" <= c <= "~" and c != "\\" for c in url)


def split_url(url: str) -> SplitUrl | None:
    """Split a hierarchical URL; None when it is not one, is not clean printable ASCII, carries
    userinfo (`user@host`, a classic open-redirect trick) or has a bad port."""
    if not _clean(url):
        return None
    m = _URL.fullmatch(url)
    if m is None or "@" in m["authority"]:
        return None
    authority = m["authority"]
    if authority.startswith("["):
        host, bracket, rest = authority.partition("]")
        host += bracket
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port = rest[1:] if rest else None
    else:
        host, colon, port_text = authority.partition(":")
        port = port_text if colon else None
    if not host or (port is not None and not (port.isdigit() and 0 < int(port) < 65536)):
        return None
    return SplitUrl(m["scheme"], host, port, m["path"], m["query"], m["fragment"])


def _scheme(url: str) -> str | None:
    m = _SCHEME.match(url)
    return m[1].lower() if m else None


def host_matches(pattern: str, host: str) -> bool:
    """Host equality, or Auth0's subdomain wildcard (case-insensitive).

    The one `*` must sit in the left-most label of a host of three or more labels, may carry a
    prefix or suffix (`pr-*.example.com`), and stands for exactly one DNS label: never a dot, so
    `*.example.com` matches neither `example.com` nor `a.b.example.com`. A bare `*` matches nothing.
    """
    pattern, host = pattern.lower(), host.lower()
    if "*" not in pattern:
        return pattern == host
    labels = pattern.split(".")
    if pattern.count("*") != 1 or "*" not in labels[0] or len(labels) < 3 or "" in labels:
        return False
    candidate = host.split(".")
    if len(candidate) != len(labels) or candidate[1:] != labels[1:]:
        return False
    prefix, suffix = labels[0].split("*")
    first = candidate[0]
    return (
        _LABEL.fullmatch(first) is not None
        and len(first) > len(prefix) + len(suffix)
        and first.startswith(prefix)
        and first.endswith(suffix)
    )


def redirect_uri_allowed(uri: str, callbacks: Sequence[str], app_type: AppType) -> bool:
    """Is `uri` one of the client's registered `callbacks` (contract §2.1; AZ-01, AZ-03, AZ-06)?

    Exact string match, query included. Also: a callback with a `*` subdomain wildcard (http and
    https only) matches one label in its place, everything else exact; and for native apps a
    callback on http://127.0.0.1 or http://[::1] matches any port, everything else exact.
    Fragments, userinfo and script schemes are never allowed.
    """
    if not _clean(uri) or "#" in uri or _scheme(uri) in FORBIDDEN_SCHEMES:
        return False
    target = split_url(uri)
    for callback in callbacks:
        if not _clean(callback) or "#" in callback:
            continue
        if uri == callback:
            return True
        registered = split_url(callback)
        if target is None or registered is None:
            continue
        same_scheme = registered.scheme.lower() == target.scheme.lower()
        same_rest = (registered.path, registered.query) == (target.path, target.query)
        if not (same_scheme and same_rest):
            continue
        if "*" in registered.host and registered.scheme.lower() in ("http", "https"):
            if registered.port == target.port and host_matches(registered.host, target.host):
                return True
        elif (
            app_type == "native"
            and registered.scheme == target.scheme == "http"
            and registered.host == target.host
            and registered.host in LOOPBACK_LITERALS
        ):
            return True  # RFC 8252 §7.3: the port is chosen by the app at run time
    return False


def default_redirect_uri(callbacks: Sequence[str]) -> str | None:
    """The redirect_uri to use when /authorize omits it: only an unambiguous single callback.

    With several callbacks (or a wildcard) the server must not pick one (security case AZ-04).
    """
    if len(callbacks) == 1 and "*" not in callbacks[0] and _clean(callbacks[0]):
        return callbacks[0]
    return None


def _logout_key(url: SplitUrl, *, with_query: bool) -> tuple[str, str | None, str, str | None]:
    scheme = url.scheme.lower()
    port = None if url.port == _DEFAULT_PORTS.get(scheme) else url.port
    return scheme, port, url.path or "/", url.query if with_query else None


def logout_url_allowed(
    return_to: str, allowed: Sequence[str], *, ignore_query: bool = True
) -> bool:
    """Is `return_to` in the `allowed` logout URLs (contract §6.1; security case SE-05)?

    Auth0's /v2/logout rule: the query and fragment of `returnTo` are ignored; scheme and host
    compare case-insensitively, the path case-sensitively; `*` subdomain wildcards are allowed.
    /oidc/logout passes `ignore_query=False`: there the registered URI must match with its query.
    """
    if _scheme(return_to) in FORBIDDEN_SCHEMES:
        return False
    target = split_url(return_to)
    if target is None:
        return False
    key = _logout_key(target, with_query=not ignore_query)
    for entry in allowed:
        registered = split_url(entry)
        if registered is None or registered.fragment is not None:
            continue
        if _logout_key(registered, with_query=not ignore_query) == key and host_matches(
            registered.host, target.host
        ):
            return True
    return False


def append_params(
    uri: str, params: Mapping[str, str | int | None], mode: ResponseMode = "query"
) -> str:
    """Add response parameters to a validated redirect_uri (contract §2.3).

    `query` keeps an existing query byte-exact and appends (security case AZ-03); `fragment` is
    for implicit responses. None values are left out (no `state` when none was sent, AZ-18); the
    rest are percent-encoded (spaces as %20), so `state` round-trips byte-exact.
    """
    if "#" in uri:
        raise ValueError("redirect_uri must not contain a fragment; validate it first")
    encoded = urlencode(
        [(key, str(value)) for key, value in params.items() if value is not None], quote_via=quote
    )
    if not encoded:
        return uri
    if mode == "fragment":
        return f"{uri}#{encoded}"
    if "?" not in uri:
        return f"{uri}?{encoded}"
    return f"{uri}{encoded}" if uri.endswith(("?", "&")) else f"{uri}&{encoded}"


def is_loopback_host(host: str) -> bool:
    """Hosts that never leave the machine: localhost, *.localhost, 127.0.0.0/8 and [::1]."""
    host = host.lower()
    if host in ("localhost", "[::1]") or host.endswith(".localhost"):
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)


def callback_url_problem(uri: str) -> str | None:
    """Why `uri` cannot be registered as a callback, or None if it can (security case AZ-05).

    For the Management API's `callbacks` (and logout URL) validation; the text names the
    problem, not the URL. Plain http only for loopback hosts, for every app type (RFC 8252 §8.3).
    """
    if not _clean(uri):
        return "must be a URL of printable ASCII characters without spaces or backslashes"
    scheme = _scheme(uri)
    if scheme is None:
        return "must be an absolute URL"
    if scheme in FORBIDDEN_SCHEMES:
        return f"must not use the {scheme}: scheme"
    if "#" in uri:
        return "must not contain a fragment"
    url = split_url(uri)
    if scheme in ("http", "https"):
        if url is None:
            return "must be a valid URL without user information"
        if "*" in uri and (
            "*" in url.path + (url.query or "") or not host_matches(url.host, _sample(url.host))
        ):
            return "may only use * in the left-most label of a host with at least three labels"
        if scheme == "http" and not is_loopback_host(url.host):
            return "must use https unless the host is a loopback address"
    elif "*" in uri:
        return "may only use * with http or https"
    return None


def _sample(pattern: str) -> str:
    """A host the wildcard `pattern` should match, to check that the pattern is well formed."""
    return pattern.replace("*", "x", 1)
