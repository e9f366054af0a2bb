"""CORS on /oauth/token and /oauth/revoke (contract §0.3; security IN-04): the SPA's preflight
and POST, for an origin one of the clients allows, and only the requesting client's origins."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from tests.http.token_helpers import (
    CALLBACK,
    SPA_ORIGIN,
    VERIFIER,
    Tenant,
    make_code,
    prepared_tenant_fixtures,
    spa_login,
)

EVIL = "https://evil.example"
PREFLIGHT = {
    "access-control-request-method": "POST",
    "access-control-request-headers": "auth0-client,content-type",
}


prepared, database_url, tenant = prepared_tenant_fixtures()


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke"])
@pytest.mark.parametrize(
    "origin",
    [SPA_ORIGIN, "https://web.example"],  # web origins, and origins of callback URLs
)
async def test_preflight_for_an_allowed_origin(
    http: httpx.AsyncClient, path: str, origin: str
) -> None:
    r = await http.options(path, headers={"origin": origin, **PREFLIGHT})
    assert r.status_code == 204
    assert r.content == b""
    assert {k: v for k, v in r.headers.items() if k.startswith("access-control")} == {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": "Content-Type, Auth0-Client, DPoP",
        "access-control-max-age": "600",
    }
    assert r.headers["vary"] == "Origin"


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke"])
@pytest.mark.parametrize(
    "origin", [EVIL, "null", SPA_ORIGIN + ".evil.example", "http://app.example"]
)
async def test_preflight_for_another_origin(
    http: httpx.AsyncClient, path: str, origin: str
) -> None:
    r = await http.options(path, headers={"origin": origin, **PREFLIGHT})
    assert r.status_code == 204
    assert not [k for k in r.headers if k.startswith("access-control")]
    assert r.headers["vary"] == "Origin"


async def test_post_answers_carry_cors_for_the_clients_origin(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    origin = {"origin": SPA_ORIGIN}
    body = await spa_login(http, app, tenant, headers=origin)
    refused = await http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": tenant.spa.client_id,
            "refresh_token": "x",
        },
        headers=origin,
    )
    revoked = await http.post(
        "/oauth/revoke",
        data={"client_id": tenant.spa.client_id, "token": body["refresh_token"]},
        headers=origin,
    )
    for r in (refused, revoked):
        assert r.headers["access-control-allow-origin"] == SPA_ORIGIN
        assert r.headers["vary"] == "Origin"
    # Error bodies are readable by the page: spa-js needs error and error_description.
    assert refused.status_code == 403 and revoked.status_code == 200


async def test_success_carries_cors(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.user)
    r = await http.post(
        "/oauth/token",
        data={
            "client_id": tenant.spa.client_id,
            "code_verifier": VERIFIER,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
        },
        headers={"origin": SPA_ORIGIN, "auth0-client": "eyJuYW1lIjoiYXV0aDAtc3BhLWpzIn0="},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SPA_ORIGIN


@pytest.mark.parametrize(
    ("origin", "client_field"),
    [
        (EVIL, "spa"),  # not the SPA's origin
        (SPA_ORIGIN, "m2m"),  # an origin of another client, not of this one
        (SPA_ORIGIN, "nobody"),  # no such client
    ],
)
async def test_post_without_cors(
    http: httpx.AsyncClient, tenant: Tenant, origin: str, client_field: str
) -> None:
    client_id = {"spa": tenant.spa.client_id, "m2m": tenant.m2m.client_id}.get(client_field, "x")
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "m"},
        headers={"origin": origin},
    )
    assert r.status_code in (401, 403)
    assert "access-control-allow-origin" not in r.headers
    assert r.headers["vary"] == "Origin"


async def test_no_origin_no_cors_headers(http: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": tenant.spa.client_id,
            "refresh_token": "x",
        },
    )
    assert "access-control-allow-origin" not in r.headers and "vary" not in r.headers
