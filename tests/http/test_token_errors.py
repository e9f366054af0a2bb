"""/oauth/token refusals shared by every grant: bodies, client authentication, grant types
(contract §0.2, §3.1, §3.9; security CL-01, CL-02, CD-07, CD-08, IN-02, IN-04, G1, G4)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.http.token_helpers import (
    API,
    Tenant,
    assert_token_headers,
    basic,
    prepared_database,
)

M2M_ID = "M2mClient00000000000000000000001"
WEB_ID = "WebClient00000000000000000000001"
SPA_ID = "SpaClient00000000000000000000001"
WEB_SECRET = "web-secret: with % and +"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON_TYPE = {"content-type": "application/json"}
CC = f"grant_type=client_credentials&client_id={M2M_ID}&client_secret=m2m-secret&audience={API}"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return prepared_database(tmp_path)[0]


def invalid_request(description: str) -> dict[str, str]:
    return {"error": "invalid_request", "error_description": description}


NOT_JSON = invalid_request("The request body is not valid JSON")

BODY_CASES: list[tuple[str, dict[str, str], bytes, int, dict[str, str]]] = [
    ("truncated JSON", JSON_TYPE, b'{"grant_type": "client_cre', 400, NOT_JSON),
    ("trailing comma", JSON_TYPE, b'{"grant_type": "client_credentials",}', 400, NOT_JSON),
    ("NaN", JSON_TYPE, b'{"grant_type": "client_credentials", "x": NaN}', 400, NOT_JSON),
    ("single quotes", JSON_TYPE, b"{'grant_type': 'client_credentials'}", 400, NOT_JSON),
    ("invalid UTF-8", JSON_TYPE, b'{"grant_type": "\xff"}', 400, NOT_JSON),
    ("UTF-8 BOM", JSON_TYPE, b'\xef\xbb\xbf{"grant_type": "x"}', 400, NOT_JSON),
    (
        "UTF-16",  # its NUL bytes meet the app-wide NUL guard (http/limits.py) first
        JSON_TYPE,
        '{"grant_type": "x"}'.encode("utf-16"),
        400,
        invalid_request("Payload validation error: 'String must not contain NUL characters'."),
    ),
    ("deep nesting", JSON_TYPE, b"[" * 100_000, 400, NOT_JSON),
    ("duplicate member", JSON_TYPE, b'{"grant_type": "a", "grant_type": "b"}', 400, NOT_JSON),
    (
        "array",
        JSON_TYPE,
        b'["grant_type"]',
        400,
        invalid_request("The request body must be a JSON object"),
    ),
    (
        "number grant_type",
        JSON_TYPE,
        b'{"grant_type": 1}',
        400,
        invalid_request("Invalid parameter: grant_type must be a string"),
    ),
    (
        "text/plain",
        {"content-type": "text/plain"},
        CC.encode(),
        400,
        invalid_request(
            "Content-Type must be application/json or application/x-www-form-urlencoded"
        ),
    ),
    (
        "multipart",
        {"content-type": "multipart/form-data; boundary=x"},
        b"--x--",
        400,
        invalid_request(
            "Content-Type must be application/json or application/x-www-form-urlencoded"
        ),
    ),
    ("empty", {}, b"", 400, invalid_request("Missing required parameter: grant_type")),
    (
        "bad percent-encoding",
        FORM,
        b"grant_type=%ff",
        400,
        invalid_request("The request body is not valid form-urlencoded UTF-8"),
    ),
    (
        "repeated parameter",
        FORM,
        (CC + "&audience=x").encode(),
        400,
        invalid_request("Parameter sent more than once: audience"),
    ),
    (
        "unknown grant",
        FORM,
        b"grant_type=urn:example:unknown",
        400,
        {
            "error": "unsupported_grant_type",
            "error_description": "Unsupported grant type: urn:example:unknown",
        },
    ),
    (
        "control characters in grant",
        FORM,
        b"grant_type=%0d%0aX-Evil:%201",
        400,
        {
            "error": "unsupported_grant_type",
            "error_description": "Unsupported grant type: ??X-Evil: 1",
        },
    ),
    (
        "no client",
        FORM,
        b"grant_type=client_credentials",
        400,
        invalid_request("Missing required parameter: client_id"),
    ),
]


@pytest.mark.parametrize(
    ("headers", "content", "status", "body"),
    [case[1:] for case in BODY_CASES],
    ids=[case[0] for case in BODY_CASES],
)
async def test_unreadable_bodies(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    content: bytes,
    status: int,
    body: dict[str, str],
) -> None:
    r = await http.post("/oauth/token", content=content, headers=headers)
    assert (r.status_code, r.json()) == (status, body)
    assert r.headers["cache-control"] == "no-store"


async def test_oversized_body(http: httpx.AsyncClient) -> None:
    r = await http.post("/oauth/token", content=b"a=" + b"b" * 2_000_000, headers=FORM)
    assert r.status_code == 413
    assert r.json()["error"] == "invalid_request"


async def test_wrong_method(http: httpx.AsyncClient) -> None:
    r = await http.get("/oauth/token")
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]


async def test_unknown_parameters_are_ignored(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": M2M_ID,
            "client_secret": "m2m-secret",
            "audience": API,
            "ui_locales": "se",
            "custom": {"nested": [1, 2, None]},
            "redirect_uri": None,
        },
    )
    assert r.status_code == 200


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


UNAUTHORIZED = {"error": "invalid_client", "error_description": "Unauthorized"}

CLIENT_AUTH_CASES: list[tuple[str, dict[str, str], dict[str, str], int, Any, bool]] = [
    # (id, form fields, headers, status, body, WWW-Authenticate expected)
    ("basic right", {}, basic(M2M_ID, "m2m-secret"), 200, None, False),
    ("basic wrong", {}, basic(M2M_ID, "wrong"), 401, UNAUTHORIZED, True),
    ("basic garbage", {}, {"Authorization": "Basic !!notbase64"}, 401, UNAUTHORIZED, True),
    ("basic no colon", {}, {"Authorization": "Basic " + b64(b"abc")}, 401, UNAUTHORIZED, True),
    ("basic unknown client", {}, basic("nobody", "x"), 401, UNAUTHORIZED, True),
    (
        "basic and body secret",
        {"client_secret": "m2m-secret"},
        basic(M2M_ID, "m2m-secret"),
        400,
        invalid_request("Use only one client authentication method"),
        False,
    ),
    (
        "basic and another client_id",
        {"client_id": WEB_ID},
        basic(M2M_ID, "m2m-secret"),
        401,
        UNAUTHORIZED,
        True,
    ),
    ("post right", {"client_id": M2M_ID, "client_secret": "m2m-secret"}, {}, 200, None, False),
    ("post wrong", {"client_id": M2M_ID, "client_secret": "nope"}, {}, 401, UNAUTHORIZED, False),
    ("post without secret", {"client_id": M2M_ID}, {}, 401, UNAUTHORIZED, False),
    ("unknown client", {"client_id": "nobody", "client_secret": "x"}, {}, 401, UNAUTHORIZED, False),
    (
        "huge client_id",
        {"client_id": "c" * 5000, "client_secret": "x"},
        {},
        401,
        UNAUTHORIZED,
        False,
    ),
    (
        "client assertion",
        {
            "client_id": M2M_ID,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "a.b.c",
        },
        {},
        401,
        UNAUTHORIZED,  # a forged assertion, and the client has no key registered anyway
        False,
    ),
]


@pytest.mark.parametrize(
    ("fields", "headers", "status", "body", "challenge"),
    [case[1:] for case in CLIENT_AUTH_CASES],
    ids=[case[0] for case in CLIENT_AUTH_CASES],
)
async def test_client_authentication(
    http: httpx.AsyncClient,
    fields: dict[str, str],
    headers: dict[str, str],
    status: int,
    body: Any,
    challenge: bool,
) -> None:
    data = {"grant_type": "client_credentials", "audience": API, **fields}
    r = await http.post("/oauth/token", data=data, headers=headers)
    assert r.status_code == status
    if body is not None:
        assert r.json() == body
    assert_token_headers(r)
    assert ("www-authenticate" in r.headers) == challenge
    if challenge:
        assert r.headers["www-authenticate"].startswith("Basic ")


async def test_basic_credentials_are_form_decoded(http: httpx.AsyncClient) -> None:
    """RFC 6749 §2.3.1: a secret holding ':', '%' and '+' works once encoded (CL-02)."""
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "alice@example.com", "password": "x"},
        headers=basic(WEB_ID, WEB_SECRET),
    )
    assert r.json()["error_description"] == "Wrong email or password."  # authenticated
    raw = {"Authorization": "Basic " + b64(f"{WEB_ID}:{WEB_SECRET}".encode())}
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "alice@example.com", "password": "x"},
        headers=raw,
    )
    assert r.status_code == 401  # "%" and "+" decode to something else: not the secret


async def test_public_client_secret_is_ignored(http: httpx.AsyncClient) -> None:
    """Contract §3.1: a public client's secret is ignored (CL-01 would refuse; contract wins)."""
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": SPA_ID,
            "client_secret": "anything",
            "refresh_token": "x" * 43,
        },
    )
    assert r.json()["error_description"] == "Unknown or invalid refresh token."


@pytest.mark.parametrize(
    "grant_type",
    ["authorization_code", "http://auth0.com/oauth/grant-type/password-realm", "password"],
)
async def test_grant_not_enabled(http: httpx.AsyncClient, grant_type: str) -> None:
    r = await http.post(
        "/oauth/token",
        data={"grant_type": grant_type, "client_id": M2M_ID, "client_secret": "m2m-secret"},
    )
    assert (r.status_code, r.json()) == (
        403,
        {
            "error": "unauthorized_client",
            "error_description": f"Grant type '{grant_type}' not allowed for the client.",
        },
    )


HOSTILE: list[Any] = [
    {"grant_type": "authorization_code", "client_id": SPA_ID, "code": {"$ne": None}},
    {"grant_type": "refresh_token", "client_id": SPA_ID, "refresh_token": 12},
    {"grant_type": "refresh_token", "client_id": SPA_ID, "refresh_token": "x", "scope": 7},
    {"grant_type": "refresh_token", "client_id": SPA_ID, "refresh_token": "x", "scope": [1]},
    {"grant_type": "client_credentials", "client_id": ["a"], "client_secret": "x"},
    {"grant_type": "client_credentials", "client_id": M2M_ID, "client_secret": "m2m-secret",
     "audience": "\u0000" * 300},
    {"grant_type": "client_credentials", "client_id": M2M_ID, "client_secret": "m2m-secret",
     "audience": "a" * 100_000},
    {"grant_type": "authorization_code", "client_id": SPA_ID, "code": "\ud800"},
    {"grant_type": "password", "client_id": WEB_ID, "client_secret": WEB_SECRET,
     "username": "a" * 10_000, "password": "b" * 10_000},
    {"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "client_id": WEB_ID,
     "client_secret": WEB_SECRET, "username": "a", "password": "b", "realm": {"x": 1}},
    {"grant_type": "client_credentials", "client_id": "\u0000", "client_secret": "x"},
]  # fmt: skip


@pytest.mark.parametrize("body", HOSTILE)
async def test_never_a_server_error(http: httpx.AsyncClient, body: Any) -> None:
    r = await http.post("/oauth/token", content=json.dumps(body).encode(), headers=JSON_TYPE)
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()) == {"error", "error_description"}
    assert r.headers["cache-control"] == "no-store"


async def test_tenant_is_prepared(tmp_path: Path) -> None:
    """The constants above name the prepared tenant's clients."""
    tenant: Tenant = prepared_database(tmp_path)[1]
    assert (tenant.m2m.client_id, tenant.web.client_id, tenant.spa.client_id) == (
        M2M_ID,
        WEB_ID,
        SPA_ID,
    )
