"""Hosted login page /u/login (contract §2, §2.5; security cases SE-02, SE-03, SE-10, AZ-11,
AZ-20)."""

from __future__ import annotations

import re
from dataclasses import replace
from http.cookies import SimpleCookie
from typing import Any

import bcrypt
import httpx
import pytest
from sqlalchemy import select

from keystead.core import linking
from keystead.core.clients import Client
from keystead.core.tokens import token_digest
from keystead.core.users import User
from keystead.deps import AppState
from keystead.settings import Settings
from keystead.storage.models import LoginSessionRow
from keystead.web import login as login_module
from tests.conftest import ISSUER
from tests.http import test_authorize as shared
from tests.http.test_authorize import (
    APP,
    CB,
    EMAIL,
    PASSWORD,
    SPA_ID,
    add_client,
    add_user,
    assert_error_page,
    authorize_params,
    consume,
    get_user,
    hidden_fields,
    log_in,
    log_types,
    open_login_page,
    redirect_params,
    web_message,
)

# The shared fixtures: the fast app (a copy of a migrated, keyed database) and its state.
app = shared.app
state = shared.state
template_database = shared.template_database


@pytest.fixture
async def spa(state: AppState) -> Client:
    return await add_client(state)


@pytest.fixture
async def user(state: AppState) -> User:
    return await add_user(state)


def set_cookies(response: httpx.Response) -> dict[str, Any]:
    """Set-Cookie headers by cookie name, parsed (value and attributes)."""
    found: dict[str, Any] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name, morsel in jar.items():
            found[name] = morsel
    return found


async def session_rows(state: AppState) -> list[LoginSessionRow]:
    async with state.transaction() as session:
        return list(await session.scalars(select(LoginSessionRow)))


# --- the page ------------------------------------------------------------------------------------


async def test_login_page_form_and_headers(http: httpx.AsyncClient, spa: Client) -> None:
    page = await open_login_page(http)
    text = page.text
    assert '<form method="post" action="/u/login"' in text
    assert '<input id="username" name="username" type="email"' in text
    assert 'autocomplete="username"' in text
    assert (
        '<input id="password" name="password" type="password" autocomplete="current-password"'
        in text
    )
    assert '<label for="username">' in text and '<label for="password">' in text
    assert '<button type="submit">' in text
    assert '<a href="/u/reset-password?' in text and "Forgot password?" in text
    assert '<a href="/u/signup?' in text
    assert '<html lang="en">' in text
    # AZ-20: not framable, no third-party assets.
    assert page.headers["x-frame-options"] == "DENY"
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<script" not in text
    # The CSRF cookie and the field carry the same token.
    fields = hidden_fields(text)
    cookie = set_cookies(page)["keystead_csrf"]
    assert cookie.value == fields["csrf_token"] and len(cookie.value) >= 43
    assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    # The whole /authorize request rides along.
    assert "client_id=" + SPA_ID in fields["authorize_query"]


async def test_stylesheet_is_served_locally(http: httpx.AsyncClient) -> None:
    r = await http.get("/u/static/keystead.css")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/css")
    assert "@import" not in r.text and "url(" not in r.text


async def test_login_hint_prefills_escaped(http: httpx.AsyncClient, spa: Client) -> None:
    page = await open_login_page(http, login_hint='"><script>alert(1)</script>')
    assert "<script>alert(1)" not in page.text
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text


async def test_login_page_validates_the_request(http: httpx.AsyncClient, spa: Client) -> None:
    r = await http.get("/u/login", params=authorize_params(redirect_uri="https://evil.example/"))
    assert_error_page(r, text="Callback URL mismatch")
    r = await http.get("/u/login")
    assert_error_page(r, text="Missing required parameter: client_id")


# --- logging in ----------------------------------------------------------------------------------


async def test_login_success_sets_a_session_and_completes_authorization(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    r = await log_in(http, state="s t+1")
    assert r.status_code == 303  # after a POST: the browser GETs the callback
    params = redirect_params(r)
    assert params["state"] == "s t+1"
    found = await consume(state, params["code"])
    assert found.code is not None and found.code.user_id == user.user_id
    # SE-02: the session cookie.
    cookie = set_cookies(r)["keystead_session"]
    assert len(cookie.value) >= 43
    assert cookie["httponly"] and cookie["path"] == "/"
    assert cookie["samesite"].lower() == "lax"  # plain http: no Secure, so Lax
    assert not cookie["secure"]
    assert int(cookie["max-age"]) == 7 * 86_400
    # Only the digest is stored, and it is the session the code is bound to.
    rows = await session_rows(state)
    assert [row.id_digest for row in rows] == [token_digest(cookie.value)]
    assert rows[0].sid == found.code.sid and rows[0].user_id == user.user_id
    # The user's login is recorded, and a success event.
    after = await get_user(state, user.user_id)
    assert after.logins_count == user.logins_count + 1
    assert after.last_login is not None and after.last_ip
    assert "s" in await log_types(state)


async def test_login_rotates_the_session_id(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    # A cookie planted before login (session fixation) is never adopted.
    http.cookies.set("keystead_session", "attacker-chosen-value", domain="keystead.test")
    first = set_cookies(await log_in(http))["keystead_session"].value
    assert first != "attacker-chosen-value"
    second = set_cookies(await log_in(http, prompt="login"))["keystead_session"].value
    assert second != first
    rows = await session_rows(state)
    assert [row.id_digest for row in rows] == [token_digest(second)]  # the old one is gone
    assert len({row.sid for row in rows}) == 1


async def test_secure_cookies_over_tls(app: Any, state: AppState, spa: Client, user: User) -> None:
    state.settings = Settings(
        issuer="https://keystead.test/",
        database_url=state.settings.database_url,
        data_dir=state.settings.data_dir,
    ).with_defaults()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://keystead.test") as https:
        page = await open_login_page(https)
        csrf = set_cookies(page)["__Host-keystead_csrf"]
        assert csrf["secure"] and csrf["path"] == "/"
        form = {**hidden_fields(page.text), "username": EMAIL, "password": PASSWORD}
        r = await https.post("/u/login", data=form)
        cookie = set_cookies(r)["__Host-keystead_session"]
        assert cookie["secure"] and cookie["httponly"] and cookie["path"] == "/"
        assert cookie["samesite"].lower() == "none"  # SE-02: silent auth in a cross-site iframe
        assert "domain" not in {k for k, v in cookie.items() if v}
        r = await https.get("/authorize", params=authorize_params(prompt="none"))
        assert "code" in redirect_params(r)


async def test_wrong_password_and_unknown_user_look_the_same(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    page = await open_login_page(http)
    fields = hidden_fields(page.text)
    wrong = await http.post(
        "/u/login", data={**fields, "username": EMAIL, "password": "not-the-password"}
    )
    unknown = await http.post(
        "/u/login", data={**fields, "username": "nobody@example.com", "password": "whatever-1"}
    )
    assert wrong.status_code == unknown.status_code == 400
    assert "Wrong email or password." in wrong.text
    assert wrong.text.replace(EMAIL, "X") == unknown.text.replace("nobody@example.com", "X")
    assert "keystead_session" not in set_cookies(wrong) | set_cookies(unknown)
    assert await session_rows(state) == []
    assert await log_types(state) == ["fp", "fu"]
    after = await get_user(state, user.user_id)
    assert after.logins_count == 0 and after.last_login is None


async def test_se10_blocked_user_cannot_log_in(
    http: httpx.AsyncClient, state: AppState, spa: Client
) -> None:
    blocked = await add_user(state, blocked=True)
    r = await log_in(http)
    assert r.status_code == 403
    assert "user is blocked" in r.text
    assert "location" not in r.headers
    assert "keystead_session" not in set_cookies(r)
    assert await session_rows(state) == []
    assert (await get_user(state, blocked.user_id)).logins_count == 0
    assert await log_types(state) == ["f"]


async def test_empty_fields_are_refused(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    fields = hidden_fields((await open_login_page(http)).text)
    r = await http.post("/u/login", data={**fields, "username": EMAIL})
    assert r.status_code == 400
    assert "Enter your email address and password." in r.text


async def test_imported_bcrypt_hash_verifies_and_is_upgraded(
    http: httpx.AsyncClient, state: AppState, spa: Client
) -> None:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    user = await add_user(state, password=None, password_hash=legacy)
    r = await log_in(http)
    assert "code" in redirect_params(r)
    upgraded = (await get_user(state, user.user_id)).password_hash
    assert upgraded is not None and upgraded.startswith("$argon2id$")
    http.cookies.clear()
    assert "code" in redirect_params(await log_in(http))  # the new hash verifies too


async def test_brute_force_hook_runs_before_the_password_check(
    http: httpx.AsyncClient,
    state: AppState,
    spa: Client,
    user: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str | None, str]] = []

    async def refuse(_state: AppState, ip: str | None, username: str) -> bool:
        seen.append((ip, username))
        return False

    monkeypatch.setattr(login_module, "check_login_allowed", refuse)
    r = await log_in(http)
    assert r.status_code == 429
    assert seen == [("127.0.0.1", EMAIL)]
    assert await session_rows(state) == []
    assert await log_types(state) == []


async def test_login_completes_web_message_for_popups(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    r = await log_in(http, response_mode="web_message")
    message, origin = web_message(r)
    assert origin == APP
    assert message["response"]["state"] == "st-1"
    assert (await consume(state, message["response"]["code"])).code is not None
    assert "keystead_session" in set_cookies(r)


# --- CSRF (SE-03) and the carried request --------------------------------------------------------


@pytest.mark.parametrize("case", ["missing", "wrong", "no-cookie", "other-browser"])
async def test_se03_csrf(
    http: httpx.AsyncClient, app: Any, state: AppState, spa: Client, user: User, case: str
) -> None:
    app_ = app
    page = await open_login_page(http)
    fields = {**hidden_fields(page.text), "username": EMAIL, "password": PASSWORD}
    if case == "missing":
        del fields["csrf_token"]
    elif case == "wrong":
        fields["csrf_token"] = "A" * 43
    elif case == "no-cookie":  # a cross-site POST: the SameSite cookie is not sent
        http.cookies.clear()
    else:  # another browser's token with this browser's cookie
        transport = httpx.ASGITransport(app=app_)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as other:
            fields["csrf_token"] = hidden_fields((await open_login_page(other)).text)["csrf_token"]
    r = await http.post("/u/login", data=fields)
    assert_error_page(r, status=403, text="did not come from this site")
    assert await session_rows(state) == []
    assert await log_types(state) == []


async def test_se03_a_login_form_works_once(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    page = await open_login_page(http)
    form = {**hidden_fields(page.text), "username": EMAIL, "password": PASSWORD}
    assert (await http.post("/u/login", data=form)).status_code == 303
    replayed = await http.post("/u/login", data=form)  # the CSRF token was replaced
    assert_error_page(replayed, status=403)


async def test_tampered_request_is_validated_again(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    page = await open_login_page(http)
    fields = hidden_fields(page.text)
    query = fields["authorize_query"].replace("app.example", "evil.example")
    r = await http.post(
        "/u/login",
        data={**fields, "authorize_query": query, "username": EMAIL, "password": PASSWORD},
    )
    assert_error_page(r, text="Callback URL mismatch")
    assert await session_rows(state) == []
    # Dropping PKCE from a public client's request is refused too (to the app, not the page).
    query = re.sub(r"&code_challenge[^&]*", "", fields["authorize_query"])
    r = await http.post(
        "/u/login",
        data={**fields, "authorize_query": query, "username": EMAIL, "password": PASSWORD},
    )
    assert redirect_params(r)["error"] == "invalid_request"
    assert await session_rows(state) == []


async def test_blocked_after_login_gets_no_new_code(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    await log_in(http)
    async with state.transaction() as session:
        await state.repos(session).users.update(replace(user, blocked=True))
    r = await http.get("/authorize", params=authorize_params())
    assert redirect_params(r) == {
        "error": "unauthorized",
        "error_description": "user is blocked",
        "state": "st-1",
    }
    assert CB in r.headers["location"]


async def test_a_linked_secondary_logs_in_as_the_primary(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    secondary = await add_user(state, email="second@example.com", password="its own password")
    async with state.transaction() as session:
        users = state.repos(session).users
        await users.delete(secondary.user_id)
        await users.update(linking.link(await users.get(user.user_id), secondary))
    wrong = await log_in(http, email="second@example.com", password=PASSWORD)
    assert wrong.status_code == 400 and "Wrong email or password." in wrong.text
    r = await log_in(http, email="Second@example.com", password="its own password")
    found = await consume(state, redirect_params(r)["code"])
    assert found.code is not None and found.code.user_id == user.user_id
    rows = await session_rows(state)
    assert [row.user_id for row in rows] == [user.user_id]
    assert (await get_user(state, user.user_id)).logins_count == 1
