"""Redirect targets (contract §2.1, §2.3, §6.1; security cases AZ-01, AZ-03…AZ-06, AZ-18, SE-05)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from keystead.core.clients import AppType
from keystead.core.redirects import (
    append_params,
    callback_url_problem,
    default_redirect_uri,
    host_matches,
    is_loopback_host,
    logout_url_allowed,
    redirect_uri_allowed,
)

CB = "https://app.example/cb"
WILD = "https://*.example.com/cb"
PREFIX = "https://pr-*.example.com/cb"
LOOP4 = "http://127.0.0.1/cb"
LOOP6 = "http://[::1]/cb"

ALLOWED: list[tuple[str, str, AppType]] = [
    (CB, CB, "spa"),
    ("https://app.example/cb?x=1", "https://app.example/cb?x=1", "spa"),  # AZ-03, exact
    ("http://localhost:3000", "http://localhost:3000", "spa"),
    (
        "com.example.app://login.example.com/ios/callback",
        "com.example.app://login.example.com/ios/callback",
        "native",
    ),
    # Auth0's subdomain wildcard.
    (WILD, "https://tenant1.example.com/cb", "regular_web"),
    (WILD, "https://TENANT-1.example.com/cb", "regular_web"),
    ("https://*.Example.com/cb", "https://a.example.COM/cb", "spa"),
    (PREFIX, "https://pr-12.example.com/cb", "spa"),
    ("http://*.example.com:8080/cb", "http://a.example.com:8080/cb", "spa"),
    # RFC 8252 §7.3: native apps on loopback IP literals may vary only the port (AZ-06).
    (LOOP4, "http://127.0.0.1:53122/cb", "native"),
    (LOOP4, "http://127.0.0.1/cb", "native"),
    ("http://127.0.0.1:3000/cb", "http://127.0.0.1:4000/cb", "native"),
    (LOOP6, "http://[::1]:8080/cb", "native"),
    ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:1/cb?x=1", "native"),
]

REFUSED: list[tuple[str, str, AppType]] = [
    (CB, "https://evil.example/cb", "spa"),  # AZ-01
    (CB, "https://app.example/cb?foo=bar", "spa"),  # AZ-03: query added
    ("https://app.example/cb?x=1", "https://app.example/cb?x=2", "spa"),  # AZ-03: query changed
    ("https://app.example/cb?x=1", "https://app.example/cb", "spa"),
    (CB, "https://app.example/cb/", "spa"),
    (CB, "https://app.example/CB", "spa"),
    (CB, "https://app.example/cb/../cb", "spa"),
    (CB, "https://app.example:443/cb", "spa"),
    (CB, "http://app.example/cb", "spa"),
    (CB, "https://app.example/cb#x", "spa"),  # fragments never
    ("https://app.example/cb#x", "https://app.example/cb#x", "spa"),
    (CB, "https://app.example/cb ", "spa"),
    (CB, " https://app.example/cb", "spa"),
    (CB, "", "spa"),
    # Wildcard: exactly one label, in the registered place only.
    (WILD, "https://example.com/cb", "spa"),
    (WILD, "https://a.b.example.com/cb", "spa"),
    (WILD, "https://.example.com/cb", "spa"),
    (WILD, "https://evil.com/cb", "spa"),
    (WILD, "https://x.example.com.evil.com/cb", "spa"),
    (WILD, "https://x.example.com/cb/more", "spa"),
    (WILD, "https://x.example.com/cb?x=1", "spa"),
    (WILD, "https://x.example.com:8443/cb", "spa"),
    (WILD, "http://x.example.com/cb", "spa"),
    (WILD, "https://x.example.com@evil.com/cb", "spa"),
    (WILD, "https://evil.com\\@x.example.com/cb", "spa"),
    (WILD, "https://evil.com#.example.com/cb", "spa"),
    (WILD, "https://evil.com?.example.com/cb", "spa"),
    (WILD, "https://x_y.example.com/cb", "spa"),
    (WILD, "https://%65vil.example.com/cb", "spa"),
    (WILD, "https://ex\u0430mple.example.com/cb", "spa"),  # Cyrillic a
    (PREFIX, "https://pr-.example.com/cb", "spa"),
    (PREFIX, "https://xx-12.example.com/cb", "spa"),
    ("*", "https://evil.com", "spa"),  # a bare * matches nothing
    ("https://*", "https://evil.com", "spa"),
    ("https://*/cb", "https://evil.com/cb", "spa"),
    ("https://*.com/cb", "https://evil.com/cb", "spa"),
    ("https://sub.*.example.com/cb", "https://sub.x.example.com/cb", "spa"),
    ("https://*.*.example.com/cb", "https://a.b.example.com/cb", "spa"),
    ("com.example.app://*.example.com/cb", "com.example.app://x.example.com/cb", "native"),
    # Loopback: only IP literals, only native apps, only the port, only http (AZ-06).
    (LOOP4, "http://127.0.0.1:53122/other", "native"),
    (LOOP4, "http://localhost.evil.example:53122/cb", "native"),
    (LOOP4, "http://localhost:53122/cb", "native"),
    ("http://localhost/cb", "http://localhost:53122/cb", "native"),
    (LOOP4, "http://127.0.0.1:53122/cb", "spa"),
    (LOOP4, "http://127.0.0.1:53122/cb", "regular_web"),
    (LOOP4, "https://127.0.0.1:53122/cb", "native"),
    (LOOP4, "http://127.0.0.1:99999/cb", "native"),
    (LOOP4, "http://127.0.0.1:0/cb", "native"),
    (LOOP4, "http://127.0.0.1:/cb", "native"),
    (LOOP4, "http://127.0.0.2:80/cb", "native"),
    (LOOP4, "http://[::1]:80/cb", "native"),
    (LOOP4, "http://127.0.0.1:5000/cb?x=1", "native"),
    (LOOP4, "http://user@127.0.0.1:5000/cb", "native"),
    # Script schemes, even if someone managed to register them (AZ-05).
    ("javascript:alert(1)", "javascript:alert(1)", "spa"),
    ("JavaScript://app.example/%0aalert(1)", "JavaScript://app.example/%0aalert(1)", "spa"),
    ("data:text/html,hi", "data:text/html,hi", "spa"),
]


@pytest.mark.parametrize(("callback", "uri", "app_type"), ALLOWED)
def test_redirect_uri_allowed(callback: str, uri: str, app_type: AppType) -> None:
    assert redirect_uri_allowed(uri, [callback], app_type)


@pytest.mark.parametrize(("callback", "uri", "app_type"), REFUSED)
def test_redirect_uri_refused(callback: str, uri: str, app_type: AppType) -> None:
    assert not redirect_uri_allowed(uri, [callback], app_type)


def test_any_of_several_callbacks() -> None:
    callbacks = ["https://a.example/cb", "not a url", WILD, "https://b.example/cb"]
    assert redirect_uri_allowed("https://b.example/cb", callbacks, "spa")
    assert redirect_uri_allowed("https://x.example.com/cb", callbacks, "spa")
    assert not redirect_uri_allowed("https://c.example/cb", callbacks, "spa")
    assert not redirect_uri_allowed("https://a.example/cb", [], "spa")


@pytest.mark.parametrize(
    ("callbacks", "default"),
    [
        ([CB], CB),
        ([CB, "https://app.example/other"], None),  # AZ-04: never pick one
        ([WILD], None),
        ([], None),
    ],
)
def test_default_redirect_uri(callbacks: list[str], default: str | None) -> None:
    assert default_redirect_uri(callbacks) == default


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("app.example", "APP.example", True),
        ("*.example.com", "a.example.com", True),
        ("*-preview.example.com", "pr1-preview.example.com", True),
        ("*-preview.example.com", "-preview.example.com", False),
        ("*", "anything", False),
        ("*.com", "a.com", False),
        ("*.example.com", "a.example.co", False),
        ("*.example..com", "a.example..com", False),
    ],
)
def test_host_matches(pattern: str, host: str, matches: bool) -> None:
    assert host_matches(pattern, host) is matches


# --- logout (contract §6.1) ------------------------------------------------------------------

BYE = "https://app.example.com/logged-out"


@pytest.mark.parametrize(
    ("allowed", "return_to", "ok"),
    [
        ([BYE], BYE, True),
        ([BYE], BYE + "?a=1#x", True),  # query and fragment of returnTo ignored
        ([BYE], BYE + "#frag", True),
        ([BYE], "HTTPS://APP.EXAMPLE.COM/logged-out", True),  # scheme and host: any case
        ([BYE], "https://app.example.com:443/logged-out", True),  # default port
        ([BYE], "https://app.example.com/Logged-Out", False),  # path: case-sensitive
        ([BYE], "https://app.example.com/logged-out/more", False),
        ([BYE], "https://app.example.com/", False),
        ([BYE], "https://app.example.com:8443/logged-out", False),
        ([BYE], "http://app.example.com/logged-out", False),
        ([BYE], "https://evil.example", False),  # SE-05
        ([BYE], "https://app.example.com.evil.example/logged-out", False),
        ([BYE], "https://app.example.com@evil.example/logged-out", False),
        ([BYE], "https://evil.example\\@app.example.com/logged-out", False),
        ([BYE], "//evil.example/logged-out", False),
        ([BYE], "/logged-out", False),
        ([BYE], "javascript:alert(1)//app.example.com/logged-out", False),
        ([BYE], "", False),
        ([], BYE, False),
        (["http://localhost:3000"], "http://localhost:3000/", True),
        (["http://localhost:3000/"], "http://localhost:3000", True),
        (["http://localhost:3000"], "http://localhost:3001", False),
        (["https://*.example.com/bye"], "https://a.example.com/bye?x=1", True),
        (["https://*.example.com/bye"], "https://example.com/bye", False),
        (["https://*.example.com/bye"], "https://a.b.example.com/bye", False),
        (["*"], "https://evil.example/", False),
        (["https://app.example.com/bye?k=v"], "https://app.example.com/bye", True),
        (["https://app.example.com/bye#f"], "https://app.example.com/bye", False),
        (["com.example.app://logout"], "com.example.app://logout", True),
    ],
)
def test_logout_url_allowed(allowed: list[str], return_to: str, ok: bool) -> None:
    assert logout_url_allowed(return_to, allowed) is ok


@pytest.mark.parametrize(
    ("return_to", "ok"),
    [
        ("https://app.example.com/bye", True),
        ("https://app.example.com/bye?foo=bar", False),  # CS query-added-to-post-logout-uri
        ("https://app.example.com/bye#x", True),
    ],
)
def test_oidc_logout_keeps_the_query(return_to: str, ok: bool) -> None:
    allowed = ["https://app.example.com/bye"]
    assert logout_url_allowed(return_to, allowed, ignore_query=False) is ok


# --- building the redirect (contract §2.3) ---------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "params", "mode", "location"),
    [
        (CB, {"code": "abc", "state": "s1"}, "query", CB + "?code=abc&state=s1"),
        (
            "https://app.example/cb?x=1",
            {"code": "abc", "state": "s1"},
            "query",
            "https://app.example/cb?x=1&code=abc&state=s1",
        ),  # AZ-03: x=1 kept
        (CB + "?", {"code": "abc"}, "query", CB + "?code=abc"),
        (CB + "?x=1&", {"code": "abc"}, "query", CB + "?x=1&code=abc"),
        (CB, {"code": "abc", "state": None}, "query", CB + "?code=abc"),  # AZ-18: no state
        (CB, {}, "query", CB),
        (
            CB,
            {"error": "login_required", "error_description": "Login required", "state": "s"},
            "query",
            CB + "?error=login_required&error_description=Login%20required&state=s",
        ),
        (
            CB,
            {"access_token": "t", "token_type": "Bearer", "expires_in": 7200, "state": "s"},
            "fragment",
            CB + "#access_token=t&token_type=Bearer&expires_in=7200&state=s",
        ),
        (
            "https://app.example/cb?x=1",
            {"id_token": "j"},
            "fragment",
            "https://app.example/cb?x=1#id_token=j",
        ),
    ],
)
def test_append_params(
    uri: str, params: dict[str, str | int | None], mode: str, location: str
) -> None:
    assert append_params(uri, params, mode) == location  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "state",
    ["a+b", "a%2Bb", "a&b=c", "with space", "näive ✓", "x" * 4096, "=", "?#/"],
)
def test_state_round_trips_byte_exact(state: str) -> None:
    location = append_params("https://app.example/cb?x=1", {"code": "c", "state": state})
    query = parse_qs(urlsplit(location).query, keep_blank_values=True)
    assert query == {"x": ["1"], "code": ["c"], "state": [state]}
    fragment = append_params(CB, {"state": state}, "fragment")
    assert parse_qs(urlsplit(fragment).fragment) == {"state": [state]}


def test_append_params_refuses_a_fragment() -> None:
    with pytest.raises(ValueError, match="fragment"):
        append_params(CB + "#x", {"code": "c"})


# --- registration (AZ-05) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        CB,
        "https://app.example/cb?x=1",
        "http://localhost:3000/callback",
        "http://app.localhost:3000",
        "http://127.0.0.1/cb",
        "http://[::1]:8080/cb",
        "com.example.app://callback",
        "com.example.app:/oauth2redirect",
        WILD,
        PREFIX,
    ],
)
def test_callback_url_accepted(uri: str) -> None:
    assert callback_url_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("https://app.example/cb#x", "fragment"),
        ("javascript:alert(1)", "javascript"),
        ("JAVASCRIPT:alert(1)", "javascript"),
        ("data:text/html,<script>1</script>", "data"),
        ("vbscript:msgbox", "vbscript"),
        ("http://app.example/cb", "https"),
        ("http://10.0.0.5/cb", "https"),
        ("https://*.com/cb", "left-most"),
        ("https://a.*.example.com/cb", "left-most"),
        ("https://*.*.example.com/cb", "left-most"),
        ("https://app.example/*", "left-most"),
        ("https://*", "left-most"),
        ("com.example.app://*.example.com", "http or https"),
        ("/cb", "absolute"),
        ("app.example/cb", "absolute"),
        ("https://user@app.example/cb", "user information"),
        ("https://app.example/c b", "printable"),
        ("", "printable"),
    ],
)
def test_callback_url_refused(uri: str, problem: str) -> None:
    found = callback_url_problem(uri)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("[::1]", True),
        ("localhost.evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("10.0.0.1", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
