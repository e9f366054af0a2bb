"""Brute-force protection and suspicious-IP throttling over HTTP (security AT-01, AT-03; §12.1).

The hosted login page and the password grants count failed logins per (identifier, IP) and
per IP; a blocked pair is refused even with the right password while other IPs log in; a
password reset or an admin unblock lifts the block. Unknown users are counted and answered
exactly like wrong passwords.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from keystead.app import create_app
from keystead.core import login_success
from keystead.core.bruteforce import ACCOUNT_BLOCKED, ACCOUNT_BLOCKED_PAGE
from keystead.core.clock import FixedClock
from keystead.core.logs import LogEvent
from keystead.core.tickets import new_reset_ticket
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from keystead.settings import Settings
from keystead.storage.models import UserBlockRow
from tests.conftest import ISSUER
from tests.http import test_authorize as shared
from tests.http.helpers import m2m
from tests.http.test_authorize import (
    EMAIL,
    PASSWORD,
    add_client,
    add_user,
    hidden_fields,
    open_login_page,
    redirect_params,
)

template_database = shared.template_database
IP_A = "198.51.100.7"
IP_B = "203.0.113.9"
WEB = "WebClient00000000000000000000001"
SECRET = "web-secret-" + "s" * 40
TOO_MANY = "Too many attempts. Try again later."
FEW = {"bruteforce_max_attempts": 3}  # argon2 is slow on purpose: fewer failures, same rules


@pytest.fixture
def extra() -> dict[str, Any]:
    """Settings of the test's app; a test overrides this fixture with parametrize."""
    return {}


@pytest.fixture
def clock() -> FixedClock:
    # Ahead of the real time: Management API tokens minted with it are valid (iat ≤ now).
    return FixedClock(math.floor(time.time()) + 300.0)


@pytest.fixture
async def app(
    tmp_path: Path, template_database: Path, clock: FixedClock, extra: dict[str, Any]
) -> AsyncIterator[Any]:
    """A copy of the migrated template database, with this test's settings and clock."""
    settings = Settings(
        issuer=ISSUER,
        database_url=f"sqlite:///{tmp_path / 'keystead.db'}",
        data_dir=str(tmp_path),
        rate_limit_preset="off",  # the rate limits have their own tests
        **extra,
    ).with_defaults()
    target = make_url(settings.database_url).database
    assert target is not None
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{template_database}{suffix}").exists():
            shutil.copyfile(f"{template_database}{suffix}", f"{target}{suffix}")
    application = create_app(settings, clock=clock, migrate=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def state(app: Any) -> AppState:
    found: AppState = app.state.keystead
    return found


@pytest.fixture
async def user(state: AppState) -> User:
    await add_client(state)
    await add_client(
        state,
        WEB,
        public=False,
        client_secret=SECRET,
        grant_types=("password", "http://auth0.com/oauth/grant-type/password-realm"),
    )
    return await add_user(state)


@asynccontextmanager
async def browser(app: Any, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(ip, 50_000))
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as client:
        yield client


async def log_in(app: Any, ip: str, email: str = EMAIL, password: str = PASSWORD) -> httpx.Response:
    async with browser(app, ip) as http:
        page = await open_login_page(http)
        form = {**hidden_fields(page.text), "username": email, "password": password}
        return await http.post("/u/login", data=form)


def page_error(r: httpx.Response) -> str:
    found = re.search(r'<div class="alert" role="alert" id="form-error"><p>(.*?)</p>', r.text)
    assert found is not None, r.text
    return html.unescape(found.group(1))


async def fail(app: Any, ip: str, times: int, email: str = EMAIL) -> None:
    for _ in range(times):
        r = await log_in(app, ip, email, "not the password")
        assert (r.status_code, page_error(r)) == (400, "Wrong email or password.")


async def events(state: AppState, kind: str) -> list[LogEvent]:
    async with state.transaction() as session:
        return [e for e in await state.logs(session).list(limit=None) if e.type == kind]


def password_grant(password: str, username: str = EMAIL) -> dict[str, str]:
    return {
        "grant_type": "password",
        "username": username,
        "password": password,
        "client_id": WEB,
        "client_secret": SECRET,
    }


# --- AT-01 on the hosted login page -------------------------------------------------------------


async def test_at01_ten_failures_block_the_pair_not_the_user(
    app: Any, state: AppState, user: User
) -> None:
    await fail(app, IP_A, 10)
    blocked = await log_in(app, IP_A)  # the right password, from the same IP
    assert blocked.status_code == 429
    assert page_error(blocked) == ACCOUNT_BLOCKED_PAGE  # what happened, and the two ways out
    assert 'href="/u/reset-password?' in blocked.text
    assert "location" not in blocked.headers
    ok = await log_in(app, IP_B)
    assert "code" in redirect_params(ok)
    [event] = await events(state, "limit_wc")
    assert (event.user_id, event.data["ip"], event.data["user_name"]) == (
        user.user_id,
        IP_A,
        EMAIL,
    )
    assert event.data["connection"] == DATABASE_CONNECTION


@pytest.mark.parametrize("extra", [FEW])
async def test_a_success_ends_the_run_of_failures(app: Any, user: User) -> None:
    await fail(app, IP_A, 2)
    assert (await log_in(app, IP_A)).status_code == 303
    await fail(app, IP_A, 2)
    assert (await log_in(app, IP_A, EMAIL.upper())).status_code == 303  # one identifier


@pytest.mark.parametrize("extra", [FEW])
async def test_unknown_users_are_counted_and_answered_alike(
    app: Any, state: AppState, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes: list[str] = []

    def counting(name: str, real: Callable[..., bool]) -> Callable[..., bool]:
        def check(*args: Any) -> bool:
            hashes.append(name)
            return real(*args)

        return check

    monkeypatch.setattr(
        login_success, "verify_password", counting("real", login_success.verify_password)
    )
    monkeypatch.setattr(
        login_success, "verify_dummy", counting("dummy", login_success.verify_dummy)
    )
    known = await log_in(app, IP_A, EMAIL, "wrong")
    unknown = await log_in(app, IP_A, "nobody@example.com", "wrong")
    # One password hash each, the same page and status, the same rows written.
    assert hashes == ["real", "dummy"]
    assert (known.status_code, page_error(known)) == (unknown.status_code, page_error(unknown))
    async with state.transaction() as session:
        rows = list(await session.scalars(select(UserBlockRow).order_by(UserBlockRow.id)))
    assert [(r.identifier, r.ip, r.failures) for r in rows] == [
        (EMAIL, IP_A, 1),
        ("", IP_A, 2),  # the IP's own count, across accounts (suspicious-IP throttling)
        ("nobody@example.com", IP_A, 1),
    ]
    await fail(app, IP_A, 2, "nobody@example.com")
    blocked = await log_in(app, IP_A, "nobody@example.com", "anything")
    assert (blocked.status_code, page_error(blocked)) == (429, ACCOUNT_BLOCKED_PAGE)


@pytest.mark.parametrize("extra", [{"bruteforce_max_attempts": 3}])
async def test_the_threshold_is_a_setting(app: Any, user: User) -> None:
    await fail(app, IP_A, 3)
    assert (await log_in(app, IP_A)).status_code == 429


@pytest.mark.parametrize("extra", [{"bruteforce_max_attempts": 2, "bruteforce_block_seconds": 60}])
async def test_blocks_expire_when_configured(app: Any, user: User, clock: FixedClock) -> None:
    await fail(app, IP_A, 2)
    assert (await log_in(app, IP_A)).status_code == 429
    clock.advance(60)
    assert (await log_in(app, IP_A)).status_code == 303


@pytest.mark.parametrize("extra", [{"bruteforce_max_attempts": 2}])
async def test_a_connection_may_switch_protection_off(
    app: Any, state: AppState, user: User
) -> None:
    async with state.transaction() as session:
        repos = state.repos(session)
        connection = await repos.connections.by_name(DATABASE_CONNECTION)
        assert connection is not None
        connection.options["brute_force_protection"] = False
        await repos.connections.update(connection)
    await fail(app, IP_A, 4)
    assert (await log_in(app, IP_A)).status_code == 303


@pytest.mark.parametrize(
    "extra", [{"bruteforce_max_attempts": 2, "attack_protection_allowlist": (IP_A,)}]
)
async def test_allowlisted_ips_are_exempt(app: Any, user: User) -> None:
    await fail(app, IP_A, 4)
    assert (await log_in(app, IP_A)).status_code == 303


# --- AT-01 through the password grant, unblock by the Management API and by a reset --------------


async def test_password_grant_blocks_and_an_admin_unblocks(
    app: Any, state: AppState, user: User
) -> None:
    async with browser(app, IP_A) as a, browser(app, IP_B) as b:
        for _ in range(10):
            r = await a.post("/oauth/token", data=password_grant("wrong"))
            assert r.json()["error"] == "invalid_grant"
        r = await a.post("/oauth/token", data=password_grant(PASSWORD))
        assert r.status_code == 429
        assert r.json() == {"error": "too_many_attempts", "error_description": ACCOUNT_BLOCKED}
        assert r.headers["cache-control"] == "no-store"
        assert (await b.post("/oauth/token", data=password_grant(PASSWORD))).status_code == 200
        # The block is visible and removable through /api/v2/user-blocks.
        listed = await a.get(
            "/api/v2/user-blocks", params={"identifier": EMAIL}, headers=m2m(app, "read:users")
        )
        assert listed.json() == {
            "blocked_for": [{"identifier": EMAIL, "ip": IP_A, "connection": DATABASE_CONNECTION}]
        }
        r = await a.delete(
            "/api/v2/user-blocks", params={"identifier": EMAIL}, headers=m2m(app, "update:users")
        )
        assert r.status_code == 204
        assert (await a.post("/oauth/token", data=password_grant(PASSWORD))).status_code == 200
    assert len(await events(state, "limit_wc")) == 1
    assert len(await events(state, "fepft")) == 10  # the refused attempt is not logged again


@pytest.mark.parametrize("extra", [FEW])
async def test_a_password_reset_lifts_the_block(app: Any, state: AppState, user: User) -> None:
    await fail(app, IP_A, 3)
    assert (await log_in(app, IP_A)).status_code == 429
    ticket = new_reset_ticket(state.keys, issuer=ISSUER, user=user, now=state.clock.now())
    new_password = "a brand new password 42"
    async with browser(app, IP_A) as http:
        page = await http.get("/u/reset-password", params={"ticket": ticket})
        assert page.status_code == 200, page.text
        form = {
            **hidden_fields(page.text),
            "ticket": ticket,
            "password": new_password,
            "confirm": new_password,
        }
        done = await http.post("/u/reset-password", data=form)
        assert done.status_code == 200, done.text
    assert (await log_in(app, IP_A, EMAIL, new_password)).status_code == 303


# --- AT-03: one IP, many accounts -------------------------------------------------------------


@pytest.mark.parametrize("extra", [{"suspicious_ip_login_limit": "3/hour"}])
async def test_at03_failures_across_accounts_throttle_the_ip(
    app: Any, state: AppState, user: User, clock: FixedClock
) -> None:
    for i in range(3):
        await fail(app, IP_A, 1, f"guess{i}@example.com")
    throttled = await log_in(app, IP_A)  # even a real user with the right password
    assert (throttled.status_code, page_error(throttled)) == (429, TOO_MANY)
    async with browser(app, IP_A) as a:
        r = await a.post("/oauth/token", data=password_grant(PASSWORD))
    assert r.status_code == 429
    assert r.json()["error"] == "too_many_attempts"
    assert r.headers["retry-after"] == "1200"  # 3/hour: one failure leaks away in 20 min
    assert (await log_in(app, IP_B)).status_code == 303  # other IPs are not affected
    [event] = await events(state, "limit_mu")
    assert event.data["ip"] == IP_A and event.user_id is None
    clock.advance(1200)
    assert (await log_in(app, IP_A)).status_code == 303


@pytest.mark.parametrize("extra", [{"suspicious_ip_signup_limit": "2/day"}])
async def test_at03_signups_per_ip(app: Any, state: AppState, user: User) -> None:
    async def sign_up(http: httpx.AsyncClient, n: int) -> httpx.Response:
        return await http.post(
            "/dbconnections/signup",
            json={
                "client_id": shared.SPA_ID,
                "connection": DATABASE_CONNECTION,
                "email": f"new{n}@example.com",
                "password": "a long enough password 1",
            },
        )

    async with browser(app, IP_A) as a, browser(app, IP_B) as b:
        codes = [(await sign_up(a, n)).status_code for n in range(4)]
        assert codes == [200, 200, 429, 429]
        assert (await sign_up(b, 9)).status_code == 200
    [event] = await events(state, "limit_mu")  # once per window, not per refusal
    assert event.data["ip"] == IP_A
