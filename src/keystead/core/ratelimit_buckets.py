"""Token buckets: refill, the nested all-or-nothing check, and the decision (contract §12.1).

Why every bucket is checked before any is drawn from: see core/ratelimit.py.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from keystead.errors import ConfigError

# Float error must not turn "exactly one token refilled" into a refusal; backends use the same.
EPSILON: Final = 1e-9
_UNIT_NAMES: Final = {1.0: "s", 60.0: "min", 3600.0: "hour", 86400.0: "day"}  # for __str__


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """`burst` tokens at most; `refill` tokens added every `per_seconds`, continuously."""

    burst: int
    refill: int
    per_seconds: float

    def __post_init__(self) -> None:
        if self.burst < 1 or self.refill < 1 or not self.per_seconds > 0:
            raise ConfigError(f"a rate limit needs burst ≥ 1 and a positive rate, got {self}")

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.refill / self.per_seconds

    def __str__(self) -> str:
        unit = _UNIT_NAMES.get(self.per_seconds, f"{self.per_seconds:g}s")
        return f"{self.refill}/{unit} burst {self.burst}"


class Bucket(NamedTuple):
    """One bucket a request draws from: its store key, its size and rate, and its rule name."""

    key: str
    spec: BucketSpec
    name: str = ""


class BucketState(NamedTuple):
    tokens: float  # left after the last draw
    stamp: float  # epoch seconds of that draw


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome, described by the most constrained bucket (the one whose headers are sent)."""

    allowed: bool
    limit: int  # that bucket's burst; 0: nothing limits this request
    remaining: int
    reset_epoch: int  # when that bucket is full again, integer epoch seconds (§12.1)
    retry_after: int  # seconds until a refused request would pass; 0 when allowed
    bucket_name: str


UNLIMITED: Final = Decision(True, 0, 0, 0, 0, "")


def level(state: BucketState | None, spec: BucketSpec, now: float) -> float:
    """Tokens available at `now`. A clock behind the stored stamp (replica skew) adds none."""
    if state is None:
        return float(spec.burst)
    elapsed = now - state.stamp
    refilled = state.tokens + elapsed * spec.rate if elapsed > 0 else state.tokens
    return min(float(spec.burst), refilled)


def decide(
    buckets: Sequence[Bucket], levels: Sequence[float], now: float, cost: int = 1
) -> Decision:
    """Judge a request from each bucket's tokens available now (before drawing)."""
    if not buckets:
        return UNLIMITED
    # Refused: report the bucket that refills last, since every bucket must pass. Allowed:
    # the one with the fewest whole tokens left, the most specific on a tie.
    worst, worst_wait, tightest, fewest = -1, 0.0, 0, math.inf
    for i, lv in enumerate(levels):
        if lv + EPSILON < cost:
            wait = (cost - lv) / buckets[i].spec.rate
            if wait > worst_wait:
                worst, worst_wait = i, wait
        elif (left := _floor(lv - cost)) < fewest:
            tightest, fewest = i, left
    i = tightest if worst < 0 else worst
    spec = buckets[i].spec
    after = levels[i] - cost if worst < 0 else levels[i]
    return Decision(
        allowed=worst < 0,
        limit=spec.burst,
        remaining=max(0, _floor(after)) if worst < 0 else 0,
        reset_epoch=_ceil(now + (spec.burst - after) / spec.rate),
        retry_after=0 if worst < 0 else max(1, _ceil(worst_wait)),
        bucket_name=buckets[i].name or buckets[i].key,
    )


def check(
    store: MutableMapping[str, BucketState], buckets: Sequence[Bucket], now: float, cost: int = 1
) -> Decision:
    """Nested check against an in-memory store; draws from every bucket only if all pass."""
    states = [store.get(b.key) for b in buckets]
    levels = [level(s, b.spec, now) for s, b in zip(states, buckets, strict=True)]
    decision = decide(buckets, levels, now, cost)
    if decision.allowed:
        for b, s, lv in zip(buckets, states, levels, strict=True):
            store[b.key] = BucketState(lv - cost, now if s is None else max(s.stamp, now))
    return decision


def full_at(state: BucketState, spec: BucketSpec) -> float:
    """Epoch when a bucket is full again; from then on it is the same as no bucket at all."""
    return state.stamp + (spec.burst - state.tokens) / spec.rate


def _ceil(x: float) -> int:
    return math.ceil(x - EPSILON)


def _floor(x: float) -> int:
    return math.floor(x + EPSILON)
