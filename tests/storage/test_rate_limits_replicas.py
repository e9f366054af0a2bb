"""Two Keystead app instances sharing one Redis enforce one limit together, over HTTP (§12;
security RE-06): the per-subject bucket, the api_limit log gate, and Redis lost and back.

The apps share one database (as replicas do) and one fixed clock. The replica test uses the
CI Redis (KEYSTEAD_TEST_REDIS_URL; 127.0.0.1:6379/15 under CI=true) with a key prefix of its
own; the outage test stops and restarts a redis-server of its own.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from keystead.app import create_app
from keystead.core.clock import FixedClock
from keystead.ratelimit import wiring
from keystead.ratelimit.redis_backend import RedisBackend
from keystead.settings import Settings
from tests.conftest import ISSUER
from tests.http.helpers import m2m, make_spa, make_user, state_of, user_token
from tests.storage import test_ratelimit_redis as shared
from tests.storage.test_ratelimit_redis import RedisProcess

# The Redis fixtures of the limiter's own storage tests.
redis_url = shared.redis_url
prefix = shared.prefix
own_redis = shared.own_redis
warnings_logged = shared.warnings_logged

pytestmark = pytest.mark.redis

ALICE = "auth0|aaaaaaaaaaaaaaaaaaaaaaaa"
BOB = "auth0|bbbbbbbbbbbbbbbbbbbbbbbb"
NOW = float(math.floor(time.time())) + 300  # ahead of the minted tokens' iat


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


async def start_replicas(
    stack: AsyncExitStack, tmp_path: Path, clock: FixedClock, **settings: Any
) -> list[Starlette]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = Settings(
        issuer=ISSUER,
        database_url=f"sqlite:///{tmp_path / 'shared.db'}",
        data_dir=str(tmp_path),
        **settings,
    ).with_defaults()
    apps = []
    for _ in range(2):
        app = create_app(config, clock=clock)
        await stack.enter_async_context(app.router.lifespan_context(app))
        apps.append(app)
    await make_spa(apps[0])
    for user_id in (ALICE, BOB):
        await make_user(apps[0], user_id=user_id, email=f"{user_id[-3:]}@example.com")
    return apps


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER[:-1])


@pytest.fixture
async def replicas(
    tmp_path: Path, clock: FixedClock, redis_url: str, prefix: str
) -> AsyncIterator[list[Starlette]]:
    async with AsyncExitStack() as stack:
        apps = await start_replicas(stack, tmp_path, clock, redis_url=redis_url)
        for app in apps:
            state = state_of(app)
            started = wiring.limiter_of(state)
            # KEYSTEAD_REDIS_URL gave each replica a Redis backend at start ...
            assert started is not None and isinstance(started.backend, RedisBackend)
            await wiring.stop(state)
            # ... here with this test's own key prefix, so that runs cannot meet.
            state.extras[wiring.LIMITER] = wiring.build_limiter(
                state.settings, None, clock, redis_prefix=prefix
            )
        yield apps


async def test_two_replicas_enforce_one_subject_limit(replicas: list[Starlette]) -> None:
    a, b = replicas
    async with client(a) as http_a, client(b) as http_b:

        async def alice(i: int) -> httpx.Response:
            http = http_a if i % 2 else http_b
            return await http.get(f"/api/v2/users/{ALICE}", headers=user_token(a, ALICE))

        codes = [(await alice(i)).status_code for i in range(12)]
        assert codes == [200] * 10 + [429] * 2  # 10/min, whichever replica answers
        refused = await alice(13)
        assert refused.headers["x-ratelimit-reset"] == str(int(NOW) + 60)
        assert refused.headers["retry-after"] == "6"
        # Bob and the machine client are served by both.
        for http in (http_a, http_b):
            r = await http.get(f"/api/v2/users/{BOB}", headers=user_token(a, BOB))
            assert r.status_code == 200
            assert (await http.get("/api/v2/users", headers=m2m(a))).status_code == 200
    # One api_limit event for Alice's bucket, though both replicas refused her. Each replica
    # writes its log events in batches: flush both before reading.
    for replica in replicas:
        writer = state_of(replica).log_writer
        assert writer is not None
        await writer.flush()
    state = state_of(a)
    async with state.transaction() as session:
        events = [e for e in await state.logs(session).list(limit=None) if e.type == "api_limit"]
    assert [e.user_id for e in events] == [ALICE]


@pytest.fixture
async def outage_replicas(
    tmp_path: Path, clock: FixedClock, own_redis: RedisProcess
) -> AsyncIterator[tuple[Starlette, Starlette]]:
    """An open and a closed replica on a Redis that the test can stop; quick retries."""
    async with AsyncExitStack() as stack:
        opened = (await start_replicas(stack, tmp_path / "open", clock, redis_url=own_redis.url))[0]
        closed = (
            await start_replicas(
                stack,
                tmp_path / "closed",
                clock,
                redis_url=own_redis.url,
                rate_limit_fail_closed=True,
            )
        )[0]
        for app in (opened, closed):
            limiter = wiring.limiter_of(state_of(app))
            assert limiter is not None and isinstance(limiter.backend, RedisBackend)
            limiter.backend.retry_backoff, limiter.backend.max_backoff = 0.05, 0.2
        yield opened, closed


async def test_redis_loss_and_return_over_http(
    outage_replicas: tuple[Starlette, Starlette],
    own_redis: RedisProcess,
    warnings_logged: list[str],
) -> None:
    opened, closed = outage_replicas

    async def get_alice(app: Starlette) -> httpx.Response:
        async with client(app) as http:
            return await http.get(f"/api/v2/users/{ALICE}", headers=user_token(app, ALICE))

    assert (await get_alice(opened)).status_code == 200
    own_redis.stop()
    # Fail-open (the default): served on per-process buckets, with one warning, no 5xx.
    codes = [(await get_alice(opened)).status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]
    assert len([w for w in warnings_logged if "unreachable" in w]) == 1
    assert "per-process limits" in warnings_logged[0]
    # Fail-closed (rate_limit_fail_closed): refused, with Retry-After.
    refused = await get_alice(closed)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["errorCode"] == "too_many_requests"

    own_redis.start()  # an empty Redis: shared limits start afresh, for both replicas
    for app in (closed, opened):
        deadline = time.monotonic() + 3
        while (await get_alice(app)).status_code != 200:
            assert time.monotonic() < deadline, "a replica did not resume"
            await asyncio.sleep(0.05)
    assert len([w for w in warnings_logged if "reachable again" in w]) == 2
    # Shared again: the two replicas drew 2 of Alice's 10 from the one Redis bucket.
    r = await get_alice(opened)
    assert (r.status_code, r.headers["x-ratelimit-remaining"]) == (200, "7")
