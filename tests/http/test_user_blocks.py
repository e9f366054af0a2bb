"""/api/v2/user-blocks (contract §10.9; security AT-01): brute-force blocks, listed and removed.

Blocks are made the way logins make them (ratelimit/protection.note_login_failure), without
the password hashing a real login costs. Every answer is checked against Auth0's OpenAPI.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
import pytest_asyncio

from keystead.core.ports import Connection
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.ratelimit.protection import login_verdict, note_login_failure
from keystead.ratelimit.wiring import PROTECTION, protection_policy
from tests.http.helpers import (
    check_error,
    check_oas,
    m2m,
    make_user,
    module_app,
    module_http,
    sapi_events,
    state_of,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

IP_A = "198.51.100.7"
IP_B = "2001:db8::1"
READ = "read:users"
UPDATE = "update:users"


@pytest_asyncio.fixture(loop_scope="module")
async def user(app: Any) -> User:
    """A new user per test, with an email and a username."""
    tag = secrets.token_hex(4)
    return await make_user(app, email=f"Ada.{tag}@Example.com", username=f"ada_{tag}")


async def block(app: Any, identifier: str, ip: str, user: User | None, times: int = 10) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        connection = await state.repos(session).connections.by_name(DATABASE_CONNECTION)
        assert isinstance(connection, Connection)
        for _ in range(times):
            await note_login_failure(
                state,
                session,
                ip=ip,
                username=identifier,
                connection=connection,
                user=user,
                client_id=None,
            )


async def blocked_for(http: httpx.AsyncClient, app: Any, identifier: str) -> Any:
    r = await http.get(
        "/api/v2/user-blocks", params={"identifier": identifier}, headers=m2m(app, READ)
    )
    assert r.status_code == 200, r.text
    return check_oas(r, "GET", "/user-blocks")


async def test_no_blocks(http: httpx.AsyncClient, app: Any, user: User) -> None:
    assert await blocked_for(http, app, user.email or "") == {"blocked_for": []}


async def test_blocks_by_identifier(http: httpx.AsyncClient, app: Any, user: User) -> None:
    email = (user.email or "").lower()
    await block(app, email, IP_A, user)
    await block(app, email, IP_B, user)
    await block(app, email, "192.0.2.1", user, times=9)  # still counting: not a block
    expected = {
        "blocked_for": [
            {"identifier": email, "ip": IP_A, "connection": DATABASE_CONNECTION},
            {"identifier": email, "ip": IP_B, "connection": DATABASE_CONNECTION},
        ]
    }
    assert await blocked_for(http, app, email) == expected
    assert await blocked_for(http, app, user.email or "") == expected  # case-insensitive


async def test_blocks_by_user_id_cover_every_identifier(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    await block(app, user.username or "", IP_A, user)
    await block(app, (user.email or "").upper(), IP_B, user)
    r = await http.get(f"/api/v2/user-blocks/{user.user_id}", headers=m2m(app, READ))
    assert r.status_code == 200
    body = check_oas(r, "GET", "/user-blocks/{id}")
    assert sorted((b["identifier"], b["ip"]) for b in body["blocked_for"]) == sorted(
        [(user.username, IP_A), ((user.email or "").lower(), IP_B)]
    )


async def test_unblock_by_identifier(http: httpx.AsyncClient, app: Any, user: User) -> None:
    email = user.email or ""
    await block(app, email, IP_A, user)
    state = state_of(app)
    assert not (await login_verdict(state, IP_A, email)).allowed
    before = len(await sapi_events(app))
    r = await http.delete(
        "/api/v2/user-blocks", params={"identifier": email}, headers=m2m(app, UPDATE)
    )
    assert r.status_code == 204
    check_oas(r, "DELETE", "/user-blocks")
    assert await blocked_for(http, app, email) == {"blocked_for": []}
    assert (await login_verdict(state, IP_A, email)).allowed
    events = await sapi_events(app)
    assert len(events) == before + 1
    assert events[0].description == "Unblock a user (brute-force protection)"
    # Nothing left to unblock: still 204, and no second audit event.
    r = await http.delete(
        "/api/v2/user-blocks", params={"identifier": email}, headers=m2m(app, UPDATE)
    )
    assert r.status_code == 204
    assert len(await sapi_events(app)) == before + 1


async def test_unblock_by_user_id(http: httpx.AsyncClient, app: Any, user: User) -> None:
    await block(app, user.username or "", IP_A, user)
    await block(app, user.email or "", IP_B, user)
    r = await http.delete(f"/api/v2/user-blocks/{user.user_id}", headers=m2m(app, UPDATE))
    assert r.status_code == 204
    check_oas(r, "DELETE", "/user-blocks/{id}")
    r = await http.get(f"/api/v2/user-blocks/{user.user_id}", headers=m2m(app, READ))
    assert r.json() == {"blocked_for": []}
    assert [e.user_id for e in (await sapi_events(app))[:1]] == [user.user_id]


async def test_unknown_user_is_404(http: httpx.AsyncClient, app: Any) -> None:
    for method in ("GET", "DELETE"):
        r = await http.request(
            method, "/api/v2/user-blocks/auth0|nobody", headers=m2m(app, f"{READ} {UPDATE}")
        )
        check_error(r, 404, "The user does not exist.", "inexistent_user")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_identifier_is_required(http: httpx.AsyncClient, app: Any, method: str) -> None:
    r = await http.request(method, "/api/v2/user-blocks", headers=m2m(app, f"{READ} {UPDATE}"))
    check_error(
        r,
        400,
        "Query validation error: 'Missing required property: identifier'.",
        "invalid_query_string",
    )


@pytest.mark.parametrize(
    ("method", "path", "scope", "needed"),
    [
        ("GET", "/user-blocks", UPDATE, "read:users"),
        ("DELETE", "/user-blocks", READ, "update:users"),
        ("GET", "/user-blocks/{id}", UPDATE, "read:users"),
        ("DELETE", "/user-blocks/{id}", READ, "update:users"),
    ],
)
async def test_scopes(
    http: httpx.AsyncClient, app: Any, user: User, method: str, path: str, scope: str, needed: str
) -> None:
    url = "/api/v2" + path.replace("{id}", user.user_id)
    params = {"identifier": user.email or ""}
    r = await http.request(method, url, params=params, headers=m2m(app, scope))
    check_error(r, 403, f"Insufficient scope, expected any of: {needed}", "insufficient_scope")
    # A user's own token cannot read or lift its blocks either (no current_user scope does).
    r = await http.request(method, url, params=params, headers=user_token(app, user.user_id))
    assert r.status_code == 403


async def test_consider_brute_force_enablement(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    email = (user.email or "").lower()
    await block(app, email, IP_A, user)
    state = state_of(app)
    query = {"identifier": email, "consider_brute_force_enablement": "true"}
    r = await http.get("/api/v2/user-blocks", params=query, headers=m2m(app, READ))
    assert len(r.json()["blocked_for"]) == 1
    settings = state.settings
    try:
        state.extras[PROTECTION] = protection_policy(
            type(settings)(**{**vars(settings), "bruteforce_max_attempts": 0})
        )
        r = await http.get("/api/v2/user-blocks", params=query, headers=m2m(app, READ))
        assert r.json() == {"blocked_for": []}
    finally:
        state.extras[PROTECTION] = protection_policy(settings)
