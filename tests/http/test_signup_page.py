"""Hosted signup page /u/signup (security cases SE-03, SE-11, IN-05, RE-13)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import func, select

from keystead.core.clients import Client
from keystead.core.users import DATABASE_CONNECTION
from keystead.deps import AppState
from keystead.storage.models import LoginSessionRow, UserRow
from tests.http import test_authorize as shared
from tests.http.test_authorize import (
    add_client,
    add_user,
    assert_error_page,
    authorize_params,
    consume,
    hidden_fields,
    log_types,
    redirect_params,
)

app = shared.app
state = shared.state
template_database = shared.template_database

NEW_EMAIL = "grace@example.com"
NEW_PASSWORD = "Cobol-Compiler-1959"


@pytest.fixture
async def spa(state: AppState) -> Client:
    return await add_client(state)


async def open_signup_page(http: httpx.AsyncClient, **params: str | None) -> httpx.Response:
    start = await http.get("/authorize", params=authorize_params(screen_hint="signup", **params))
    assert start.headers["location"].startswith("/u/signup?")
    page = await http.get(start.headers["location"])
    assert page.status_code == 200, page.text
    return page


async def sign_up(
    http: httpx.AsyncClient, email: str = NEW_EMAIL, password: str = NEW_PASSWORD
) -> httpx.Response:
    page = await open_signup_page(http)
    form = {**hidden_fields(page.text), "email": email, "password": password}
    return await http.post("/u/signup", data=form)


async def users(state: AppState) -> list[UserRow]:
    async with state.transaction() as session:
        return list(await session.scalars(select(UserRow).order_by(UserRow.created_at)))


async def count_sessions(state: AppState) -> int:
    async with state.transaction() as session:
        stmt = select(func.count()).select_from(LoginSessionRow)
        return int(await session.scalar(stmt) or 0)


async def test_signup_page_form(http: httpx.AsyncClient, spa: Client) -> None:
    page = await open_signup_page(http, login_hint="grace@example.com")
    text = page.text
    assert '<form method="post" action="/u/signup"' in text
    assert 'name="email" type="email"' in text and 'autocomplete="email"' in text
    assert 'value="grace@example.com"' in text  # login_hint prefills
    assert 'name="password" type="password" autocomplete="new-password"' in text
    assert '<label for="email">' in text and '<label for="password">' in text
    assert "At least 8 characters" in text and 'aria-describedby="password-rules"' in text
    assert '<button type="submit">' in text
    assert '<a href="/u/login?' in text
    assert page.headers["x-frame-options"] == "DENY"
    assert "csrf_token" in hidden_fields(text)


async def test_signup_creates_the_user_and_logs_in(
    http: httpx.AsyncClient, state: AppState, spa: Client
) -> None:
    r = await sign_up(http, email="  Grace@Example.com ")
    assert r.status_code == 303
    params = redirect_params(r)
    assert params["state"] == "st-1"
    [row] = await users(state)
    assert row.email == NEW_EMAIL  # trimmed and lower-cased
    assert row.connection == DATABASE_CONNECTION
    assert row.user_id.startswith("auth0|")
    assert row.password_hash is not None and row.password_hash.startswith("$argon2id$")
    assert NEW_PASSWORD not in row.password_hash
    assert row.logins_count == 1 and row.last_login is not None
    assert (row.name, row.nickname) == (NEW_EMAIL, "grace")
    found = await consume(state, params["code"])
    assert found.code is not None and found.code.user_id == row.user_id
    assert "keystead_session" in r.headers.get("set-cookie", "")
    assert await count_sessions(state) == 1
    assert await log_types(state) == ["ss", "s"]
    # The new session is usable for silent authentication straight away.
    r = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert "code" in redirect_params(r)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Short7!", "Password must be at least 8 characters long"),
        ("password1", "Password is too common, choose another"),
        ("grace@example.com", "Password must not be your email address"),
    ],
)
async def test_se11_weak_passwords_are_refused(
    http: httpx.AsyncClient, state: AppState, spa: Client, password: str, message: str
) -> None:
    r = await sign_up(http, password=password)
    assert r.status_code == 400
    assert message in r.text
    assert "location" not in r.headers
    assert 'value="grace@example.com"' in r.text  # kept, the password is not
    assert password not in r.text.replace('value="grace@example.com"', "")
    assert await users(state) == []
    assert await count_sessions(state) == 0


@pytest.mark.parametrize(
    "password",
    ["p" * 64, "correct horse battery staple " * 7, "🔑 ключ パスワード 🔑 long enough"],
)
async def test_se11_long_and_unusual_passwords_are_accepted(
    http: httpx.AsyncClient, state: AppState, spa: Client, password: str
) -> None:
    r = await sign_up(http, password=password)
    assert "code" in redirect_params(r)
    http.cookies.clear()
    r = await http.get("/authorize", params=authorize_params())
    page = await http.get(r.headers["location"])
    form = {**hidden_fields(page.text), "username": NEW_EMAIL, "password": password}
    assert "code" in redirect_params(await http.post("/u/login", data=form))


@pytest.mark.parametrize(
    "email",
    ["ada@example.com", "ADA@example.COM", "\uff41da@example.com"],  # fullwidth a
)
async def test_in05_existing_email_is_refused(
    http: httpx.AsyncClient, state: AppState, spa: Client, email: str
) -> None:
    await add_user(state, email="ada@example.com")
    r = await sign_up(http, email=email)
    assert r.status_code == 400
    assert "The user already exists." in r.text
    assert len(await users(state)) == 1
    assert await log_types(state) == ["fs"]


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "two@@example.com", "a b@c.de"])
async def test_invalid_email_is_refused(
    http: httpx.AsyncClient, state: AppState, spa: Client, email: str
) -> None:
    r = await sign_up(http, email=email)
    assert r.status_code == 400
    assert "Enter a valid email address." in r.text
    assert await users(state) == []


async def test_se03_signup_without_csrf_token_creates_nothing(
    http: httpx.AsyncClient, state: AppState, spa: Client
) -> None:
    page = await open_signup_page(http)
    form = {**hidden_fields(page.text), "email": NEW_EMAIL, "password": NEW_PASSWORD}
    del form["csrf_token"]
    r = await http.post("/u/signup", data=form)
    assert_error_page(r, status=403)
    http.cookies.clear()  # a cross-site POST carries the field but not the cookie
    form = {**hidden_fields(page.text), "email": NEW_EMAIL, "password": NEW_PASSWORD}
    assert_error_page(await http.post("/u/signup", data=form), status=403)
    assert await users(state) == []


async def test_disabled_signup(http: httpx.AsyncClient, state: AppState, spa: Client) -> None:
    async with state.transaction() as session:
        repos = state.repos(session)
        connection = await repos.connections.by_name(DATABASE_CONNECTION)
        assert connection is not None
        options = {**connection.options, "disable_signup": True}
        await repos.connections.update(replace(connection, options=options))
    page = await http.get("/u/signup", params=authorize_params())
    assert page.status_code == 403
    assert "Sign up is not available" in page.text and "<form" not in page.text
    login_page = await http.get("/u/login", params=authorize_params())
    assert "/u/signup?" not in login_page.text
    # Posting anyway creates nothing.
    token_page = await http.get("/u/login", params=authorize_params())
    form = {**hidden_fields(token_page.text), "email": NEW_EMAIL, "password": NEW_PASSWORD}
    assert (await http.post("/u/signup", data=form)).status_code == 403
    assert await users(state) == []


async def test_connection_minimum_length_applies(
    http: httpx.AsyncClient, state: AppState, spa: Client
) -> None:
    async with state.transaction() as session:
        repos = state.repos(session)
        connection = await repos.connections.by_name(DATABASE_CONNECTION)
        assert connection is not None
        options = {**connection.options, "password_complexity_options": {"min_length": 20}}
        await repos.connections.update(replace(connection, options=options))
    r = await sign_up(http, password="Nineteen-chars-abc1")
    assert "Password must be at least 20 characters long" in r.text


async def test_re13_concurrent_signups_make_one_account(
    app: object, state: AppState, spa: Client
) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    async def one(email: str) -> int:
        async with httpx.AsyncClient(transport=transport, base_url="http://keystead.test") as b:
            return (await sign_up(b, email=email)).status_code

    emails = ["dup@example.com", "DUP@example.com", " dup@example.com", "Dup@Example.com"]
    statuses = await asyncio.gather(*(one(e) for e in emails))
    assert sorted(statuses) == [303, 400, 400, 400]
    assert [row.email for row in await users(state)] == ["dup@example.com"]


async def test_an_address_held_by_a_linked_identity_is_refused(
    http: httpx.AsyncClient, state: AppState, spa: Client
) -> None:
    from keystead.core import linking
    from keystead.core.users import User

    async with state.transaction() as session:
        repos = state.repos(session)
        primary = await repos.users.create(
            User(user_id="", email="primary@example.com"), connection=DATABASE_CONNECTION
        )
        secondary = await repos.users.create(
            User(user_id="", email=NEW_EMAIL, password_hash="h"), connection=DATABASE_CONNECTION
        )
        await repos.users.delete(secondary.user_id)
        await repos.users.update(linking.link(primary, secondary))
    r = await sign_up(http, email=NEW_EMAIL)
    assert r.status_code == 400
    assert "The user already exists." in r.text
    assert len(await users(state)) == 1  # the primary only
