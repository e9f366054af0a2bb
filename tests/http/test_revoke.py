"""POST /oauth/revoke (contract §7.1, §13.1, §13.2; security RT-07, G3, G4)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.http.token_helpers import (
    Tenant,
    basic,
    live_refresh_tokens,
    logs,
    make_code,
    prepared_tenant_fixtures,
    spa_login,
)

WEB_SECRET = "web-secret: with % and +"
INVALID = {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}


prepared, database_url, tenant = prepared_tenant_fixtures()


def refresh(tenant: Tenant, token: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": tenant.spa.client_id,
        "refresh_token": token,
    }


def spa_revoke(tenant: Tenant, token: str) -> dict[str, str]:
    """spa-js revokeRefreshToken() (contract §13.1)."""
    return {"client_id": tenant.spa.client_id, "token_type_hint": "refresh_token", "token": token}


async def test_spa_revokes_its_token_and_the_family(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    first = await spa_login(http, app, tenant)
    rotated = await http.post("/oauth/token", data=refresh(tenant, first["refresh_token"]))
    current = rotated.json()["refresh_token"]
    r = await http.post("/oauth/revoke", data=spa_revoke(tenant, current))
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["cache-control"] == "no-store"
    for token in (current, first["refresh_token"]):
        after = await http.post("/oauth/token", data=refresh(tenant, token))
        assert (after.status_code, after.json()) == (403, INVALID)
    assert await live_refresh_tokens(app) == 0
    (event,) = await logs(app, "srrt")
    assert (event.user_id, event.client_id) == (tenant.user.user_id, tenant.spa.client_id)
    assert current not in repr(event)


async def test_other_logins_keep_their_tokens(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    laptop = await spa_login(http, app, tenant)
    phone = await spa_login(http, app, tenant)
    await http.post("/oauth/revoke", data=spa_revoke(tenant, laptop["refresh_token"]))
    r = await http.post("/oauth/token", data=refresh(tenant, phone["refresh_token"]))
    assert r.status_code == 200


@pytest.mark.parametrize("token", ["x" * 43, "y" * 5000])
async def test_unknown_token_is_fine(http: httpx.AsyncClient, tenant: Tenant, token: str) -> None:
    r = await http.post("/oauth/revoke", data=spa_revoke(tenant, token))
    assert (r.status_code, r.content) == (200, b"")  # RFC 7009 §2.2


async def test_twice_is_fine(http: httpx.AsyncClient, app: Starlette, tenant: Tenant) -> None:
    token = (await spa_login(http, app, tenant))["refresh_token"]
    for _ in range(2):
        r = await http.post("/oauth/revoke", data=spa_revoke(tenant, token))
        assert r.status_code == 200
    assert len(await logs(app, "srrt")) == 1


async def test_confidential_client_json(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    code = await make_code(
        app,
        client=tenant.web,
        user=tenant.user,
        scope="openid offline_access",
        redirect_uri="https://web.example/cb",
        verifier=None,
    )
    auth = {"client_id": tenant.web.client_id, "client_secret": WEB_SECRET}
    token = (
        await http.post(
            "/oauth/token",
            data={
                **auth,
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "https://web.example/cb",
            },
        )
    ).json()["refresh_token"]
    wrong = await http.post("/oauth/revoke", json={**auth, "client_secret": "no", "token": token})
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"error": "invalid_client", "error_description": "Unauthorized"},
    )
    basic_wrong = await http.post(
        "/oauth/revoke", data={"token": token}, headers=basic(tenant.web.client_id, "no")
    )
    assert basic_wrong.status_code == 401
    assert basic_wrong.headers["www-authenticate"].startswith("Basic ")
    assert await live_refresh_tokens(app) == 1  # G3: refused, nothing changed
    # auth0-python RevokeToken.revoke_refresh_token (contract §13.2).
    r = await http.post("/oauth/revoke", json={**auth, "token": token})
    assert r.status_code == 200
    assert await live_refresh_tokens(app) == 0


async def test_another_client_is_refused(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    token = (await spa_login(http, app, tenant))["refresh_token"]
    r = await http.post(
        "/oauth/revoke",
        data={"client_id": tenant.web.client_id, "client_secret": WEB_SECRET, "token": token},
    )
    assert (r.status_code, r.json()) == (
        403,
        {
            "error": "invalid_grant",
            "error_description": "The refresh token was not issued to this client",
        },
    )
    still = await http.post("/oauth/token", data=refresh(tenant, token))  # RT-07
    assert still.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "answer"),
    [
        (
            {"client_id": "SpaClient00000000000000000000001"},
            400,
            {"error": "invalid_request", "error_description": "Missing required parameter: token"},
        ),
        (
            {"client_id": "SpaClient00000000000000000000001", "token": ""},
            400,
            {"error": "invalid_request", "error_description": "Missing required parameter: token"},
        ),
        (
            {"token": "x"},
            400,
            {
                "error": "invalid_request",
                "error_description": "Missing required parameter: client_id",
            },
        ),
        (
            {"client_id": "nobody", "token": "x"},
            401,
            {"error": "invalid_client", "error_description": "Unauthorized"},
        ),
        (
            {"client_id": "SpaClient00000000000000000000001", "token": ["x"]},
            400,
            {
                "error": "invalid_request",
                "error_description": "Invalid parameter: token must be a string",
            },
        ),
    ],
)
async def test_refusals(
    http: httpx.AsyncClient, body: dict[str, Any], status: int, answer: dict[str, str]
) -> None:
    r = await http.post("/oauth/revoke", json=body)
    assert (r.status_code, r.json()) == (status, answer)
    assert r.headers["cache-control"] == "no-store"


async def test_malformed_json(http: httpx.AsyncClient) -> None:
    r = await http.post("/oauth/revoke", content=b"{", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
