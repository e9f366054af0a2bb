"""What rate limits and brute-force protection add to a request (not a test: prints only).

    .venv/bin/python bench/ratelimit_http_bench.py [--redis redis://127.0.0.1:6379/15]
        [-n 5000] [--http] [--rounds 3]

1. The calls the endpoints make, timed alone against a started app (SQLite, fixed clock):
     limit_management      Management API request of a current-user token: subject → client →
                           endpoint group → tenant, in process and with Redis
     limit_token_request   /oauth/token: reads the body, IP → client → endpoint → tenant
     login_verdict         before a password check: two indexed reads (pair, IP)
     note_login_failure    after a failed one: two upserts, in a transaction of its own
   Limits are far above the load, so every check passes and writes (the dearer path).
2. `--http`: whole requests through the ASGI app, limits off and on, alternated for `--rounds`
   and the best round kept (the difference is small against a loaded machine's noise).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request

from keystead.app import create_app
from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from keystead.ratelimit import wiring
from keystead.ratelimit.protection import login_verdict, note_login_failure
from keystead.settings import Settings

ISSUER = "http://bench.test/"
SECRET = "bench-secret-" + "s" * 40
M2M = "BenchM2m0000000000000000000001"
HIGH = "; ".join(
    f"{rule}=100000/s"
    for rule in (
        "management.subject",
        "management.client",
        "management.tenant",
        "authentication.ip",
        "authentication.ipUser",
        "authentication.client",
        "authentication.tenant",
        "authentication.endpoints.token",
    )
)
OFF = {"rate_limit_preset": "off"}
ON = {"rate_limit_preset": "off", "rate_limits": HIGH}
USERS = 1000


async def measure(n: int, step: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    for i in range(min(n // 10, 300)):  # warm-up
        await step(i)
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        await step(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[math.ceil(len(samples) * 0.99) - 1]


def report(name: str, result: tuple[float, float]) -> None:
    print(f"  {name:<46} median {result[0]:9.1f} µs   p99 {result[1]:9.1f} µs", flush=True)


@asynccontextmanager
async def started(settings: dict[str, Any]) -> AsyncIterator[Starlette]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Settings(
            issuer=ISSUER, database_url=f"sqlite:///{Path(tmp) / 'b.db'}", data_dir=tmp, **settings
        ).with_defaults()
        app = create_app(config, clock=FixedClock(math.floor(time.time()) + 60))
        async with app.router.lifespan_context(app):
            state: AppState = app.state.keystead
            if config.redis_url:  # a key prefix of its own, dropped after
                prefix = f"bench:rl:{uuid.uuid4().hex}:"
                await wiring.stop(state)
                state.extras[wiring.LIMITER] = wiring.build_limiter(
                    config, None, state.clock, redis_prefix=prefix
                )
            yield app
            if config.redis_url:
                await wiring.stop(state)
                client = Redis.from_url(config.redis_url)
                keys = [k async for k in client.scan_iter(match=prefix + "*")]
                if keys:
                    await client.delete(*keys)
                await client.aclose()


def request(method: str, path: str, body: bytes = b"", ip: str = "203.0.113.1") -> Request:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": (ip, 50000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def calls(n: int, redis_url: str | None) -> None:
    print("1. The calls, alone")
    token_body = (
        f"grant_type=client_credentials&client_id={M2M}&client_secret={SECRET}"
        f"&audience={ISSUER}api/v2/"
    ).encode()
    for name, settings in (("in process", ON), ("Redis", {**ON, "redis_url": redis_url or ""})):
        if name == "Redis" and not redis_url:
            continue
        async with started(settings) as app:
            state: AppState = app.state.keystead

            async def management(i: int, state: AppState = state) -> object:
                return await wiring.limit_management(
                    state,
                    request("GET", f"/api/v2/users/auth0|{i % USERS}"),
                    sub=f"auth0|{i % USERS}",
                    client_id="spa",
                    current_user=True,
                )

            async def token(i: int, state: AppState = state) -> object:
                return await wiring.limit_token_request(
                    state, request("POST", "/oauth/token", token_body, f"203.0.113.{i % 250}")
                )

            report(f"limit_management, {name}", await measure(n, management))
            report(f"limit_token_request, {name}", await measure(n, token))

    async with started({**OFF, "suspicious_ip_login_limit": "100000/s"}) as app:
        state = app.state.keystead
        async with state.transaction() as session:
            connection = await state.repos(session).connections.by_name(DATABASE_CONNECTION)
        assert connection is not None

        async def verdict(i: int) -> object:
            return await login_verdict(state, f"198.51.100.{i % 250}", f"u{i % USERS}@b.test")

        async def failure(i: int) -> None:
            async with state.transaction() as session:
                await note_login_failure(
                    state,
                    session,
                    ip=f"198.51.100.{i % 250}",
                    username=f"u{i % USERS}@b.test",
                    connection=connection,
                    user=None,
                    client_id=M2M,
                )

        small = max(100, n // 5)  # each one commits to SQLite
        report("note_login_failure (SQLite commit)", await measure(small, failure))
        report("login_verdict (SQLite reads)", await measure(n, verdict))


async def whole_requests(n: int, rounds: int) -> None:
    print(f"2. Whole requests through the ASGI app (best of {rounds} rounds, alternated)")
    best: dict[str, tuple[float, float]] = {}
    for _ in range(rounds):
        for label, settings in (("off", OFF), ("on", ON)):
            async with started(settings) as app:
                state: AppState = app.state.keystead
                async with state.transaction() as session:
                    await state.repos(session).clients.create(
                        Client(
                            client_id=M2M,
                            name="b",
                            app_type="non_interactive",
                            client_secret=SECRET,
                        )
                    )
                    for u in range(USERS):
                        await state.repos(session).users.create(
                            User(user_id=f"auth0|{u:024d}", email=f"u{u}@b.test"),
                            connection=DATABASE_CONNECTION,
                        )
                now = int(time.time())
                tokens = [
                    state.keys.sign(
                        {
                            "iss": ISSUER,
                            "sub": f"auth0|{u:024d}",
                            "aud": ISSUER + "api/v2/",
                            "azp": "spa",
                            "iat": now,
                            "exp": now + 3600,
                            "scope": "read:current_user",
                        }
                    )
                    for u in range(USERS)
                ]
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url=ISSUER[:-1]) as http:

                    async def get(
                        i: int, http: httpx.AsyncClient = http, tokens: list[str] = tokens
                    ) -> object:
                        u = i % USERS
                        return await http.get(
                            f"/api/v2/users/auth0|{u:024d}",
                            headers={"Authorization": f"Bearer {tokens[u]}"},
                        )

                    result = await measure(n, get)
            if label not in best or result[0] < best[label][0]:
                best[label] = result
    report("GET /api/v2/users/{id}, limits off", best["off"])
    report("GET /api/v2/users/{id}, limits on (in process)", best["on"])
    print(f"  {'difference of medians':<46} {best['on'][0] - best['off'][0]:+9.1f} µs")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    redis_url: str | None = opts.redis
    try:
        client = Redis.from_url(opts.redis)
        await client.ping()
        await client.aclose()
    except OSError as exc:
        print(f"Redis at {opts.redis} unavailable ({exc}); its rows are skipped")
        redis_url = None
    await calls(opts.n, redis_url)
    if opts.http:
        await whole_requests(max(200, opts.n // 5), opts.rounds)


if __name__ == "__main__":
    asyncio.run(main())
