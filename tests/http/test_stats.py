"""/api/v2/stats/active-users (contract §10.9): users who logged in during the last 30 days.

The app runs on a fixed clock, so "the last 30 days" is exact; every 200 is checked against
Auth0's OpenAPI (a bare number).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.http.helpers import (
    WallClock,
    check_error,
    check_oas,
    m2m,
    make_user,
    module_app,
    module_http,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

P = "/api/v2/stats/active-users"
READ = "read:stats"
DAY = 24 * 60 * 60


@pytest.fixture(scope="module")
def clock() -> WallClock:
    return WallClock()


app = module_app(fixed_clock=True)
http = module_http()


async def active_users(http: httpx.AsyncClient, app: Any) -> Any:
    r = await http.get(P, headers=m2m(app, READ))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return check_oas(r, "GET", "/stats/active-users")


async def test_counts_users_who_logged_in_within_30_days(
    http: httpx.AsyncClient, app: Any, clock: WallClock
) -> None:
    before = await active_users(http, app)
    assert type(before) is int  # a bare JSON integer, not an object or a float
    now = clock.now()
    await make_user(app, email="one-day@example.com", last_login=now - 1 * DAY)
    await make_user(app, email="29-days@example.com", last_login=now - 29 * DAY)
    await make_user(app, email="31-days@example.com", last_login=now - 31 * DAY)
    await make_user(app, email="never@example.com")
    assert await active_users(http, app) == before + 2


async def test_the_window_follows_the_clock(
    http: httpx.AsyncClient, app: Any, clock: WallClock
) -> None:
    start = await active_users(http, app)
    await make_user(app, email="edge@example.com", last_login=clock.now() - 30 * DAY + 60)
    assert await active_users(http, app) == start + 1
    clock.shift = 120  # that login is now 30 days and a minute old
    try:
        assert await active_users(http, app) == start
    finally:
        clock.shift = 0


async def test_without_read_stats_is_403(http: httpx.AsyncClient, app: Any) -> None:
    r = await http.get(P, headers=m2m(app, "read:users read:tenant_settings"))
    check_error(r, 403, "Insufficient scope, expected any of: read:stats", "insufficient_scope")


async def test_without_a_token_is_401(http: httpx.AsyncClient) -> None:
    r = await http.get(P)
    check_error(r, 401, "Missing authentication")


async def test_a_current_user_token_is_403(http: httpx.AsyncClient, app: Any) -> None:
    me = await make_user(app, email="spa-user@example.com")
    r = await http.get(P, headers=user_token(app, me.user_id))
    check_error(r, 403, "Insufficient scope, expected any of: read:stats", "insufficient_scope")
