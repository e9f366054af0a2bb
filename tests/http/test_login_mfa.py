"""The hosted login's second factor: a TOTP code after the password (core/mfa.py, web/mfa.py;
contract §2.2 step 8; security cases SE-02, SE-03, SE-10, AT-01).

A user with a confirmed `totp` authentication method gets the code page instead of a session;
the code completes the login as a password-only login completes. The app runs on a fixed clock
(codes are computed for it); the flows that race on the database run on PostgreSQL too.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import bcrypt
import httpx
import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from keystead.app import create_app
from keystead.core.bruteforce import ACCOUNT_BLOCKED_PAGE
from keystead.core.clock import FixedClock
from keystead.core.logs import LogEvent
from keystead.core.mfa import CHALLENGE_LIFETIME, STEP_SECONDS
from keystead.core.passwords import hash_password, needs_rehash
from keystead.core.ports import Connection
from keystead.core.users import User
from keystead.deps import AppState
from keystead.ratelimit.protection import clear_user_blocks
from keystead.settings import Settings
from keystead.storage.models import LoginSessionRow
from keystead.storage.repositories.authentication_methods import SqlAuthenticationMethods
from tests.conftest import ISSUER
from tests.http import test_authorize as shared
from tests.http.helpers import M2M, m2m
from tests.http.test_authorize import (
    CB,
    EMAIL,
    PASSWORD,
    add_client,
    add_user,
    assert_error_page,
    consume,
    get_user,
    hidden_fields,
    open_login_page,
    redirect_params,
)

template_database = shared.template_database
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTHER_CLIENT = "OtherSpa000000000000000000000001"
ENTER_CODE = "Enter the 6-digit code from your authenticator app."
WRONG_CODE = "Wrong or already used code. Try again."
EXPIRED = "Your sign-in has expired or did not start in this browser. Start again."
TOO_MANY = "Too many attempts. Try again later."
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def backend() -> str:
    """The app's database; a test overrides this fixture with parametrize."""
    return "sqlite"


@pytest.fixture
def clock() -> FixedClock:
    # Ahead of the real time: Management API tokens minted with it are valid (iat ≤ now).
    return FixedClock(math.floor(time.time()) + 300.0)


@pytest.fixture
async def app(
    tmp_path: Path, template_database: Path, clock: FixedClock, backend: str
) -> AsyncIterator[Any]:
    """SQLite: a copy of the migrated template database. PostgreSQL: a scratch database."""
    scratch = None
    if backend == "postgres":
        from tests.storage.conftest import Scratch

        scratch = Scratch()
        url = scratch.create()
    else:
        url = f"sqlite:///{tmp_path / 'keystead.db'}"
        target = make_url(url).database
        assert target is not None
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{template_database}{suffix}").exists():
                shutil.copyfile(f"{template_database}{suffix}", f"{target}{suffix}")
    settings = Settings(
        issuer=ISSUER,
        database_url=url,
        data_dir=str(tmp_path),
        rate_limit_preset="off",  # the rate limits have their own tests; blocks are tested here
    ).with_defaults()
    try:
        application = create_app(settings, clock=clock, migrate=backend == "postgres")
        async with application.router.lifespan_context(application):
            yield application
    finally:
        if scratch is not None:
            scratch.drop_all()


@pytest.fixture
def state(app: Any) -> AppState:
    found: AppState = app.state.keystead
    return found


@pytest.fixture
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as client:
        yield client


@pytest.fixture
async def user(state: AppState) -> User:
    await add_client(state)
    await add_client(state, M2M, name="M2M", app_type="non_interactive")
    return await add_user(state)


@asynccontextmanager
async def browser(app: Any, ip: str = "198.51.100.7") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(ip, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as client:
        yield client


async def enroll(app: Any, http: httpx.AsyncClient, user: User) -> str:
    """A confirmed TOTP factor, through the Management API as an admin would add one."""
    r = await http.post(
        f"/api/v2/users/{user.user_id}/authentication-methods",
        json={"type": "totp", "totp_secret": SECRET},
        headers=m2m(app, "create:authentication_methods"),
    )
    assert r.status_code == 201, r.text
    method_id: str = r.json()["id"]
    return method_id


def code_at(now: float, secret: str = SECRET) -> str:
    return str(pyotp.TOTP(secret).at(now))


def wrong_code(now: float) -> str:
    """Six digits that are not the code of now's step, nor of either step beside it."""
    near = {code_at(now + k * STEP_SECONDS) for k in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


async def password_step(http: httpx.AsyncClient, **params: str | None) -> httpx.Response:
    page = await open_login_page(http, **params)
    form = {**hidden_fields(page.text), "username": EMAIL, "password": PASSWORD}
    return await http.post("/u/login", data=form)


async def code_page(http: httpx.AsyncClient, **params: str | None) -> dict[str, str]:
    """The password step of a user who owes a code: the code page's hidden fields."""
    r = await password_step(http, **params)
    assert r.status_code == 200, r.text
    assert '<form method="post" action="/u/mfa-challenge"' in r.text
    fields = hidden_fields(r.text)
    assert set(fields) == {"csrf_token", "authorize_query", "challenge"}
    return fields


async def send_code(http: httpx.AsyncClient, fields: dict[str, str], code: str) -> httpx.Response:
    return await http.post("/u/mfa-challenge", data={**fields, "code": code})


def page_error(r: httpx.Response) -> str:
    found = re.search(r'<div class="alert" role="alert" id="form-error"><p>(.*?)</p>', r.text)
    assert found is not None, r.text
    return html.unescape(found.group(1))


async def events(state: AppState, kind: str) -> list[LogEvent]:
    async with state.transaction() as session:
        return [e for e in await state.logs(session).list(limit=None) if e.type == kind]


async def session_count(state: AppState) -> int:
    async with state.transaction() as session:
        return len(list(await session.scalars(select(LoginSessionRow))))


def assert_no_login(r: httpx.Response) -> None:
    assert "location" not in r.headers
    assert "keystead_session" not in r.headers.get("set-cookie", "")
    assert "code=" not in r.text


# --- without a factor, or with an unconfirmed one: as before --------------------------------------


async def test_a_user_without_a_factor_logs_in_as_before(
    http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    r = await password_step(http)
    assert r.status_code == 303
    assert "code" in redirect_params(r)
    assert (await get_user(state, user.user_id)).logins_count == 1
    assert await events(state, "gd_auth_succeed") == []


async def test_an_unconfirmed_totp_method_asks_for_nothing(
    http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    async with state.transaction() as session:
        methods = SqlAuthenticationMethods(session, state.clock, state.sealer)
        await methods.create(user.user_id, "totp", confirmed=False, secrets={"totp_secret": SECRET})
    r = await password_step(http)
    assert r.status_code == 303
    assert "code" in redirect_params(r)


# --- the code page --------------------------------------------------------------------------------


async def test_the_password_step_answers_the_code_page_and_no_login(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await enroll(app, http, user)
    r = await password_step(http)
    assert r.status_code == 200
    assert_no_login(r)
    text = r.text
    assert '<form method="post" action="/u/mfa-challenge"' in text
    assert '<label for="code">' in text
    assert '<input id="code" name="code" type="text" inputmode="numeric"' in text
    assert 'autocomplete="one-time-code"' in text
    assert '<html lang="en">' in text
    assert "<script" not in text and not re.search(r'(src|href)="(https?:)?//', text)
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    fields = hidden_fields(text)
    assert fields["csrf_token"] == http.cookies["keystead_csrf"]
    assert "client_id=" + shared.SPA_ID in fields["authorize_query"]
    assert fields["challenge"].count(".") == 2  # a signed JWT
    assert SECRET not in text and PASSWORD not in text
    # Nothing recorded: no session, no login count, no success event.
    assert await session_count(state) == 0
    assert (await get_user(state, user.user_id)).logins_count == 0
    assert await events(state, "s") == []


async def test_the_password_step_still_replaces_an_imported_hash(
    app: Any, http: httpx.AsyncClient, state: AppState
) -> None:
    await add_client(state)
    await add_client(state, M2M, name="M2M", app_type="non_interactive")
    imported = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    user = await add_user(state, password_hash=imported)
    await enroll(app, http, user)
    assert (await password_step(http)).status_code == 200
    stored = await get_user(state, user.user_id)
    assert stored.password_hash and stored.password_hash.startswith("$argon2id$")
    assert not needs_rehash(stored.password_hash)
    assert stored.logins_count == 0


# --- the right code -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_right_code_completes_the_login_once(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http, state="st 42")
    old_csrf = http.cookies["keystead_csrf"]
    code = code_at(clock.now())
    r = await send_code(http, fields, code)
    assert r.status_code == 303, r.text
    params = redirect_params(r)
    assert params["state"] == "st 42"
    found = await consume(state, params["code"])
    assert found.code is not None and found.code.user_id == user.user_id
    assert found.code.redirect_uri == CB
    assert len(http.cookies["keystead_session"]) >= 43
    assert http.cookies["keystead_csrf"] != old_csrf  # the form cannot be posted again
    assert (await get_user(state, user.user_id)).logins_count == 1
    [succeeded] = await events(state, "gd_auth_succeed")
    assert (succeeded.user_id, succeeded.client_id) == (user.user_id, shared.SPA_ID)
    assert len(await events(state, "s")) == 1

    # Replay: the same challenge and code, with the cookie the form was served with.
    async with browser(app) as replay:
        replay.cookies.set("keystead_csrf", old_csrf)
        again = await send_code(replay, fields, code)
        assert again.status_code == 400
        assert page_error(again) == WRONG_CODE
        assert_no_login(again)
    # And the same code in a new login: spent.
    async with browser(app) as later:
        refused = await send_code(later, await code_page(later), code)
        assert (refused.status_code, page_error(refused)) == (400, WRONG_CODE)
    assert (await get_user(state, user.user_id)).logins_count == 1
    assert await session_count(state) == 1


async def test_a_code_typed_with_a_space_is_read(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    code = code_at(clock.now())
    r = await send_code(http, fields, f" {code[:3]} {code[3:]} ")
    assert "code" in redirect_params(r)


# --- wrong codes ----------------------------------------------------------------------------------


async def test_a_code_that_is_not_six_digits_is_asked_again(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    for bad in ("", "12345", "1234567", "12345a", "١٢٣٤٥٦"):
        r = await send_code(http, fields, bad)
        assert (r.status_code, page_error(r)) == (400, ENTER_CODE)
        assert hidden_fields(r.text) == fields
        assert 'aria-invalid="true"' in r.text
    assert await events(state, "gd_auth_failed") == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_wrong_codes_are_logged_counted_and_block_the_pair(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    bad = wrong_code(clock.now())
    r = await send_code(http, fields, bad)
    assert (r.status_code, page_error(r)) == (400, WRONG_CODE)
    assert_no_login(r)
    assert hidden_fields(r.text) == fields  # the same challenge, still usable
    [failed] = await events(state, "gd_auth_failed")
    assert (failed.user_id, failed.client_id) == (user.user_id, shared.SPA_ID)
    assert failed.data["ip"] == "198.51.100.7"
    assert failed.data["connection"] == "Username-Password-Authentication"
    assert bad not in str(failed.data) and bad not in failed.description

    for _ in range(9):  # AT-01: ten failures in a row (the default) block the pair
        r = await send_code(http, fields, bad)
        assert (r.status_code, page_error(r)) == (400, WRONG_CODE)
    assert len(await events(state, "gd_auth_failed")) == 10
    blocks = await events(state, "limit_wc")  # the (user, IP) pair, and the user's codes
    assert {e.user_id for e in blocks} == {user.user_id} and len(blocks) == 2
    assert any("wrong codes from any address" in e.description for e in blocks)

    right = await send_code(http, fields, code_at(clock.now()))  # even the right code
    assert (right.status_code, page_error(right)) == (429, ACCOUNT_BLOCKED_PAGE)
    assert_no_login(right)
    again = await password_step(http)  # and the right password, from this IP
    assert (again.status_code, page_error(again)) == (429, ACCOUNT_BLOCKED_PAGE)
    async with browser(app, "203.0.113.9") as elsewhere:  # another IP: the password passes,
        fresh = await code_page(elsewhere)  # but codes are refused from every address
        r = await send_code(elsewhere, fresh, code_at(clock.now()))
        assert (r.status_code, page_error(r)) == (429, ACCOUNT_BLOCKED_PAGE)
        async with state.transaction() as session:  # unblocked, as an administrator would
            await clear_user_blocks(session, user)
        r = await send_code(elsewhere, fresh, code_at(clock.now()))
        assert "code" in redirect_params(r)
    assert (await get_user(state, user.user_id)).logins_count == 1


async def test_the_password_again_does_not_end_the_run_of_wrong_codes(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    """Whoever has the password cannot reset the count between guesses of the code."""
    await enroll(app, http, user)
    bad = wrong_code(clock.now())
    fields = await code_page(http)
    for _ in range(9):
        await send_code(http, fields, bad)
    fields = await code_page(http)  # the right password: the count goes on
    r = await send_code(http, fields, bad)
    assert r.status_code == 400
    refused = await send_code(http, fields, code_at(clock.now()))
    assert (refused.status_code, page_error(refused)) == (429, ACCOUNT_BLOCKED_PAGE)


async def test_the_right_code_ends_the_run_of_failures(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    bad = wrong_code(clock.now())
    fields = await code_page(http)
    for _ in range(9):
        await send_code(http, fields, bad)
    assert "code" in redirect_params(await send_code(http, fields, code_at(clock.now())))
    clock.advance(STEP_SECONDS)  # the next code
    fields = await code_page(http, prompt="login")
    for _ in range(9):
        assert (await send_code(http, fields, bad)).status_code == 400
    assert "code" in redirect_params(await send_code(http, fields, code_at(clock.now())))


# --- challenges that do not open ------------------------------------------------------------------


async def test_a_challenge_from_another_browser_is_refused(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    async with browser(app) as other:  # its own CSRF cookie and token, the stolen challenge
        own = hidden_fields((await open_login_page(other)).text)
        stolen = {**fields, "csrf_token": own["csrf_token"]}
        r = await send_code(other, stolen, code_at(clock.now()))
    assert_error_page(r, status=400, text=EXPIRED)
    assert (await get_user(state, user.user_id)).logins_count == 0
    # The code was not spent: the right browser still logs in with it.
    assert "code" in redirect_params(await send_code(http, fields, code_at(clock.now())))


@pytest.mark.parametrize("case", ["tampered", "missing", "garbage", "expired"])
async def test_a_challenge_that_does_not_open_is_refused(
    app: Any,
    http: httpx.AsyncClient,
    state: AppState,
    user: User,
    clock: FixedClock,
    case: str,
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    challenge = fields["challenge"]
    if case == "tampered":
        head, body, signature = challenge.split(".")
        flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
        fields["challenge"] = f"{head}.{body}.{flipped}"
    elif case == "missing":
        del fields["challenge"]
    elif case == "garbage":
        fields["challenge"] = "x" * 5000
    else:
        clock.advance(CHALLENGE_LIFETIME + 1)
    r = await send_code(http, fields, code_at(clock.now()))
    assert_error_page(r, status=400, text=EXPIRED)
    assert "Sign-in expired" in r.text
    assert (await get_user(state, user.user_id)).logins_count == 0
    assert await session_count(state) == 0


async def test_a_challenge_is_for_the_application_it_was_issued_for(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await add_client(state, OTHER_CLIENT, name="Other SPA")
    await enroll(app, http, user)
    fields = await code_page(http)
    query = fields["authorize_query"].replace(shared.SPA_ID, OTHER_CLIENT)
    r = await send_code(http, {**fields, "authorize_query": query}, code_at(clock.now()))
    assert_error_page(r, status=400, text=EXPIRED)


async def test_a_tampered_authorize_request_is_validated_again(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    query = fields["authorize_query"].replace("app.example", "evil.example")
    r = await send_code(http, {**fields, "authorize_query": query}, code_at(clock.now()))
    assert_error_page(r, status=400, text="Callback URL mismatch")


@pytest.mark.parametrize("case", ["no-field", "no-cookie", "other"])
async def test_csrf_is_checked(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock, case: str
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    if case == "no-field":
        del fields["csrf_token"]
    elif case == "no-cookie":
        http.cookies.clear()
    else:
        fields["csrf_token"] = "A" * 43
    r = await send_code(http, fields, code_at(clock.now()))
    assert_error_page(r, status=403, text="did not come from this site")
    assert await events(state, "gd_auth_failed") == []
    assert await session_count(state) == 0


# --- the user changed between the steps -----------------------------------------------------------


async def test_a_user_blocked_between_the_steps_gets_no_session(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    r = await http.patch(
        f"/api/v2/users/{user.user_id}", json={"blocked": True}, headers=m2m(app, "update:users")
    )
    assert r.status_code == 200, r.text
    r = await send_code(http, fields, code_at(clock.now()))
    assert r.status_code == 403
    assert "blocked" in page_error(r)
    assert_no_login(r)
    [refused] = await events(state, "f")
    assert refused.user_id == user.user_id


async def test_a_removed_factor_accepts_no_code(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    method_id = await enroll(app, http, user)
    fields = await code_page(http)
    r = await http.delete(
        f"/api/v2/users/{user.user_id}/authentication-methods/{method_id}",
        headers=m2m(app, "delete:authentication_methods"),
    )
    assert r.status_code == 204, r.text
    r = await send_code(http, fields, code_at(clock.now()))
    assert (r.status_code, page_error(r)) == (400, WRONG_CODE)
    # Without the factor, the password alone logs in again.
    assert "code" in redirect_params(await password_step(http))


# --- silent authentication ------------------------------------------------------------------------


async def test_prompt_none_needs_the_session_only_the_code_starts(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    fields = await code_page(http)
    silent = {**shared.authorize_params(prompt="none"), "state": "quiet"}
    r = await http.get("/authorize", params=silent)  # password given, code owed: no session
    assert redirect_params(r) == {
        "error": "login_required",
        "error_description": "Login required",
        "state": "quiet",
    }
    assert "code" in redirect_params(await send_code(http, fields, code_at(clock.now())))
    r = await http.get("/authorize", params=silent)
    assert set(redirect_params(r)) == {"code", "state"}


async def test_codes_guessed_from_many_addresses_hit_one_limit(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    """One challenge, ten addresses, one wrong code each: no (user, IP) pair reaches its limit,
    but the user's codes from every address do, and the right code is then refused too."""
    await enroll(app, http, user)
    fields = await code_page(http)
    bad = wrong_code(clock.now())
    for n in range(10):
        async with browser(app, f"2001:db8::{n + 1}") as guesser:
            guesser.cookies.update(http.cookies)  # the same browser's challenge, another address
            r = await send_code(guesser, fields, bad)
            assert (r.status_code, page_error(r)) == (400, WRONG_CODE)
    r = await send_code(http, fields, code_at(clock.now()))
    assert (r.status_code, page_error(r)) == (429, ACCOUNT_BLOCKED_PAGE)
    assert_no_login(r)


async def test_a_code_page_continues_only_the_connection_its_password_was_for(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    """Another connection in the carried query (one without attack protection, say) makes the
    challenge unusable: wrong codes could otherwise be counted under that connection's rules."""
    async with state.transaction() as session:
        await state.repos(session).connections.create(
            Connection(
                id="", name="Unprotected", strategy="auth0",
                options={"brute_force_protection": False},
            )
        )  # fmt: skip
    await enroll(app, http, user)
    fields = await code_page(http)
    query = dict(parse_qsl(fields["authorize_query"], keep_blank_values=True))
    swapped = {**fields, "authorize_query": urlencode({**query, "connection": "Unprotected"})}
    r = await send_code(http, swapped, code_at(clock.now()))
    assert r.status_code == 400 and "Sign-in expired" in r.text
    assert_no_login(r)


async def test_a_factor_no_longer_confirmed_takes_no_code(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    method_id = await enroll(app, http, user)
    fields = await code_page(http)
    async with state.transaction() as session:  # un-confirmed between the password and the code
        methods = SqlAuthenticationMethods(session, state.clock, state.sealer)
        await methods.update(user.user_id, method_id, confirmed=False)
    r = await send_code(http, fields, code_at(clock.now()))
    assert (r.status_code, page_error(r)) == (400, WRONG_CODE)
    assert_no_login(r)


async def test_a_login_to_another_account_with_the_address_does_not_end_the_run(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    """Someone with an account of the same e-mail in another connection logs in to it between
    password guesses from the same address: the victim's run of failures goes on."""
    mine = "Mallory-own-password-1"
    async with state.transaction() as session:
        repos = state.repos(session)
        await repos.connections.create(Connection(id="", name="Other", strategy="auth0"))
        await repos.users.create(
            User(user_id="", email=EMAIL, password_hash=hash_password(mine), name="m"),
            connection="Other",
        )

    async def wrong_password() -> int:
        page = await open_login_page(http)
        form = {**hidden_fields(page.text), "username": EMAIL, "password": "wrong"}
        return (await http.post("/u/login", data=form)).status_code

    for _ in range(9):
        assert await wrong_password() == 400
    async with browser(app) as other:  # the same address, the other account
        page = await open_login_page(other, connection="Other")
        form = {**hidden_fields(page.text), "username": EMAIL, "password": mine}
        assert (await other.post("/u/login", data=form)).status_code == 303
    assert await wrong_password() == 400  # the tenth
    r = await password_step(http)
    assert (r.status_code, page_error(r)) == (429, ACCOUNT_BLOCKED_PAGE)


async def test_a_posted_login_carrying_prompt_none_is_login_required_when_a_code_is_owed(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await enroll(app, http, user)
    fields = hidden_fields((await open_login_page(http)).text)
    query = dict(parse_qsl(fields["authorize_query"], keep_blank_values=True))
    fields["authorize_query"] = urlencode({**query, "prompt": "none"})
    r = await http.post("/u/login", data={**fields, "username": EMAIL, "password": PASSWORD})
    params = redirect_params(r)
    assert params["error"] == "login_required"
    assert params["error_description"] == "Multifactor authentication required"
    assert "code" not in params and "keystead_session" not in r.headers.get("set-cookie", "")
