"""CORS origin rules and headers (contract §0.3, §2.3, §16 item 6; security cases AZ-21, IN-04)."""

from __future__ import annotations

import pytest

from keystead.core.clients import Client
from keystead.core.cors import (
    API_ALLOW_HEADERS,
    PUBLIC_CORS,
    RATE_LIMIT_HEADERS,
    TOKEN_ALLOW_HEADERS,
    TOKEN_ALLOW_METHODS,
    allowed_origin,
    client_origins,
    cors_headers,
    origin_matches,
    origin_of,
    preflight_headers,
    web_message_allowed,
)

SPA = Client(
    client_id="spa",
    name="SPA",
    app_type="spa",
    token_endpoint_auth_method="none",
    callbacks=("http://localhost:3000/callback", "https://*.preview.example.com/cb"),
    web_origins=("https://app.example.com",),
    allowed_origins=("https://admin.example.com:8443/",),
)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://app.example.com/cb?x=1", "https://app.example.com"),
        ("HTTPS://App.Example.COM/", "https://app.example.com"),
        ("https://app.example.com:443/x", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("https://app.example.com:8443/x", "https://app.example.com:8443"),
        ("http://localhost:3000/callback", "http://localhost:3000"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("https://*.example.com/cb", "https://*.example.com"),
        ("com.example.app://callback", None),
        ("javascript:alert(1)", None),
        ("https://user@app.example.com/", None),
        ("not a url", None),
    ],
)
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_client_origins_include_callback_origins() -> None:
    assert client_origins(SPA) == (
        "https://app.example.com",
        "https://admin.example.com:8443",
        "http://localhost:3000",
        "https://*.preview.example.com",
    )


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),  # web_origins
        ("https://APP.example.com", True),
        ("https://app.example.com:443", True),
        ("https://admin.example.com:8443", True),  # allowed_origins
        ("http://localhost:3000", True),  # from a callback URL
        ("https://pr-1.preview.example.com", True),  # wildcard callback
        ("https://preview.example.com", False),
        ("https://a.b.preview.example.com", False),
        ("http://app.example.com", False),  # scheme differs
        ("https://app.example.com:8443", False),  # port differs
        ("https://admin.example.com", False),
        ("http://localhost:3001", False),
        ("https://app.example.com.evil.example", False),
        ("https://evil.example", False),
        ("null", False),  # opaque origin (sandboxed iframe, file://)
        ("", False),
        (None, False),
        ("https://app.example.com/", False),  # an Origin header never has a path
        ("https://app.example.com/cb", False),
        ("https://user@app.example.com", False),
        ("https://app.example.com\r\nX: y", False),
    ],
)
def test_allowed_origin(origin: str | None, allowed: bool) -> None:
    assert allowed_origin(origin, SPA) is allowed


@pytest.mark.parametrize(
    ("patterns", "origin", "matches"),
    [
        (["*"], "https://evil.example", False),  # a bare * never opens CORS to everyone
        (["https://*"], "https://evil.example", False),
        (["https://*.com"], "https://evil.com", False),
        ([], "https://app.example.com", False),
        (["garbage", "https://app.example.com"], "https://app.example.com", True),
    ],
)
def test_origin_matches(patterns: list[str], origin: str, matches: bool) -> None:
    assert origin_matches(origin, patterns) is matches


def test_no_client_origins_means_no_cors() -> None:
    m2m = Client(client_id="m2m", name="M2M", app_type="non_interactive")
    assert client_origins(m2m) == ()
    assert not allowed_origin("https://app.example.com", m2m)


@pytest.mark.parametrize(
    ("redirect_uri", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://app.example.com/silent?x=1", True),
        # A callback origin is not enough: web_message needs Allowed Web Origins (contract §2.3).
        ("http://localhost:3000/callback", False),
        ("https://evil.example", False),
        ("com.example.app://callback", False),
    ],
)
def test_web_message_allowed(redirect_uri: str, allowed: bool) -> None:
    assert web_message_allowed(redirect_uri, SPA) is allowed


def test_cors_headers() -> None:
    assert cors_headers("https://app.example.com") == {
        "Access-Control-Allow-Origin": "https://app.example.com",
        "Vary": "Origin",
    }
    assert cors_headers("https://app.example.com", expose=RATE_LIMIT_HEADERS) == {
        "Access-Control-Allow-Origin": "https://app.example.com",
        "Vary": "Origin",
        "Access-Control-Expose-Headers": (
            "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
        ),
    }
    with_credentials = cors_headers("https://app.example.com", credentials=True)
    assert with_credentials["Access-Control-Allow-Credentials"] == "true"


def test_token_preflight_headers() -> None:
    # Contract §0.3: spa-js sends Auth0-Client (and DPoP), so the preflight must allow them.
    headers = preflight_headers(
        "http://localhost:3000", methods=TOKEN_ALLOW_METHODS, headers=TOKEN_ALLOW_HEADERS
    )
    assert headers == {
        "Access-Control-Allow-Origin": "http://localhost:3000",
        "Vary": "Origin",
        "Access-Control-Allow-Methods": "POST",
        "Access-Control-Allow-Headers": "Content-Type, Auth0-Client, DPoP",
        "Access-Control-Max-Age": "600",
    }


def test_api_and_public_constants() -> None:
    assert "Authorization" in API_ALLOW_HEADERS
    assert dict(PUBLIC_CORS) == {"Access-Control-Allow-Origin": "*"}
