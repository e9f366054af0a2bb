"""Cost of one rate-limit check: median and p99 in µs, in-process and with Redis (not a test).

    .venv/bin/python bench/ratelimit_bench.py [--redis redis://127.0.0.1:6379/15] [-n 20000]

Each check is a Management API request of a current-user token: subject → client → tenant,
spread over 1,000 users, with limits high enough that every check passes and so writes (the
dearer path). Redis is compared with a bare PING, i.e. one round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from keystead.core.ratelimit import parse_rate_limits
from keystead.ratelimit import Limiter, MemoryBackend
from keystead.ratelimit.redis_backend import RedisBackend


async def measure(n: int, step: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    for i in range(min(n, 500)):  # warm-up: script loaded, connections open
        await step(i)
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        await step(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def report(name: str, result: tuple[float, float]) -> None:
    print(f"{name:<34} median {result[0]:8.1f} µs   p99 {result[1]:8.1f} µs")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("-n", type=int, default=20_000)
    opts = parser.parse_args()
    limits = parse_rate_limits(
        {"management": {"subject": "100000/s", "client": "100000/s", "tenant": "100000/s"}},
        preset_name="off",
    )

    memory = Limiter(limits, MemoryBackend())
    buckets = [memory.management(client_id="spa", subject=f"auth0|{u}") for u in range(1000)]
    report(
        "in-process check (3 buckets)",
        await measure(opts.n, lambda i: memory.check(buckets[i % 1000])),
    )
    report(
        "in-process: build keys + check",
        await measure(
            opts.n,
            lambda i: memory.check(memory.management(client_id="spa", subject=f"auth0|{i % 1000}")),
        ),
    )

    prefix = f"bench:rl:{uuid.uuid4().hex}:"
    client = Redis.from_url(opts.redis)
    try:
        await client.ping()
    except OSError as exc:
        print(f"Redis at {opts.redis} unavailable ({exc}); skipped")
        return
    shared = Limiter(limits, RedisBackend(opts.redis, prefix=prefix))
    n = max(1, opts.n // 4)
    report("Redis PING (one round trip)", await measure(n, lambda i: client.ping()))
    report(
        "Redis check (3 buckets, 1 script)",
        await measure(n, lambda i: shared.check(buckets[i % 1000])),
    )
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
    await shared.aclose()


if __name__ == "__main__":
    asyncio.run(main())
