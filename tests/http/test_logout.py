"""Logout: /v2/logout (contract §6.1) and /oidc/logout (§6.2); security SE-05, SE-07, SE-08."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.core.sessions import ABSOLUTE_LIFETIME
from keystead.core.users import User
from keystead.deps import AppState
from keystead.storage.models import LoginSessionRow
from keystead.storage.repositories.sessions import SqlLoginSessions
from tests.conftest import ISSUER
from tests.http import test_authorize as shared
from tests.http.test_authorize import (
    APP,
    SPA_ID,
    WEB_ID,
    add_client,
    add_user,
    assert_error_page,
    authorize_params,
    log_in,
    log_types,
    redirect_params,
)

app = shared.app
state = shared.state
template_database = shared.template_database

BYE = f"{APP}/bye"


@pytest.fixture
async def spa(state: AppState) -> Client:
    return await add_client(state, allowed_logout_urls=(f"{APP}/", BYE, f"{APP}/q?x=1"))


@pytest.fixture
async def user(state: AppState) -> User:
    return await add_user(state)


@pytest.fixture
async def logged_in(http: httpx.AsyncClient, spa: Client, user: User) -> str:
    """Log the browser in; returns its session cookie value."""
    await log_in(http)
    cookie = http.cookies.get("keystead_session")
    assert cookie
    return cookie


async def count_sessions(state: AppState) -> int:
    async with state.transaction() as session:
        stmt = select(func.count()).select_from(LoginSessionRow)
        return int(await session.scalar(stmt) or 0)


def cleared(response: httpx.Response) -> bool:
    """Did the response clear the session cookie?"""
    return any(
        header.startswith("keystead_session=") and "Max-Age=0" in header
        for header in response.headers.get_list("set-cookie")
    )


async def assert_logged_out(http: httpx.AsyncClient, state: AppState, old_cookie: str) -> None:
    """SE-07: the row is gone, and the old cookie, replayed, is not a session."""
    assert await count_sessions(state) == 0
    http.cookies.set("keystead_session", old_cookie, domain="keystead.test")
    r = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert redirect_params(r)["error"] == "login_required"


def id_token(state: AppState, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "auth0|x", "aud": SPA_ID, "iat": now, "exp": now + 3600}
    return str(state.keys.sign({**body, **claims}))


# --- /v2/logout ----------------------------------------------------------------------------------


async def test_logout_to_an_allowed_return_url(
    http: httpx.AsyncClient, state: AppState, logged_in: str
) -> None:
    r = await http.get(
        "/v2/logout", params={"client_id": SPA_ID, "returnTo": BYE, "auth0Client": "eyJ9"}
    )
    assert r.status_code == 302
    assert r.headers["location"] == BYE
    assert cleared(r)
    assert "slo" in await log_types(state)
    await assert_logged_out(http, state, logged_in)


async def test_return_url_query_is_ignored_when_matching(
    http: httpx.AsyncClient, logged_in: str
) -> None:
    target = f"{BYE}?from=app#top"
    r = await http.get("/v2/logout", params={"client_id": SPA_ID, "returnTo": target})
    assert r.headers["location"] == target


@pytest.mark.parametrize(
    "return_to",
    ["https://evil.example/", "https://app.example.evil.example/bye", "javascript:alert(1)",
     f"{APP}/Bye", "https://user@app.example/bye"],
)  # fmt: skip
async def test_se05_logout_never_redirects_off_the_list(
    http: httpx.AsyncClient, state: AppState, logged_in: str, return_to: str
) -> None:
    r = await http.get("/v2/logout", params={"client_id": SPA_ID, "returnTo": return_to})
    assert_error_page(r, text="Allowed Logout URLs")
    assert cleared(r)  # the session is ended anyway
    await assert_logged_out(http, state, logged_in)


async def test_no_return_url_goes_to_the_first_allowed_one(
    http: httpx.AsyncClient, state: AppState, logged_in: str
) -> None:
    r = await http.get("/v2/logout", params={"client_id": SPA_ID})
    assert r.headers["location"] == f"{APP}/"
    await assert_logged_out(http, state, logged_in)


async def test_nothing_to_return_to_shows_a_page(
    http: httpx.AsyncClient, state: AppState, logged_in: str
) -> None:
    r = await http.get("/v2/logout")
    assert r.status_code == 200
    assert "logged out" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert cleared(r)
    await assert_logged_out(http, state, logged_in)


async def test_tenant_logout_urls_without_client_id(
    http: httpx.AsyncClient, state: AppState, logged_in: str
) -> None:
    # Without client_id the client's own list does not count.
    r = await http.get("/v2/logout", params={"returnTo": BYE})
    assert_error_page(r, text="the tenant's Allowed Logout URLs")
    async with state.transaction() as session:
        await state.repos(session).tenant_settings.set(
            "allowed_logout_urls",
            ["https://home.example/"],  # type: ignore[arg-type]  # stored as given
        )
    r = await http.get("/v2/logout", params={"returnTo": "https://home.example/"})
    assert r.headers["location"] == "https://home.example/"
    r = await http.get("/v2/logout", params={"returnTo": BYE})
    assert r.status_code == 400


async def test_client_without_logout_urls(http: httpx.AsyncClient, state: AppState) -> None:
    await add_client(state, WEB_ID, public=False, allowed_logout_urls=())
    r = await http.get("/v2/logout", params={"client_id": WEB_ID})
    assert r.status_code == 200
    r = await http.get("/v2/logout", params={"client_id": WEB_ID, "returnTo": BYE})
    assert_error_page(r, text="the application's Allowed Logout URLs")


async def test_unknown_client(http: httpx.AsyncClient, state: AppState, logged_in: str) -> None:
    r = await http.get("/v2/logout", params={"client_id": "nobody", "returnTo": BYE})
    assert_error_page(r, text="Unknown client")
    await assert_logged_out(http, state, logged_in)


async def test_logout_only_ends_this_browsers_session(
    app: Any, http: httpx.AsyncClient, state: AppState, logged_in: str
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://keystead.test") as other:
        await log_in(other)
        assert await count_sessions(state) == 2
        await other.get("/v2/logout")
    assert await count_sessions(state) == 1
    r = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert "code" in redirect_params(r)


# --- /oidc/logout --------------------------------------------------------------------------------


async def test_oidc_logout_redirects_with_state(
    http: httpx.AsyncClient, state: AppState, logged_in: str
) -> None:
    hint = id_token(state)
    r = await http.get(
        "/oidc/logout",
        params={"id_token_hint": hint, "post_logout_redirect_uri": BYE, "state": "a b+c"},
    )
    assert r.status_code == 302
    parts = urlsplit(r.headers["location"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == BYE
    assert dict(parse_qsl(parts.query)) == {"state": "a b+c"}
    assert cleared(r)
    await assert_logged_out(http, state, logged_in)


async def test_oidc_logout_by_post_and_with_an_expired_hint(
    http: httpx.AsyncClient, state: AppState, logged_in: str
) -> None:
    now = int(time.time())
    hint = id_token(state, iat=now - 7200, exp=now - 3600, aud=[SPA_ID], azp=SPA_ID)
    r = await http.post(
        "/oidc/logout",
        data={"id_token_hint": hint, "client_id": SPA_ID, "post_logout_redirect_uri": BYE},
    )
    assert r.headers["location"] == BYE  # no state sent, none added
    await assert_logged_out(http, state, logged_in)


@pytest.mark.parametrize("params", [{}, {"state": "only-state"}, {"client_id": SPA_ID}])
async def test_se07_oidc_logout_without_a_redirect(
    http: httpx.AsyncClient, state: AppState, logged_in: str, params: dict[str, str]
) -> None:
    r = await http.get("/oidc/logout", params=params)
    assert r.status_code == 200 and "logged out" in r.text
    assert cleared(r)
    await assert_logged_out(http, state, logged_in)


def _foreign(state: AppState, claims: dict[str, Any]) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": state.keys.current.kid})


@pytest.mark.parametrize("kind", ["none", "foreign", "other-client", "garbage", "altered"])
async def test_se08_bad_id_token_hint_gets_no_redirect(
    http: httpx.AsyncClient, state: AppState, logged_in: str, kind: str
) -> None:
    await add_client(state, WEB_ID, public=False, allowed_logout_urls=(BYE,))
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "auth0|x", "aud": SPA_ID, "iat": now, "exp": now + 60}
    kid = state.keys.current.kid
    params = {"post_logout_redirect_uri": BYE}
    if kind == "none":
        params["id_token_hint"] = jwt.encode(
            claims,
            None,  # type: ignore[arg-type]  # alg "none" takes no key
            algorithm="none",
            headers={"kid": kid},
        )
    elif kind == "foreign":
        params["id_token_hint"] = _foreign(state, claims)
    elif kind == "other-client":  # issued to the SPA, presented for the web app
        params["id_token_hint"] = id_token(state)
        params["client_id"] = WEB_ID
    elif kind == "garbage":
        params["id_token_hint"] = "not.a.token"
    else:
        header, _, signature = id_token(state).split(".")
        body = jwt.utils.base64url_encode(b'{"iss":"%s","aud":"%s","exp":9999999999}' % (
            ISSUER.encode(), WEB_ID.encode()
        )).decode()  # fmt: skip
        params["id_token_hint"] = f"{header}.{body}.{signature}"
    r = await http.get("/oidc/logout", params=params)
    assert_error_page(r, text="id_token_hint is not valid")
    assert await count_sessions(state) == 1  # a forged request logs nobody out


async def test_se08_redirect_needs_an_id_token_hint(
    http: httpx.AsyncClient, state: AppState, logged_in: str
) -> None:
    r = await http.get(
        "/oidc/logout", params={"client_id": SPA_ID, "post_logout_redirect_uri": BYE}
    )
    assert_error_page(r, text="requires a valid id_token_hint")


@pytest.mark.parametrize(
    "uri", [f"{BYE}?foo=bar", f"{APP}/q?x=2", f"{APP}/q", "https://evil.example/", f"{BYE}#x"]
)
async def test_se05_post_logout_redirect_uri_must_match_exactly(
    http: httpx.AsyncClient, state: AppState, logged_in: str, uri: str
) -> None:
    r = await http.get(
        "/oidc/logout", params={"id_token_hint": id_token(state), "post_logout_redirect_uri": uri}
    )
    assert_error_page(r, text="Allowed Logout URLs")
    # The exact registered URI, query included, is fine.
    r = await http.get(
        "/oidc/logout",
        params={"id_token_hint": id_token(state), "post_logout_redirect_uri": f"{APP}/q?x=1"},
    )
    assert r.headers["location"] == f"{APP}/q?x=1"


async def test_sessions_end_for_a_user_and_expire(state: AppState, user: User) -> None:
    clock = FixedClock()
    async with state.transaction() as session:
        sessions = SqlLoginSessions(session, clock)
        first = await sessions.create(user.user_id, ip="203.0.113.9", user_agent="UA")
        second = await sessions.create(user.user_id)
        found = await sessions.get_by_cookie(first.cookie)
        assert found == first.session and found.ip == "203.0.113.9"
        assert await sessions.get_by_cookie("not-a-session") is None
        assert await sessions.get_by_cookie("x" * 5000) is None
        clock.advance(ABSOLUTE_LIFETIME)
        assert await sessions.get_by_cookie(second.cookie) is None  # expired
        third = await sessions.create(user.user_id)  # drops the user's expired rows
        assert [s.sid for s in await sessions.list_for_user(user.user_id)] == [third.session.sid]
        assert await sessions.delete_for_user(user.user_id) == 1
        assert await sessions.get_by_cookie(third.cookie) is None
