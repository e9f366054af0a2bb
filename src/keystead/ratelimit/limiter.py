"""The Limiter: picks a request's buckets from the configured limits and checks them (§12).

Buckets, most specific first; a request draws from all of them or from none:
  Management API      mgmt:sub:<sub> (current-user tokens) → mgmt:client:<azp>
                      → mgmt:ep:<endpoint group> → mgmt:tenant
  Authentication API  auth:ipuser:<ip>:<username> (password checks) → auth:ep:<endpoint>[:<who>]
                      (who: user id for userinfo, ip and email for changePassword, ip for
                      passwordlessStart) → auth:ip:<ip> → auth:client:<client_id> → auth:tenant
Key segments are escaped (':' cannot be forged inside one); usernames and emails lower-cased.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote

from keystead.core.clock import Clock, SystemClock
from keystead.core.ratelimit import (
    AUTHENTICATION_ENDPOINTS,
    MANAGEMENT_ENDPOINTS,
    Bucket,
    BucketSpec,
    Decision,
    RateLimits,
)
from keystead.ratelimit.memory import MemoryBackend


class Backend(Protocol):
    async def check(self, buckets: Sequence[Bucket], now: float, cost: int = 1) -> Decision: ...

    async def aclose(self) -> None: ...


class Limiter:
    def __init__(
        self, limits: RateLimits, backend: Backend | None = None, clock: Clock | None = None
    ) -> None:
        self.limits = limits
        self.backend: Backend = MemoryBackend() if backend is None else backend
        self.clock: Clock = SystemClock() if clock is None else clock

    @classmethod
    def create(
        cls,
        limits: RateLimits,
        *,
        redis_url: str = "",
        fail_closed: bool = False,
        redis_prefix: str = "keystead:rl:",
        clock: Clock | None = None,
    ) -> Limiter:
        """In-process unless `redis_url` (KEYSTEAD_REDIS_URL) names a shared store."""
        if not redis_url:
            return cls(limits, MemoryBackend(), clock)
        from keystead.ratelimit.redis_backend import RedisBackend  # only needed with Redis

        backend = RedisBackend(redis_url, prefix=redis_prefix, fail_closed=fail_closed)
        return cls(limits, backend, clock)

    async def check(
        self, buckets: Sequence[Bucket | tuple[str, BucketSpec]], cost: int = 1
    ) -> Decision:
        """Draw `cost` tokens from every bucket, or from none if any of them is short."""
        if cost < 1:
            raise ValueError("cost must be at least 1")
        items = [b if isinstance(b, Bucket) else Bucket(*b) for b in buckets]
        return await self.backend.check(items, self.clock.now(), cost)

    def management(
        self, *, client_id: str, subject: str | None = None, endpoint: str | None = None
    ) -> list[Bucket]:
        """Buckets of a Management API request. Pass `subject` only for a current-user-scoped
        token; `endpoint` is `core.ratelimit.management_endpoint(method, path)`."""
        if endpoint is not None and endpoint not in MANAGEMENT_ENDPOINTS:
            raise ValueError(f"unknown Management endpoint group {endpoint!r}")
        wanted = [
            ("management.subject", None if subject is None else f"mgmt:sub:{_part(subject)}"),
            ("management.client", f"mgmt:client:{_part(client_id)}"),
            (f"management.endpoints.{endpoint}", endpoint and f"mgmt:ep:{endpoint}"),
            ("management.tenant", "mgmt:tenant"),
        ]
        return self._buckets(wanted)

    def authentication(
        self,
        *,
        ip: str,
        client_id: str | None = None,
        username: str | None = None,
        endpoint: str | None = None,
        user_id: str | None = None,
        email: str | None = None,
    ) -> list[Bucket]:
        """Buckets of an Authentication API request. Pass `username` on password checks,
        `user_id` for endpoint userinfo, `email` for endpoint changePassword."""
        ip_user = None if username is None else f"auth:ipuser:{_part(ip)}:{_part(username.lower())}"
        wanted = [
            ("authentication.ipUser", ip_user),
            (
                f"authentication.endpoints.{endpoint}",
                endpoint and _endpoint_key(endpoint, ip, user_id, email),
            ),
            ("authentication.ip", f"auth:ip:{_part(ip)}"),
            ("authentication.client", client_id and f"auth:client:{_part(client_id)}"),
            ("authentication.tenant", "auth:tenant"),
        ]
        return self._buckets(wanted)

    def _buckets(self, wanted: list[tuple[str, str | None]]) -> list[Bucket]:
        out = []
        for rule, key in wanted:
            if not key:
                continue
            spec = self.limits[rule]
            if spec is not None:
                out.append(Bucket(key, spec, rule))
        return out

    async def aclose(self) -> None:
        await self.backend.aclose()


def _endpoint_key(endpoint: str, ip: str, user_id: str | None, email: str | None) -> str:
    scope = AUTHENTICATION_ENDPOINTS.get(endpoint)
    if scope is None:
        raise ValueError(f"unknown Authentication endpoint {endpoint!r}")
    if scope == "user":
        if user_id is None:
            raise ValueError(f"endpoint {endpoint} is limited per user: pass user_id")
        return f"auth:ep:{endpoint}:{_part(user_id)}"
    if scope == "ip+email":
        if email is None:
            raise ValueError(f"endpoint {endpoint} is limited per (IP, email): pass email")
        return f"auth:ep:{endpoint}:{_part(ip)}:{_part(email.lower())}"
    if scope == "ip":
        return f"auth:ep:{endpoint}:{_part(ip)}"
    return f"auth:ep:{endpoint}"


def _part(value: str) -> str:
    """One key segment: ':' escaped so segments cannot run together, long ones hashed."""
    text = quote(value, safe="@.-_+|")
    if len(text) > 200:  # caller-chosen values (usernames) must not grow the store unboundedly
        return "sha256-" + hashlib.sha256(value.encode()).hexdigest()[:40]
    return text
