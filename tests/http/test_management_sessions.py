"""Sessions and refresh tokens through the Management API (contract §10.8, §9.2): Auth0's
response shapes, 404s for unknown ids, revocation that the token endpoint then honours."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from keystead.core.clients import RefreshTokenPolicy
from keystead.core.refresh_tokens import NewRefreshToken
from keystead.storage.models import RefreshTokenRow
from keystead.storage.repositories.refresh_tokens import SqlRefreshTokens
from keystead.storage.repositories.sessions import SqlLoginSessions
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    SPA,
    SPA_ORIGIN,
    check_error,
    check_oas,
    m2m,
    make_client,
    make_spa,
    make_user,
    module_app,
    module_http,
    sapi_events,
    state_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

WEB = "WebClient00000000000000000000001"
READ = "read:sessions read:refresh_tokens"
DELETE = "delete:sessions delete:refresh_tokens"
UA = "Mozilla/5.0 (X11; Linux x86_64)"


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    await make_spa(app)
    state = state_of(app)
    async with state.transaction() as session:
        spa = await state.repos(session).clients.get(SPA)
        await state.repos(session).clients.update(
            replace(
                spa,
                grant_types=("authorization_code", "refresh_token"),
                refresh_token=RefreshTokenPolicy(rotation_type="rotating"),
            )
        )
    await make_client(app, client_id=WEB, name="Web", client_secret="s")
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")


async def a_user(app: Any) -> str:
    return (await make_user(app, email=f"u{uuid.uuid4().hex[:12]}@example.com")).user_id


async def open_session(app: Any, user_id: str, ip: str | None = "203.0.113.7") -> tuple[str, str]:
    """A login session as /u/login starts it: (cookie, sid)."""
    state = state_of(app)
    async with state.transaction() as session:
        started = await SqlLoginSessions(session, state.clock).create(user_id, ip=ip, user_agent=UA)
    return started.cookie, started.session.sid


async def session_alive(app: Any, cookie: str) -> bool:
    state = state_of(app)
    async with state.transaction() as session:
        return await SqlLoginSessions(session, state.clock).get_by_cookie(cookie) is not None


async def issue_family(
    app: Any, user_id: str, client_id: str = SPA, *, rotations: int = 0, **fields: Any
) -> list[tuple[str, str]]:
    """Refresh tokens as the token endpoint stores them: (token, public id), oldest first."""
    state = state_of(app)
    family = secrets.token_hex(16)
    issued: list[tuple[str, str]] = []
    audience = fields.pop("audience", None)
    async with state.transaction() as session:
        store = SqlRefreshTokens(session, state.clock, state.sealer)
        parent: str | None = None
        for _ in range(rotations + 1):
            token = secrets.token_urlsafe(32)
            created = await store.create(
                token,
                NewRefreshToken(
                    family_id=family, client_id=client_id, user_id=user_id,
                    scope=("openid", "offline_access"), audience=audience,
                    auth_time=state.clock.now(), parent_id=parent, device_name=UA, **fields,
                ),
            )  # fmt: skip
            await session.flush()
            if issued:
                await store.rotate(issued[-1][0], now=state.clock.now(), result=None)
            parent = created.id
            issued.append((token, created.id))
    return issued


async def revoked(app: Any, ids: list[str]) -> list[bool]:
    state = state_of(app)
    async with state.transaction() as session:
        rows = await session.scalars(select(RefreshTokenRow).where(RefreshTokenRow.id.in_(ids)))
        by_id = {row.id: row.revoked_at is not None for row in rows}
    return [by_id[i] for i in ids]


async def exchange(http: Any, token: str) -> Any:
    return await http.post(
        "/oauth/token",
        data={
            "client_id": SPA,
            "grant_type": "refresh_token",
            "refresh_token": token,
            "redirect_uri": SPA_ORIGIN + "/callback",
        },
    )


def descriptions(events: list[Any], user_id: str) -> list[str]:
    return [e.description for e in events if e.user_id == user_id]


# --- sessions -----------------------------------------------------------------------------------


async def test_get_session(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    cookie, sid = await open_session(app, user_id)
    await issue_family(app, user_id, SPA, sid=sid)
    await issue_family(app, user_id, WEB, sid=sid)
    await issue_family(app, user_id, WEB)  # not under this session
    r = await http.get(f"/api/v2/sessions/{sid}", headers=m2m(app, "read:sessions"))
    assert r.status_code == 200, r.text
    body = check_oas(r, "GET", "/sessions/{id}")
    assert body["id"] == sid
    assert body["user_id"] == user_id
    assert body["device"] == {"initial_user_agent": UA, "initial_ip": "203.0.113.7"}
    assert body["clients"] == [{"client_id": SPA}, {"client_id": WEB}]
    assert body["authentication"] == {
        "methods": [{"name": "pwd", "timestamp": body["authenticated_at"]}]
    }
    for name in ("created_at", "updated_at", "idle_expires_at", "expires_at"):
        assert body[name].endswith("Z"), name
    assert body["idle_expires_at"] < body["expires_at"]
    assert cookie not in r.text


async def test_unknown_sessions(app: Any, http: Any) -> None:
    for sid in ("nope", "x" * 500, "%E2%80%AE", "..%5C.."):
        r = await http.get(f"/api/v2/sessions/{sid}", headers=m2m(app, READ))
        check_error(r, 404, "The session does not exist.")
        r = await http.post(f"/api/v2/sessions/{sid}/revoke", headers=m2m(app, DELETE))
        check_error(r, 404, "The session does not exist.")
        r = await http.delete(f"/api/v2/sessions/{sid}", headers=m2m(app, DELETE))
        assert r.status_code == 202  # Auth0's OpenAPI: accepted, known or not
        check_oas(r, "DELETE", "/sessions/{id}")


@pytest.mark.parametrize(
    ("method", "path", "scope", "expected"),
    [
        ("GET", "/sessions/x", "read:users", "read:sessions"),
        ("DELETE", "/sessions/x", "read:sessions", "delete:sessions"),
        ("POST", "/sessions/x/revoke", "read:sessions", "delete:sessions,delete:refresh_tokens"),
        ("GET", "/refresh-tokens/x", "read:sessions", "read:refresh_tokens"),
        ("DELETE", "/refresh-tokens/x", "read:refresh_tokens", "delete:refresh_tokens"),
        ("GET", "/users/auth0|x/sessions", "read:refresh_tokens", "read:sessions"),
        ("DELETE", "/users/auth0|x/refresh-tokens", "delete:sessions", "delete:refresh_tokens"),
    ],
)
async def test_scopes(app: Any, http: Any, method: str, path: str, scope: str, expected: str):
    r = await http.request(method, "/api/v2" + path, headers=m2m(app, scope))
    check_error(r, 403, f"Insufficient scope, expected any of: {expected}")


async def test_delete_session_ends_it_and_keeps_its_refresh_tokens(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    cookie, sid = await open_session(app, user_id)
    other_cookie, _ = await open_session(app, user_id)
    family = await issue_family(app, user_id, sid=sid)
    r = await http.delete(f"/api/v2/sessions/{sid}", headers=m2m(app, "delete:sessions"))
    assert r.status_code == 202, r.text
    assert r.content == b""
    assert not await session_alive(app, cookie)
    assert await session_alive(app, other_cookie)
    assert await revoked(app, [family[0][1]]) == [False]
    r = await http.get(f"/api/v2/sessions/{sid}", headers=m2m(app, READ))
    check_error(r, 404, "The session does not exist.")
    assert descriptions(await sapi_events(app), user_id) == ["Delete a session"]


async def test_revoke_session_revokes_its_refresh_tokens(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    cookie, sid = await open_session(app, user_id)
    _, other_sid = await open_session(app, user_id)
    under = await issue_family(app, user_id, sid=sid, rotations=1)
    elsewhere = await issue_family(app, user_id, sid=other_sid)
    unbound = await issue_family(app, user_id, WEB)
    first = await exchange(http, under[-1][0])
    assert first.status_code == 200, first.text
    under = await issue_family(app, user_id, sid=sid, rotations=1)
    r = await http.post(f"/api/v2/sessions/{sid}/revoke", headers=m2m(app, DELETE))
    assert r.status_code == 202, r.text
    check_oas(r, "POST", "/sessions/{id}/revoke")
    assert not await session_alive(app, cookie)
    assert await revoked(app, [i for _, i in under]) == [True, True]
    assert await revoked(app, [elsewhere[0][1], unbound[0][1]]) == [False, False]
    r = await exchange(http, under[-1][0])
    assert r.status_code == 403 and r.json()["error"] == "invalid_grant", r.text
    assert descriptions(await sapi_events(app), user_id) == ["Revoke a session"]


async def test_user_sessions_list_and_pages(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    sids = [(await open_session(app, user_id, ip=None))[1] for _ in range(3)]
    await open_session(app, await a_user(app))  # someone else's
    url = f"/api/v2/users/{user_id}/sessions"
    r = await http.get(url, headers=m2m(app, "read:sessions"))
    body = check_oas(r, "GET", "/users/{user_id}/sessions")
    assert sorted(s["id"] for s in body["sessions"]) == sorted(sids)
    assert body["next"] == ""
    assert all(s["device"] == {"initial_user_agent": UA} for s in body["sessions"])
    seen: list[str] = []
    query = "take=2"
    while True:
        r = await http.get(f"{url}?include_totals=true&{query}", headers=m2m(app, READ))
        page = check_oas(r, "GET", "/users/{user_id}/sessions")
        assert len(page["sessions"]) <= 2
        seen += [s["id"] for s in page["sessions"]]
        if not page["next"]:
            break
        query = f"take=2&from={page['next']}"
    assert seen == [s["id"] for s in body["sessions"]]
    r = await http.get(f"{url}?from=%C3%9F", headers=m2m(app, READ))
    check_error(r, 400, "Query validation error: 'Not a checkpoint from a previous answer' "
                "on property from.")  # fmt: skip


async def test_delete_user_sessions(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    cookies = [(await open_session(app, user_id))[0] for _ in range(2)]
    family = await issue_family(app, user_id)
    r = await http.delete(f"/api/v2/users/{user_id}/sessions", headers=m2m(app, DELETE))
    assert r.status_code == 202, r.text
    check_oas(r, "DELETE", "/users/{user_id}/sessions")
    assert [await session_alive(app, c) for c in cookies] == [False, False]
    assert await revoked(app, [family[0][1]]) == [False]
    r = await http.get(f"/api/v2/users/{user_id}/sessions", headers=m2m(app, READ))
    assert r.json() == {"sessions": [], "next": ""}


async def test_unknown_users(app: Any, http: Any) -> None:
    for path in ("sessions", "refresh-tokens"):
        url = f"/api/v2/users/auth0%7Cnobody/{path}"
        r = await http.get(url, headers=m2m(app, READ))
        check_error(r, 404, "The user does not exist.", "inexistent_user")
        r = await http.delete(url, headers=m2m(app, DELETE))
        check_error(r, 404, "The user does not exist.", "inexistent_user")


# --- refresh tokens -----------------------------------------------------------------------------


async def test_get_refresh_token(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    _, sid = await open_session(app, user_id)
    family = await issue_family(app, user_id, sid=sid, rotations=2)
    newest = family[-1][1]
    for _, token_id in family:  # an id read before a rotation still names the grant
        r = await http.get(f"/api/v2/refresh-tokens/{token_id}", headers=m2m(app, READ))
        assert r.status_code == 200, r.text
        body = check_oas(r, "GET", "/refresh-tokens/{id}")
        assert body["id"] == newest
        assert body["user_id"] == user_id
        assert body["client_id"] == SPA
        assert body["session_id"] == sid
        assert body["rotating"] is True
        assert body["device"] == {"initial_user_agent": UA, "last_user_agent": UA}
        assert body["resource_servers"] == [
            {"audience": ISSUER + "userinfo", "scopes": "openid offline_access"}
        ]
        assert "last_exchanged_at" in body
        for token, _ in family:
            assert token not in r.text
    plain = await issue_family(app, user_id, WEB, audience="https://api.example.com/")
    r = await http.get(f"/api/v2/refresh-tokens/{plain[0][1]}", headers=m2m(app, READ))
    body = check_oas(r, "GET", "/refresh-tokens/{id}")
    assert body["rotating"] is False
    assert body["session_id"] is None
    assert body["resource_servers"][0]["audience"] == "https://api.example.com/"
    assert "last_exchanged_at" not in body


async def test_expired_and_unknown_refresh_tokens(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    past = state_of(app).clock.now() - 1
    expired = await issue_family(app, user_id, family_expires_at=past)
    for token_id in (expired[0][1], "nope", "x" * 500, "%E2%80%AE"):
        r = await http.get(f"/api/v2/refresh-tokens/{token_id}", headers=m2m(app, READ))
        check_error(r, 404, "The refresh token does not exist.")
        r = await http.delete(f"/api/v2/refresh-tokens/{token_id}", headers=m2m(app, DELETE))
        assert r.status_code == 202
    r = await http.get(f"/api/v2/users/{user_id}/refresh-tokens", headers=m2m(app, READ))
    assert r.json() == {"tokens": [], "next": ""}
    assert descriptions(await sapi_events(app), user_id) == []


async def test_delete_refresh_token_revokes_its_family(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    family = await issue_family(app, user_id, rotations=1)
    other = await issue_family(app, user_id)
    r = await http.delete(f"/api/v2/refresh-tokens/{family[0][1]}", headers=m2m(app, DELETE))
    assert r.status_code == 202, r.text
    check_oas(r, "DELETE", "/refresh-tokens/{id}")
    assert await revoked(app, [i for _, i in family]) == [True, True]
    assert await revoked(app, [other[0][1]]) == [False]
    r = await exchange(http, family[-1][0])
    assert r.status_code == 403 and r.json()["error"] == "invalid_grant", r.text
    r = await http.get(f"/api/v2/refresh-tokens/{family[-1][1]}", headers=m2m(app, READ))
    check_error(r, 404, "The refresh token does not exist.")
    assert descriptions(await sapi_events(app), user_id) == ["Delete a refresh token"]


async def test_user_refresh_tokens_list_pages_and_delete(app: Any, http: Any) -> None:
    user_id = await a_user(app)
    families = [await issue_family(app, user_id, rotations=n % 2) for n in range(3)]
    await issue_family(app, await a_user(app))  # someone else's
    url = f"/api/v2/users/{user_id}/refresh-tokens"
    r = await http.get(url, headers=m2m(app, "read:refresh_tokens"))
    body = check_oas(r, "GET", "/users/{user_id}/refresh-tokens")
    assert sorted(t["id"] for t in body["tokens"]) == sorted(f[-1][1] for f in families)
    r = await http.get(f"{url}?take=2", headers=m2m(app, READ))
    first = check_oas(r, "GET", "/users/{user_id}/refresh-tokens")
    r = await http.get(f"{url}?take=2&from={first['next']}", headers=m2m(app, READ))
    second = check_oas(r, "GET", "/users/{user_id}/refresh-tokens")
    assert [t["id"] for t in first["tokens"] + second["tokens"]] == [
        t["id"] for t in body["tokens"]
    ]
    assert second["next"] == ""
    r = await http.delete(url, headers=m2m(app, "delete:refresh_tokens"))
    assert r.status_code == 202, r.text
    check_oas(r, "DELETE", "/users/{user_id}/refresh-tokens")
    assert all(await revoked(app, [i for f in families for _, i in f]))
    assert (await http.get(url, headers=m2m(app, READ))).json() == {"tokens": [], "next": ""}
    assert descriptions(await sapi_events(app), user_id) == ["Delete a user's refresh tokens"]
