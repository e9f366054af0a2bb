"""Rate limits in the HTTP layer (contract §12, §0.3; security AT-07; issue 5).

Management API: subject (current-user tokens) → client → endpoint group → tenant. Authentication
API: (IP, username) on password checks → endpoint → IP → client → tenant. Headers on every
limited response, §12.1 bodies on 429, `api_limit` logged once per bucket per window. The app's
clock is a FixedClock set to now, so that tokens minted with the real time stay valid while the
buckets' arithmetic is exact.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from auth0.authentication import GetToken
from auth0.authentication.exceptions import RateLimitError
from starlette.applications import Starlette

from keystead.app import create_app
from keystead.core.apis import ClientGrant
from keystead.core.clock import FixedClock
from keystead.core.logs import LogEvent
from keystead.core.ratelimit import RateLimits, preset
from keystead.ratelimit import wiring
from keystead.ratelimit.memory import MemoryBackend
from keystead.settings import Settings
from tests.compat.conftest import free_port
from tests.conftest import ISSUER
from tests.http import test_authorize
from tests.http.helpers import (
    M2M,
    SPA,
    SPA_ORIGIN,
    bearer,
    check_error,
    m2m,
    make_client,
    make_spa,
    make_user,
    mint,
    set_tenant_setting,
    state_of,
    user_token,
)

ALICE = "auth0|aaaaaaaaaaaaaaaaaaaaaaaa"
BOB = "auth0|bbbbbbbbbbbbbbbbbbbbbbbb"
SECRET = "m2m-secret-" + "x" * 40
DETAIL = (
    "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and "
    "X-RateLimit-Reset headers."
)
template_database = test_authorize.template_database
NOW = float(math.floor(time.time())) + 300  # ahead of the tokens minted with the real time
MANAGEMENT = ISSUER + "api/v2/"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def limits() -> dict[str, Any]:
    """Settings of the test's app; a test overrides this fixture to change its limits."""
    return {}


@pytest.fixture
async def app(
    tmp_path: Path, clock: FixedClock, limits: dict[str, Any], template_database: Path
) -> AsyncIterator[Any]:
    """A copy of a migrated, keyed database (fast), with this test's limits and clock."""
    settings = Settings(
        issuer=ISSUER,
        database_url=f"sqlite:///{tmp_path / 'keystead.db'}",
        data_dir=str(tmp_path),
        **limits,
    ).with_defaults()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{template_database}{suffix}").exists():
            shutil.copyfile(f"{template_database}{suffix}", tmp_path / f"keystead.db{suffix}")
    application = create_app(settings, clock=clock, migrate=False)
    async with application.router.lifespan_context(application):
        await make_tenant(application)
        yield application


async def make_tenant(app: Starlette) -> None:
    """An SPA, a machine client with a grant for the Management API, Alice and Bob."""
    await make_spa(app)
    await make_client(
        app,
        client_id=M2M,
        name="M2M",
        app_type="non_interactive",
        client_secret=SECRET,
        grant_types=("client_credentials", "password"),
    )
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).client_grants.create(
            ClientGrant(id="", client_id=M2M, audience=MANAGEMENT, scope=("read:users",))
        )
    await make_user(app, user_id=ALICE, email="alice@example.com")
    await make_user(app, user_id=BOB, email="bob@example.com")


async def api_limits(app: Starlette) -> list[LogEvent]:
    state = state_of(app)
    async with state.transaction() as session:
        return [e for e in await state.logs(session).list(limit=None) if e.type == "api_limit"]


def rate_headers(r: httpx.Response) -> tuple[int, int, int]:
    h = r.headers
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"])


async def get_self(http: httpx.AsyncClient, app: Starlette, user_id: str) -> httpx.Response:
    return await http.get(f"/api/v2/users/{user_id}", headers=user_token(app, user_id))


# --- Management API: the per-subject bucket (contract §12.2, §14 #1) -----------------------------


async def test_a_user_draining_their_bucket_leaves_others_alone(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    for i in range(10):
        r = await get_self(http, app, ALICE)
        assert r.status_code == 200, r.text
        assert rate_headers(r) == (10, 9 - i, int(NOW) + 6 * (i + 1))  # 10/min: 6 s a token
    refused = await get_self(http, app, ALICE)
    check_error(refused, 429, DETAIL, "too_many_requests")
    assert refused.json()["error"] == "Too Many Requests"
    assert rate_headers(refused) == (10, 0, int(NOW) + 60)
    assert refused.headers["retry-after"] == "6"
    # Bob and the tenant's machine client are served as before.
    assert (await get_self(http, app, BOB)).status_code == 200
    r = await http.get("/api/v2/users", headers=m2m(app))
    assert r.status_code == 200
    assert rate_headers(r)[0] == 100  # the client bucket of the self-hosted preset


async def test_the_subject_bucket_refills_on_the_clock(
    http: httpx.AsyncClient, app: Starlette, clock: FixedClock
) -> None:
    for _ in range(10):
        assert (await get_self(http, app, ALICE)).status_code == 200
    clock.advance(5.9)
    assert (await get_self(http, app, ALICE)).status_code == 429
    clock.advance(0.1)  # 6 s: exactly one token back
    r = await get_self(http, app, ALICE)
    assert r.status_code == 200
    assert rate_headers(r) == (10, 0, int(NOW) + 66)
    assert (await get_self(http, app, ALICE)).status_code == 429


async def test_machine_tokens_have_no_subject_bucket(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    for _ in range(15):  # past a user's 10: client credentials draw from client → tenant
        r = await http.get(f"/api/v2/users/{ALICE}", headers=m2m(app))
        assert r.status_code == 200
    assert rate_headers(r) == (100, 85, int(NOW) + 1)  # 50/s: 15 tokens back in 0.3 s


async def test_headers_on_errors_too(http: httpx.AsyncClient, app: Starlette) -> None:
    r = await http.get(f"/api/v2/users/{BOB}", headers=user_token(app, ALICE))
    assert r.status_code == 403
    assert rate_headers(r) == (10, 9, int(NOW) + 6)
    r = await http.get("/api/v2/users/auth0|nobody", headers=m2m(app))
    assert r.status_code == 404
    assert "x-ratelimit-limit" in r.headers
    # No verified token: its IP's own bucket (self-hosted: the authentication.ip figure).
    r = await http.get(f"/api/v2/users/{ALICE}")
    assert r.status_code == 401
    assert rate_headers(r)[:2] == (300, 299)


async def test_api_limit_is_logged_once_per_bucket_per_window(
    http: httpx.AsyncClient, app: Starlette, clock: FixedClock
) -> None:
    for _ in range(10):
        await get_self(http, app, ALICE)
    for _ in range(30):  # a spammer: thirty refusals, one log row
        assert (await get_self(http, app, ALICE)).status_code == 429
    events = await api_limits(app)
    assert len(events) == 1
    event = events[0]
    assert event.description == "The current_user scope limit has been reached"
    assert event.user_id == ALICE and event.client_id == SPA
    assert event.data["details"]["bucket"] == "management.subject"
    # Another user's bucket is another bucket.
    for _ in range(11):
        await get_self(http, app, BOB)
    assert len(await api_limits(app)) == 2
    clock.advance(60)  # a new window for Alice
    for _ in range(11):
        await get_self(http, app, ALICE)
    assert len(await api_limits(app)) == 3


async def test_cors_exposes_the_headers(http: httpx.AsyncClient, app: Starlette) -> None:
    r = await http.get(
        f"/api/v2/users/{ALICE}", headers={**user_token(app, ALICE), "Origin": SPA_ORIGIN}
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SPA_ORIGIN
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= exposed


# --- Management API: shared buckets and presets ----------------------------------------------


@pytest.mark.parametrize("limits", [{"rate_limit_preset": "auth0-free"}])
async def test_auth0_free_tenant_bucket_says_global_limit(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    assert [(await http.get("/api/v2/users", headers=m2m(app))).status_code for _ in range(2)] == [
        200,
        200,
    ]
    r = await http.get("/api/v2/users", headers=m2m(app))
    check_error(r, 429, "Global limit has been reached", "too_many_requests")
    assert rate_headers(r) == (2, 0, int(NOW) + 1)
    assert r.headers["retry-after"] == "1"
    # A refused user's own bucket keeps its token: nothing is drawn when any bucket refuses.
    r = await get_self(http, app, ALICE)
    assert r.status_code == 429
    assert r.json()["message"] == "Global limit has been reached"


@pytest.mark.parametrize("limits", [{"rate_limit_preset": "auth0-paid"}])
async def test_auth0_paid_has_endpoint_groups_not_a_tenant_bucket(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    r = await http.get("/api/v2/clients", headers=m2m(app, scope="read:clients"))
    assert rate_headers(r)[0] == 5  # read clients: burst 5, 100/min
    for _ in range(4):
        await http.get("/api/v2/clients", headers=m2m(app, scope="read:clients"))
    r = await http.get("/api/v2/clients", headers=m2m(app, scope="read:clients"))
    check_error(r, 429, DETAIL)
    r = await http.get("/api/v2/users", headers=m2m(app))  # another group: still served
    assert r.status_code == 200
    assert rate_headers(r)[0] == 40


@pytest.mark.parametrize(
    "limits", [{"rate_limit_preset": "off", "rate_limits": "management.subject=2/min"}]
)
async def test_environment_overrides_the_preset(http: httpx.AsyncClient, app: Starlette) -> None:
    assert [(await get_self(http, app, ALICE)).status_code for _ in range(3)] == [200, 200, 429]
    r = await http.get("/api/v2/users", headers=m2m(app))
    assert r.status_code == 200
    assert "x-ratelimit-limit" not in r.headers  # `off`: nothing limits a machine client


async def test_tenant_file_rate_limits_are_read_at_start(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    state = state_of(app)
    await set_tenant_setting(
        app, "rateLimits", {"preset": "off", "management": {"subject": "3/min burst 1"}}
    )
    await wiring.stop(state)
    await wiring.start(state)  # what the next start does
    limiter = wiring.limiter_of(state)
    assert limiter is not None
    assert limiter.limits == RateLimits(
        {**preset("off").specs, "management.subject": limiter.limits["management.subject"]}
    )
    assert [(await get_self(http, app, ALICE)).status_code for _ in range(2)] == [200, 429]


def test_settings_reject_unknown_presets_and_rules() -> None:
    from keystead.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown rate-limit preset"):
        Settings(rate_limit_preset="auth0-gold").with_defaults()
    with pytest.raises(ConfigError, match="RULE=LIMIT"):
        Settings(rate_limits="management.everyone=1/s").with_defaults()
    env = Settings.from_env(
        {"KEYSTEAD_RATE_LIMIT_PRESET": "auth0-free", "KEYSTEAD_RATE_LIMIT_FAIL_CLOSED": "yes"}
    )
    assert (env.rate_limit_preset, env.rate_limit_fail_closed) == ("auth0-free", True)


async def test_the_in_process_backend_is_the_default(app: Starlette) -> None:
    limiter = wiring.limiter_of(state_of(app))
    assert limiter is not None and isinstance(limiter.backend, MemoryBackend)


# --- Authentication API -------------------------------------------------------------------------


def client_credentials(client_id: str = M2M, secret: str = SECRET) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "audience": ISSUER + "api/v2/",
    }


@pytest.mark.parametrize(
    "limits", [{"rate_limit_preset": "off", "rate_limits": "authentication.client=3/min"}]
)
async def test_token_endpoint_per_client(
    http: httpx.AsyncClient, app: Starlette, clock: FixedClock
) -> None:
    ok = [await http.post("/oauth/token", data=client_credentials()) for _ in range(3)]
    assert [r.status_code for r in ok] == [200] * 3
    assert [rate_headers(r) for r in ok] == [
        (3, 2, int(NOW) + 20),
        (3, 1, int(NOW) + 40),
        (3, 0, int(NOW) + 60),
    ]
    refused = await http.post("/oauth/token", data=client_credentials())
    assert refused.status_code == 429
    assert refused.json() == {"error": "too_many_requests", "error_description": DETAIL}
    assert refused.headers["retry-after"] == "20"
    assert refused.headers["cache-control"] == "no-store"
    # Refusals are not failed exchanges: no feccft row per refused request.
    state = state_of(app)
    async with state.transaction() as session:
        types = [e.type for e in await state.logs(session).list(limit=None)]
    assert types.count("api_limit") == 1
    assert "feccft" not in types
    # Another client is not affected.
    other = await http.post("/oauth/token", data=client_credentials("Other0000000000000000", "x"))
    assert other.status_code == 401


@pytest.mark.parametrize(
    "limits", [{"rate_limit_preset": "off", "rate_limits": "authentication.ip=2/min"}]
)
async def test_token_endpoint_per_ip(app: Starlette) -> None:
    async def post(ip: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(ip, 1234))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as h:
            return await h.post("/oauth/token", data={"grant_type": "nonsense"})

    assert [(await post("203.0.113.1")).status_code for _ in range(3)] == [400, 400, 429]
    assert (await post("203.0.113.2")).status_code == 400  # AT-07: other IPs still served


@pytest.mark.parametrize(
    "limits",
    [{"rate_limit_preset": "off", "rate_limits": "authentication.ipUser=2/min"}],
)
async def test_password_checks_per_ip_and_username(http: httpx.AsyncClient, app: Starlette) -> None:
    def attempt(username: str) -> dict[str, str]:
        return {
            "grant_type": "password",
            "username": username,
            "password": "wrong",
            "client_id": M2M,
            "client_secret": SECRET,
        }

    codes = [(await http.post("/oauth/token", data=attempt("alice@example.com"))).status_code]
    codes.append((await http.post("/oauth/token", data=attempt("ALICE@example.com"))).status_code)
    codes.append((await http.post("/oauth/token", data=attempt("alice@example.com"))).status_code)
    assert codes[2] == 429 and 429 not in codes[:2]
    assert (await http.post("/oauth/token", data=attempt("bob@example.com"))).status_code != 429
    # Other grants have no username bucket.
    assert (await http.post("/oauth/token", data=client_credentials())).status_code != 429


async def test_token_429_is_readable_by_the_spa(app: Starlette) -> None:
    state = state_of(app)
    await wiring.stop(state)
    state.extras[wiring.LIMITER] = wiring.Limiter(
        RateLimits({**preset("off").specs}).updated(
            {"authentication.client": preset("auth0-free")["management.tenant"]}
        ),
        clock=state.clock,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as h:
        body = {"grant_type": "refresh_token", "client_id": SPA, "refresh_token": "x"}
        headers = {"Origin": SPA_ORIGIN}
        first = await h.post("/oauth/token", data=body, headers=headers)
        assert first.status_code == 403 and "x-ratelimit-limit" in first.headers
        await h.post("/oauth/token", data=body, headers=headers)
        r = await h.post("/oauth/token", data=body, headers=headers)
    assert r.status_code == 429
    assert r.headers["access-control-allow-origin"] == SPA_ORIGIN
    assert "X-RateLimit-Reset" in r.headers["access-control-expose-headers"]
    assert "access-control-expose-headers" in first.headers


async def test_userinfo_per_user_id(http: httpx.AsyncClient, app: Starlette) -> None:
    def token(user_id: str) -> dict[str, str]:
        return bearer(mint(app, sub=user_id, scope="openid", aud=[ISSUER + "userinfo"], azp=SPA))

    # §12.2: burst 10, then 5 a minute, per user id (§14 #3: configurable).
    codes = [(await http.get("/userinfo", headers=token(ALICE))).status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]
    r = await http.get("/userinfo", headers={**token(ALICE), "Origin": SPA_ORIGIN})
    assert r.status_code == 429
    assert r.json() == {"error": "too_many_requests", "error_description": DETAIL}
    assert rate_headers(r) == (10, 0, int(NOW) + 120)
    assert r.headers["retry-after"] == "12"
    assert "X-RateLimit-Limit" in r.headers.get("access-control-expose-headers", "")
    ok = await http.get("/userinfo", headers=token(BOB))
    assert ok.status_code == 200
    assert rate_headers(ok) == (10, 9, int(NOW) + 12)


@pytest.mark.parametrize("limits", [{"rate_limits": "authentication.endpoints.userinfo=off"}])
async def test_userinfo_limit_can_be_switched_off(http: httpx.AsyncClient, app: Starlette) -> None:
    token = bearer(mint(app, sub=ALICE, scope="openid", aud=[ISSUER + "userinfo"], azp=SPA))
    codes = {(await http.get("/userinfo", headers=token)).status_code for _ in range(12)}
    assert codes == {200}


async def test_change_password_per_ip_and_email(http: httpx.AsyncClient, app: Starlette) -> None:
    def body(email: str) -> dict[str, str]:
        return {"email": email, "connection": "Username-Password-Authentication"}

    codes = [
        (await http.post("/dbconnections/change_password", data=body("alice@example.com")))
        for _ in range(11)
    ]
    assert [r.status_code for r in codes] == [200] * 10 + [429]
    assert rate_headers(codes[0]) == (10, 9, int(NOW) + 60)
    assert codes[-1].json()["error"] == "too_many_requests"
    other = await http.post("/dbconnections/change_password", data=body("bob@example.com"))
    assert other.status_code == 200


# --- auth0-python v6 against a live server (contract §12.1: X-RateLimit-Reset as an integer) ----


@pytest.mark.compat
def test_auth0_python_raises_rate_limit_error_with_reset_at(tmp_path: Path) -> None:
    settings = Settings(
        issuer=ISSUER,
        database_url=f"sqlite:///{tmp_path / 'live.db'}",
        data_dir=str(tmp_path),
        rate_limit_preset="off",
        rate_limits="authentication.client=2/min",
    ).with_defaults()
    clock = FixedClock(NOW)
    asyncio.run(_prepare(settings, clock))  # migrated, with the tenant, before serving
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, clock=clock, migrate=False),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        sdk = GetToken(f"127.0.0.1:{port}", M2M, client_secret=SECRET, protocol="http")
        for _ in range(2):
            assert sdk.client_credentials(MANAGEMENT)["token_type"] == "Bearer"
        with pytest.raises(RateLimitError) as caught:
            sdk.client_credentials(MANAGEMENT)
    finally:
        server.should_exit = True
        thread.join(10)
    error = caught.value
    assert error.reset_at == int(NOW) + 60  # full again a minute after the first token
    assert error.status_code == 429
    assert error.error_code == "too_many_requests"
    assert error.message == DETAIL


async def _prepare(settings: Settings, clock: FixedClock) -> None:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        await make_tenant(application)
