"""Shared rate-limit store in Redis: one atomic Lua script per check, over all of its buckets.

Replicas pointed at one Redis enforce one limit together: the script refills, checks and (only
if every bucket passes) draws from all of a request's buckets with no other command in between.

Time comes from the limiter's clock, passed in, not from Redis TIME: decisions and the
X-RateLimit-Reset header then share one clock and tests can fix it. Replicas are assumed
NTP-synced; a replica whose clock is behind a bucket's stamp refills nothing (the stamp only
moves forward), so skew can over-admit at most once by skew*rate tokens, never repeatedly.

When Redis cannot be reached the check does not fail the request. Default (fail-open): the
process falls back to its own in-memory buckets (per-process limits, security case RE-06) and
logs one warning per outage. `fail_closed=True` refuses instead (429 with Retry-After). Either way
Redis is retried after `retry_backoff` seconds (doubling up to `max_backoff`), and shared
limiting resumes on the first check that reaches it. Keys live under `prefix`; all of one
request's keys go to one script, so Redis Cluster is not supported (one Redis, or Sentinel).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from keystead.core.ratelimit import EPSILON, UNLIMITED, Bucket, Decision, decide
from keystead.ratelimit.memory import MemoryBackend

log = logging.getLogger("keystead.ratelimit")

# KEYS: bucket keys. ARGV: now, cost, epsilon, then burst and rate (tokens/s) of each key.
# Returns {allowed, level_1, …}: every level is the tokens available before drawing, as text
# because Redis truncates Lua numbers to integers.
CHECK_SCRIPT = """
local now, cost, eps = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local levels, stamps, allowed = {}, {}, 1
for i, key in ipairs(KEYS) do
  local burst, rate = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local state = redis.call('HMGET', key, 'v', 't')
  local level, stamp = burst, now
  if state[1] then
    level, stamp = tonumber(state[1]), tonumber(state[2])
    if now > stamp then
      level, stamp = level + (now - stamp) * rate, now
    end
    level = math.min(burst, level)
  end
  levels[i], stamps[i] = level, stamp
  if level + eps < cost then allowed = 0 end
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  if allowed == 1 then
    local burst, rate = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
    local left = levels[i] - cost
    local fmt = '%.17g'
    redis.call('HSET', key, 'v', string.format(fmt, left), 't', string.format(fmt, stamps[i]))
    -- Once full again the bucket equals no bucket, so Redis may drop it then.
    redis.call('PEXPIRE', key, math.ceil((burst - left) / rate * 1000) + 1000)
  end
  out[i + 1] = string.format('%.17g', levels[i])
end
return out
"""


class RedisBackend:
    def __init__(
        self,
        redis: Redis | str,
        *,
        prefix: str = "keystead:rl:",
        fail_closed: bool = False,
        retry_backoff: float = 0.5,
        max_backoff: float = 5.0,
        timeout: float = 0.5,
        max_connections: int = 16,
        fallback: MemoryBackend | None = None,
    ) -> None:
        if isinstance(redis, str):
            # No client-side retries: an outage is noticed within one timeout, not ten.
            pool = ConnectionPool.from_url(
                redis,
                max_connections=max_connections,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
            redis = Redis.from_pool(pool)
        self.redis = redis
        self.prefix = prefix
        self.fail_closed = fail_closed
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self.fallback = MemoryBackend() if fallback is None else fallback
        self._script = redis.register_script(CHECK_SCRIPT)
        # A burst of checks queues for the pool's connections rather than opening one each
        # (cheaper than redis-py's blocking pool when uncontended).
        self._slots = asyncio.Semaphore(max_connections)
        self._down_since: float | None = None  # monotonic; None while Redis answers
        self._retry_at = 0.0
        self._backoff = retry_backoff

    @property
    def available(self) -> bool:
        return self._down_since is None

    async def check(self, buckets: Sequence[Bucket], now: float, cost: int = 1) -> Decision:
        if not buckets:
            return UNLIMITED
        keys = [self.prefix + b.key for b in buckets]
        args: list[Any] = [repr(float(now)), cost, EPSILON]
        for b in buckets:
            args += (b.spec.burst, repr(b.spec.rate))
        async with self._slots:
            # Checked after queueing too: those queued behind the failure need not wait it out.
            if self._down_since is not None and time.monotonic() < self._retry_at:
                return self._unavailable(buckets, now, cost)
            try:
                try:
                    reply = await self._script(keys=keys, args=args)
                except RedisConnectionError:
                    # A pooled connection that Redis closed (restart, idle timeout) fails once;
                    # a fresh one tells whether Redis is really gone. Should the lost call have
                    # run, this draws twice: conservative, and only on a dropped connection.
                    reply = await self._script(keys=keys, args=args)
            except (TimeoutError, RedisError, OSError) as exc:
                self._went_down(exc)
                return self._unavailable(buckets, now, cost)
        if self._down_since is not None:
            log.warning(
                "rate-limit store reachable again after %.1f s; shared limits resumed",
                time.monotonic() - self._down_since,
            )
            self._down_since, self._backoff = None, self.retry_backoff
        # The script's verdict is `decide`'s: same arithmetic on the same doubles (%.17g is exact).
        return decide(buckets, [float(v) for v in reply[1:]], now, cost)

    def _went_down(self, exc: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._backoff = self.retry_backoff
            mode = "refusing requests (fail-closed)" if self.fail_closed else "per-process limits"
            log.warning(
                "rate-limit store unreachable (%s: %s); %s until it returns",
                type(exc).__name__,
                exc,
                mode,
            )
        elif time.monotonic() < self._retry_at:
            return  # a concurrent check failed too; the next retry is already scheduled
        else:
            self._backoff = min(self._backoff * 2, self.max_backoff)
        self._retry_at = time.monotonic() + self._backoff

    def _unavailable(self, buckets: Sequence[Bucket], now: float, cost: int) -> Decision:
        if not self.fail_closed:
            return self.fallback.check_now(buckets, now, cost)
        wait = max(1, math.ceil(self._retry_at - time.monotonic()))
        spec = buckets[0].spec
        return Decision(False, spec.burst, 0, math.ceil(now) + wait, wait, "store-unavailable")

    async def aclose(self) -> None:
        await self.redis.aclose()
