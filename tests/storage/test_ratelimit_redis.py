"""Redis rate-limit store: replicas share one limit, no over-admission, outage and return (§12)."""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from keystead.core.clock import FixedClock
from keystead.core.ratelimit import Bucket, BucketSpec, parse_rate_limits
from keystead.ratelimit import Limiter, MemoryBackend
from keystead.ratelimit.redis_backend import RedisBackend
from tests.conftest import REDIS_URL, need_service

pytestmark = pytest.mark.redis

LIMITS = parse_rate_limits(
    {}, preset_name="off", overrides="management.subject=10/min; management.tenant=100/min burst 30"
)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    need_service("Redis", bool(REDIS_URL), "set KEYSTEAD_TEST_REDIS_URL")
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:
        need_service("Redis", False, f"{REDIS_URL}: {exc}")
    finally:
        await client.aclose()
    yield REDIS_URL


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    value = f"test:rl:{uuid.uuid4().hex}:"
    yield value
    client = Redis.from_url(redis_url)
    keys = [k async for k in client.scan_iter(match=value + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def replicas(redis_url: str, prefix: str, clock: FixedClock) -> AsyncIterator[list[Limiter]]:
    """Two limiters, as two server processes would have, sharing one Redis and one clock."""
    limiters = [Limiter(LIMITS, RedisBackend(redis_url, prefix=prefix), clock) for _ in range(2)]
    yield limiters
    for limiter in limiters:
        await limiter.aclose()


async def test_two_replicas_enforce_one_limit(replicas: list[Limiter]) -> None:
    a, b = replicas
    alice = a.management(client_id="spa", subject="auth0|alice")
    allowed = [(await (a if i % 2 else b).check(alice)).allowed for i in range(20)]
    assert allowed == [True] * 10 + [False] * 10
    refused = await b.check(alice)
    assert (refused.bucket_name, refused.retry_after) == ("management.subject", 6)
    # Alice's refusals drew nothing from the tenant: 20 of its 30 tokens are left, for anyone.
    m2m = b.management(client_id="m2m")
    assert [(await a.check(m2m)).allowed for _ in range(21)] == [True] * 20 + [False]
    tenant_empty = await b.check(b.management(client_id="spa", subject="auth0|bob"))
    assert (tenant_empty.allowed, tenant_empty.bucket_name) == (False, "management.tenant")


async def test_concurrent_checks_never_over_admit(replicas: list[Limiter]) -> None:
    bucket = [Bucket("burst25", BucketSpec(25, 25, 1), "b")]
    results = await asyncio.gather(*(replicas[i % 2].check(bucket) for i in range(200)))
    assert sum(d.allowed for d in results) == 25
    assert sorted(d.remaining for d in results if d.allowed) == list(range(25))


async def test_redis_decides_exactly_as_memory_does(redis_url: str, prefix: str) -> None:
    """The Lua script and the core arithmetic agree, refill and reset included."""
    rng = random.Random(7)
    clock = FixedClock()
    redis = Limiter(LIMITS, RedisBackend(redis_url, prefix=prefix), clock)
    memory = Limiter(LIMITS, MemoryBackend(), clock)
    users = ["auth0|a", "auth0|b", "auth0|c"]
    for _ in range(300):
        clock.advance(rng.choice([0, 0, 0.05, 0.5, 3.3, 7]))
        sub = rng.choice([*users, None])
        buckets = redis.management(client_id="c", subject=sub)
        assert await redis.check(buckets) == await memory.check(buckets)
    await redis.aclose()


async def test_buckets_expire_once_full_again(redis_url: str, prefix: str) -> None:
    limiter = Limiter(LIMITS, RedisBackend(redis_url, prefix=prefix), FixedClock())
    await limiter.check(limiter.management(client_id="c", subject="auth0|a"))
    client = Redis.from_url(redis_url)
    ttl = await client.pttl(prefix + "mgmt:sub:auth0|a")
    assert 6_000 < ttl <= 7_000  # one token back in 6 s, plus a second of slack
    await client.aclose()
    await limiter.aclose()


# --- Outage and return -------------------------------------------------------------------------


SERVER_ARGS = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")  # restarts empty


class RedisProcess:
    """A redis-server of this test's own, on a free port, that can be stopped and started."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), *SERVER_ARGS],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=5)
            self.proc = None


@pytest.fixture
def own_redis(redis_url: str) -> Iterator[RedisProcess]:
    need_service("redis-server", shutil.which("redis-server") is not None, "not on PATH")
    server = RedisProcess()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def warnings_logged() -> Iterator[list[str]]:
    """Warnings of keystead.ratelimit, caught on its own logger (it may not propagate)."""
    seen: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("keystead.ratelimit")
    logger.addHandler(handler)
    yield seen
    logger.removeHandler(handler)


def outage_limiters(url: str, clock: FixedClock) -> tuple[Limiter, Limiter, Limiter]:
    def make(fail_closed: bool) -> Limiter:
        backend = RedisBackend(url, fail_closed=fail_closed, retry_backoff=0.05, max_backoff=10)
        return Limiter(LIMITS, backend, clock)

    return make(False), make(False), make(True)


async def wait_until_shared(limiter: Limiter) -> None:
    backend = limiter.backend
    assert isinstance(backend, RedisBackend)
    deadline = time.monotonic() + 1
    while not backend.available and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        await limiter.check([Bucket("probe", BucketSpec(1000, 1000, 1))])
    assert backend.available


async def test_outage_fails_open_or_closed_and_limiting_resumes(
    own_redis: RedisProcess, clock: FixedClock, warnings_logged: list[str]
) -> None:
    a, b, closed = outage_limiters(own_redis.url, clock)
    alice = a.management(client_id="spa", subject="auth0|alice")
    for _ in range(10):
        assert (await a.check(alice)).allowed
    assert not (await b.check(alice)).allowed  # shared while Redis is up

    own_redis.stop()
    # Fail-open: served, on per-process buckets (fresh ones, so alice passes again) ...
    served = [await a.check(alice) for _ in range(12)]
    assert [d.allowed for d in served] == [True] * 10 + [False] * 2
    await asyncio.sleep(0.12)  # past the backoff: Redis is retried, and still down
    assert (await a.check(a.management(client_id="m2m"))).allowed
    # Concurrent failures schedule one retry, not a backoff doubled per request.
    m2m = b.management(client_id="m2m")
    assert all(d.allowed for d in await asyncio.gather(*(b.check(m2m) for _ in range(20))))
    # ... with one warning per limiter for the whole outage, not one per request.
    assert len([w for w in warnings_logged if "unreachable" in w]) == 2
    assert "per-process limits" in warnings_logged[0]
    # Fail-closed: refused, with a Retry-After.
    refused = await closed.check(alice)
    assert (refused.allowed, refused.bucket_name) == (False, "store-unavailable")
    assert refused.retry_after >= 1

    own_redis.start()  # an empty Redis: limits start afresh, shared again
    for limiter in (a, b, closed):
        await wait_until_shared(limiter)
    assert any("reachable again" in w for w in warnings_logged)
    bob = a.management(client_id="spa", subject="auth0|bob")
    allowed = [(await (a, b, closed)[i % 3].check(bob)).allowed for i in range(12)]
    assert allowed == [True] * 10 + [False] * 2
    for limiter in (a, b, closed):
        await limiter.aclose()
