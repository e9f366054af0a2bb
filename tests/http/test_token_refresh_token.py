"""POST /oauth/token, grant_type=refresh_token (contract §3.3; security RT-01, RT-03, RT-04,
RT-05, RT-09, RT-10, RT-11, RE-11)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from keystead.core.clients import RefreshTokenPolicy
from keystead.core.clock import FixedClock
from tests.http.token_helpers import (
    API,
    CALLBACK,
    USERINFO,
    Tenant,
    assert_token_headers,
    claims,
    clocked_app_fixture,
    live_refresh_tokens,
    logs,
    make_code,
    postgres_app,
    prepared_tenant_fixtures,
    spa_login,
    state_of,
)

INVALID = {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}
WEB_SECRET = "web-secret: with % and +"


prepared, database_url, tenant = prepared_tenant_fixtures()
app = clocked_app_fixture()


def spa_refresh(tenant: Tenant, token: str, **extra: str) -> dict[str, str]:
    """What spa-js posts with useRefreshTokens (contract §13.1): redirect_uri included."""
    return {
        "client_id": tenant.spa.client_id,
        "grant_type": "refresh_token",
        "refresh_token": token,
        "redirect_uri": CALLBACK,
        **extra,
    }


async def test_rotation(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, clock: FixedClock
) -> None:
    first = await spa_login(http, app, tenant)
    clock.advance(100)
    r = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
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
    assert body["refresh_token"] != first["refresh_token"]  # RT-01
    assert body["scope"] == "openid profile email offline_access"
    access = claims(app, body["access_token"], USERINFO)
    assert access["gty"] == "refresh_token" and access["iat"] == int(clock.now())
    # RT-10: same iss, sub, aud, azp, auth_time; a new iat.
    old_id, new_id = claims(app, first["id_token"]), claims(app, body["id_token"])
    for name in ("iss", "sub", "aud", "auth_time", "sid", "email", "name"):
        assert new_id[name] == old_id[name]
    assert new_id["iat"] == old_id["iat"] + 100
    assert "nonce" not in new_id
    # The rotated token keeps working for its successor only.
    again = await http.post("/oauth/token", data=spa_refresh(tenant, body["refresh_token"]))
    assert again.status_code == 200
    assert [e.type for e in await logs(app, "sertft")] == ["sertft", "sertft"]


async def test_reuse_after_the_leeway_revokes_the_family(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, clock: FixedClock
) -> None:
    first = await spa_login(http, app, tenant)
    rotated = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    successor = rotated.json()["refresh_token"]
    clock.advance(11)  # the SPA leeway is 10 s
    reuse = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    assert reuse.status_code == 403
    assert reuse.json() == INVALID
    assert await live_refresh_tokens(app) == 0
    # The thief's successor is dead too.
    after = await http.post("/oauth/token", data=spa_refresh(tenant, successor))
    assert (after.status_code, after.json()) == (403, INVALID)
    (ferrt,) = await logs(app, "ferrt")
    assert ferrt.user_id == tenant.user.user_id
    assert ferrt.description == "Unknown or invalid refresh token."
    assert first["refresh_token"] not in repr(ferrt)


async def test_retry_within_the_leeway_returns_the_same_pair(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, clock: FixedClock
) -> None:
    first = await spa_login(http, app, tenant)
    one = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    clock.advance(10)
    two = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    assert two.status_code == 200
    a, b = one.json(), two.json()
    assert b["refresh_token"] == a["refresh_token"] and b["access_token"] == a["access_token"]
    assert b["id_token"] == a["id_token"] and b["scope"] == a["scope"]
    assert b["expires_in"] == a["expires_in"] - 10  # the same token, 10 s older
    assert await live_refresh_tokens(app) == 2  # RT1 (rotated) and RT2; nothing new
    assert not await logs(app, "ferrt")


async def test_two_generations_back_is_reuse_even_within_the_leeway(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    first = await spa_login(http, app, tenant)
    rt1 = first["refresh_token"]
    rt2 = (await http.post("/oauth/token", data=spa_refresh(tenant, rt1))).json()["refresh_token"]
    rt3 = (await http.post("/oauth/token", data=spa_refresh(tenant, rt2))).json()["refresh_token"]
    reuse = await http.post("/oauth/token", data=spa_refresh(tenant, rt1))  # RT-03
    assert (reuse.status_code, reuse.json()) == (403, INVALID)
    after = await http.post("/oauth/token", data=spa_refresh(tenant, rt3))
    assert after.status_code == 403


async def test_parallel_refreshes_within_the_leeway(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    first = await spa_login(http, app, tenant)
    answers = await asyncio.gather(
        *(
            http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
            for _ in range(5)
        )
    )
    assert [r.status_code for r in answers] == [200] * 5  # RE-11
    assert len({r.json()["refresh_token"] for r in answers}) == 1  # one successor, kept pair
    assert await live_refresh_tokens(app) == 2


async def test_parallel_refreshes_on_postgresql(tmp_path: Path) -> None:
    async with postgres_app(tmp_path) as (app, http, tenant):
        first = await spa_login(http, app, tenant)
        token = first["refresh_token"]
        answers = await asyncio.gather(
            *(http.post("/oauth/token", data=spa_refresh(tenant, token)) for _ in range(5))
        )
        assert [r.status_code for r in answers] == [200] * 5
        assert len({r.json()["refresh_token"] for r in answers}) == 1
        assert await live_refresh_tokens(app) == 2


async def test_a_kept_answer_sealed_under_another_server_key(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    first = await spa_login(http, app, tenant)
    await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    state = state_of(app)
    state.settings = replace(state.settings, secret_key="a key set since the rotation")
    retry = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    assert (retry.status_code, retry.json()) == (403, INVALID)
    assert await live_refresh_tokens(app) == 2  # refused, but not taken for reuse
    assert not await logs(app, "ferrt")


async def test_without_leeway_a_retry_is_reuse(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        policy = replace(tenant.spa.refresh_token, leeway=0)
        await state.repos(session).clients.update(replace(tenant.spa, refresh_token=policy))
    first = await spa_login(http, app, tenant)
    one = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    assert one.status_code == 200
    two = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    assert (two.status_code, two.json()) == (403, INVALID)
    assert await live_refresh_tokens(app) == 0


async def test_idle_and_absolute_expiry(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, clock: FixedClock
) -> None:
    first = await spa_login(http, app, tenant)
    clock.advance(1_296_000)  # RT-09: the SPA's idle lifetime
    r = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    assert (r.status_code, r.json()) == (403, INVALID)
    # Used within the idle time, a family still ends at its absolute lifetime (30 days).
    token = (await spa_login(http, app, tenant))["refresh_token"]
    for _ in range(3):
        clock.advance(800_000)
        r = await http.post("/oauth/token", data=spa_refresh(tenant, token))
        assert r.status_code == 200
        token = r.json()["refresh_token"]
    clock.advance(200_000)  # 2,600,000 s after login
    r = await http.post("/oauth/token", data=spa_refresh(tenant, token))
    assert (r.status_code, r.json()) == (403, INVALID)


async def test_scope_may_only_narrow(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    first = await spa_login(
        http, app, tenant, scope="openid offline_access read:messages", audience=API
    )
    wider = await http.post(
        "/oauth/token",
        data=spa_refresh(
            tenant,
            first["refresh_token"],
            scope="openid offline_access read:messages write:messages",
        ),
    )
    assert wider.status_code == 400  # RT-05
    assert wider.json()["error"] == "invalid_scope"
    narrow = await http.post(
        "/oauth/token",
        data=spa_refresh(tenant, first["refresh_token"], scope="openid read:messages"),
    )
    assert narrow.status_code == 200
    body = narrow.json()
    assert body["scope"] == "openid read:messages"
    assert claims(app, body["access_token"], API)["scope"] == "openid read:messages"
    # The successor keeps the original grant.
    full = await http.post("/oauth/token", data=spa_refresh(tenant, body["refresh_token"]))
    assert full.json()["scope"] == "openid offline_access read:messages"


async def test_empty_scope_means_not_sent(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    first = await spa_login(http, app, tenant)
    r = await http.post(
        "/oauth/token",
        json={**spa_refresh(tenant, first["refresh_token"]), "scope": "", "audience": None},
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "openid profile email offline_access"


async def test_another_clients_token(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    first = await spa_login(http, app, tenant)
    stolen = await http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": tenant.web.client_id,
            "client_secret": WEB_SECRET,
            "refresh_token": first["refresh_token"],
        },
    )
    assert (stolen.status_code, stolen.json()) == (403, INVALID)  # RT-04
    mine = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    assert mine.status_code == 200


async def test_blocked_user(http: httpx.AsyncClient, app: Starlette, tenant: Tenant) -> None:
    first = await spa_login(http, app, tenant)
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).users.update(replace(tenant.user, blocked=True))
    r = await http.post("/oauth/token", data=spa_refresh(tenant, first["refresh_token"]))
    assert (r.status_code, r.json()) == (
        403,
        {"error": "invalid_grant", "error_description": "user is blocked"},
    )


async def test_non_rotating_confidential_client(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, clock: FixedClock
) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        policy = RefreshTokenPolicy(
            expiration_type="expiring", idle_token_lifetime=1000, infinite_idle_token_lifetime=False
        )
        await state.repos(session).clients.update(replace(tenant.web, refresh_token=policy))
    code = await make_code(
        app,
        client=tenant.web,
        user=tenant.user,
        scope="openid offline_access",
        redirect_uri="https://web.example/cb",
        verifier=None,
    )
    auth = {"client_id": tenant.web.client_id, "client_secret": WEB_SECRET}
    first = await http.post(
        "/oauth/token",
        data={
            **auth,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://web.example/cb",
        },
    )
    token = first.json()["refresh_token"]
    for _ in range(3):  # each use restarts the idle time
        clock.advance(900)
        r = await http.post(
            "/oauth/token", data={**auth, "grant_type": "refresh_token", "refresh_token": token}
        )
        assert r.status_code == 200
        assert "refresh_token" not in r.json() and "id_token" in r.json()
    unauthenticated = await http.post(
        "/oauth/token",
        data={
            "client_id": tenant.web.client_id,
            "grant_type": "refresh_token",
            "refresh_token": token,
        },
    )
    assert unauthenticated.status_code == 401  # RT-04
    clock.advance(1000)
    r = await http.post(
        "/oauth/token", data={**auth, "grant_type": "refresh_token", "refresh_token": token}
    )
    assert (r.status_code, r.json()) == (403, INVALID)


@pytest.mark.parametrize("token", ["x" * 43, "", "y" * 5000])
async def test_unknown_tokens(http: httpx.AsyncClient, tenant: Tenant, token: str) -> None:
    r = await http.post("/oauth/token", data=spa_refresh(tenant, token))
    if token:
        assert (r.status_code, r.json()) == (403, INVALID)
    else:
        assert r.status_code == 400
        assert r.json()["error_description"] == "Missing required parameter: refresh_token"
