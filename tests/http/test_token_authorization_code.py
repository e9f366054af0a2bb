"""POST /oauth/token, grant_type=authorization_code (contract §3.2, §4; security CD-01, CD-03,
CD-05, CD-07, PK-03, PK-04, RT-11, OI-01, OI-03)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from keystead.core.clients import RefreshTokenPolicy
from keystead.core.clock import FixedClock
from tests.conftest import ISSUER
from tests.http.token_helpers import (
    API,
    CALLBACK,
    MGMT,
    USERINFO,
    VERIFIER,
    Tenant,
    assert_token_headers,
    claims,
    clocked_app_fixture,
    header,
    live_refresh_tokens,
    logs,
    make_code,
    postgres_app,
    prepared_tenant_fixtures,
    state_of,
)

prepared, database_url, tenant = prepared_tenant_fixtures()
app = clocked_app_fixture()


def spa_exchange(tenant: Tenant, code: str, **extra: str) -> dict[str, str]:
    """Exactly what spa-js posts after handleRedirectCallback() (contract §13.1)."""
    return {
        "client_id": tenant.spa.client_id,
        "code_verifier": VERIFIER,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        **extra,
    }


async def test_spa_code_exchange(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, clock: FixedClock
) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.user)
    r = await http.post("/oauth/token", data=spa_exchange(tenant, code))
    assert r.status_code == 200
    assert_token_headers(r)
    body = r.json()
    assert list(body) == [
        "access_token",
        "refresh_token",
        "id_token",
        "scope",
        "expires_in",
        "token_type",
    ]
    assert body["scope"] == "openid profile email offline_access"
    assert body["expires_in"] == 86_400 and body["token_type"] == "Bearer"
    now = int(clock.now())
    # No audience: a JWT for /userinfo only, never opaque (contract §3.8).
    assert claims(app, body["access_token"], USERINFO) == {
        "iss": ISSUER,
        "sub": tenant.user.user_id,
        "aud": USERINFO,
        "azp": tenant.spa.client_id,
        "iat": now,
        "exp": now + 86_400,
        "scope": "openid profile email offline_access",
    }
    assert header(body["id_token"])["alg"] == "RS256"
    assert claims(app, body["id_token"], tenant.spa.client_id) == {
        "name": "Alice",
        "nickname": "alice",
        "updated_at": claims(app, body["id_token"])["updated_at"],
        "email": "alice@example.com",
        "email_verified": True,
        "iss": ISSUER,
        "sub": tenant.user.user_id,
        "aud": tenant.spa.client_id,
        "iat": now,
        "exp": now + 600,
        "auth_time": now - 5,
        "nonce": "n-0S6_WzA2Mj",
        "sid": "sid-1",
    }
    assert len(body["refresh_token"]) >= 43 and body["refresh_token"] != body["access_token"]
    (event,) = await logs(app, "seacft")
    assert event.user_id == tenant.user.user_id and event.client_id == tenant.spa.client_id


@pytest.mark.parametrize(
    ("audience", "scope", "aud", "expires_in"),
    [
        (API, "openid read:messages", [API, USERINFO], 3600),
        (API, "read:messages", API, 3600),
        (MGMT, "openid read:current_user", [MGMT, USERINFO], 86_400),
    ],
)
async def test_audience(
    http: httpx.AsyncClient,
    app: Starlette,
    tenant: Tenant,
    audience: str,
    scope: str,
    aud: Any,
    expires_in: int,
) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.user, scope=scope, audience=audience)
    r = await http.post("/oauth/token", data=spa_exchange(tenant, code))
    assert r.status_code == 200
    body = r.json()
    assert body["expires_in"] == expires_in and body["scope"] == scope
    assert claims(app, body["access_token"], audience)["aud"] == aud
    assert ("id_token" in body) == scope.startswith("openid")
    assert "refresh_token" not in body


async def test_confidential_client_json_without_pkce(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    code = await make_code(
        app,
        client=tenant.web,
        user=tenant.user,
        scope="openid",
        redirect_uri="https://web.example/cb",
        verifier=None,
    )
    r = await http.post(
        "/oauth/token",
        json={
            "client_id": tenant.web.client_id,
            "client_secret": "web-secret: with % and +",
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": "https://web.example/cb",
        },
    )
    assert r.status_code == 200
    assert set(r.json()) == {"access_token", "id_token", "scope", "expires_in", "token_type"}


async def test_code_replay_is_refused_and_revokes_what_it_gave(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.user)
    first = await http.post("/oauth/token", data=spa_exchange(tenant, code))
    assert first.status_code == 200 and await live_refresh_tokens(app) == 1
    second = await http.post("/oauth/token", data=spa_exchange(tenant, code))
    assert second.status_code == 403
    assert_token_headers(second)
    assert second.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid authorization code",
    }
    assert await live_refresh_tokens(app) == 0  # RFC 6749 §4.1.2
    refresh = await http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": tenant.spa.client_id,
            "refresh_token": first.json()["refresh_token"],
        },
    )
    assert refresh.status_code == 403
    assert sorted(e.type for e in await logs(app, "seacft", "feacft")) == ["feacft", "seacft"]


async def test_two_simultaneous_exchanges_give_one_success(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.user)
    responses = await asyncio.gather(
        *(http.post("/oauth/token", data=spa_exchange(tenant, code)) for _ in range(2))
    )
    assert sorted(r.status_code for r in responses) == [200, 403]


async def test_two_simultaneous_exchanges_on_postgresql(tmp_path: Path) -> None:
    async with postgres_app(tmp_path) as (app, http, tenant):
        code = await make_code(app, client=tenant.spa, user=tenant.user)
        responses = await asyncio.gather(
            *(http.post("/oauth/token", data=spa_exchange(tenant, code)) for _ in range(3))
        )
        assert sorted(r.status_code for r in responses) == [200, 403, 403]
        assert await live_refresh_tokens(app) == 0  # the replays revoked what the winner got


CODE_REFUSALS: list[tuple[dict[str, Any], int, dict[str, str]]] = [
    (
        {"code_verifier": "w" * 43},
        403,
        {"error": "invalid_grant", "error_description": "Failed to verify code verifier"},
    ),
    (
        {"code_verifier": ""},
        403,
        {
            "error": "invalid_grant",
            "error_description": "Missing required parameter: code_verifier",
        },
    ),
    (
        {"redirect_uri": CALLBACK + "/other"},
        403,
        {
            "error": "invalid_grant",
            "error_description": "redirect_uri must be the one sent to /authorize",
        },
    ),
    (
        {"code": "not-a-code"},
        403,
        {"error": "invalid_grant", "error_description": "Invalid authorization code"},
    ),
    (
        {"code": ""},
        400,
        {"error": "invalid_request", "error_description": "Missing required parameter: code"},
    ),
]


@pytest.mark.parametrize(("change", "status", "body"), CODE_REFUSALS)
async def test_refusals_leave_the_code_usable(
    http: httpx.AsyncClient,
    app: Starlette,
    tenant: Tenant,
    change: dict[str, str],
    status: int,
    body: dict[str, str],
) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.user)
    r = await http.post("/oauth/token", data={**spa_exchange(tenant, code), **change})
    assert (r.status_code, r.json()) == (status, body)
    assert_token_headers(r)
    assert await live_refresh_tokens(app) == 0  # G3: nothing issued
    again = await http.post("/oauth/token", data=spa_exchange(tenant, code))
    assert again.status_code == 200


async def test_code_of_another_client(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.user, verifier=None)
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": tenant.web.client_id,
            "client_secret": "web-secret: with % and +",
            "code": code,
            "redirect_uri": CALLBACK,
        },
    )
    assert r.status_code == 403
    assert r.json()["error_description"] == "Invalid authorization code"


async def test_expired_code(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, clock: FixedClock
) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.user)
    clock.advance(61)
    r = await http.post("/oauth/token", data=spa_exchange(tenant, code))
    assert r.status_code == 403
    assert r.json()["error_description"] == "Invalid authorization code"


async def test_blocked_user(http: httpx.AsyncClient, app: Starlette, tenant: Tenant) -> None:
    code = await make_code(app, client=tenant.spa, user=tenant.blocked)
    r = await http.post("/oauth/token", data=spa_exchange(tenant, code))
    assert r.status_code == 403
    assert r.json() == {"error": "invalid_grant", "error_description": "user is blocked"}


async def test_spa_without_rotation_gets_no_refresh_token(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).clients.update(
            replace(tenant.spa, refresh_token=RefreshTokenPolicy(rotation_type="non-rotating"))
        )
    code = await make_code(app, client=tenant.spa, user=tenant.user)
    r = await http.post("/oauth/token", data=spa_exchange(tenant, code))
    assert r.status_code == 200
    assert "refresh_token" not in r.json()  # RT-11
    assert await live_refresh_tokens(app) == 0
