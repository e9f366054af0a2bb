"""In-process rate-limit store: exact within one process, shared by nothing (contract §12).

Lock-free by construction: a check reads, decides and writes without awaiting, so on one event
loop no other check can interleave. Memory stays bounded: a bucket that has refilled completely
is the same as no bucket, so such entries are dropped; past `max_keys`, the entries closest to
full go first (the least state lost).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from keystead.core.ratelimit import Bucket, BucketState, Decision, check, full_at


class MemoryBackend:
    def __init__(self, *, max_keys: int = 200_000, sweep_interval: float = 10.0) -> None:
        self.max_keys = max_keys
        self.sweep_interval = sweep_interval  # seconds of the limiter's clock between sweeps
        self._states: dict[str, BucketState] = {}
        self._full_at: dict[str, float] = {}
        self._next_sweep = 0.0

    async def check(self, buckets: Sequence[Bucket], now: float, cost: int = 1) -> Decision:
        return self.check_now(buckets, now, cost)

    def check_now(self, buckets: Sequence[Bucket], now: float, cost: int = 1) -> Decision:
        """The synchronous check (also the Redis backend's per-process fallback)."""
        decision = check(self._states, buckets, now, cost)
        if decision.allowed:
            for b in buckets:
                self._full_at[b.key] = full_at(self._states[b.key], b.spec)
            if now >= self._next_sweep or len(self._states) > self.max_keys:
                self.sweep(now)
        return decision

    def sweep(self, now: float) -> None:
        """Drop full buckets, then the closest to full while over `max_keys`."""
        self._next_sweep = now + self.sweep_interval
        for key in [k for k, t in self._full_at.items() if t <= now]:
            self._forget(key)
        excess = len(self._states) - self.max_keys
        if excess > 0:
            # Evict a tenth more than needed so a flood does not sweep on every check.
            count = excess + self.max_keys // 10
            for key in heapq.nsmallest(count, self._full_at, key=self._full_at.__getitem__):
                self._forget(key)

    def __len__(self) -> int:
        return len(self._states)

    def _forget(self, key: str) -> None:
        del self._states[key]
        del self._full_at[key]

    async def aclose(self) -> None:
        self._states.clear()
        self._full_at.clear()
