"""Attack protection rules: brute-force blocks and suspicious-IP throttling (security AT-01, AT-03).

    brute force     failed logins for one (identifier, IP) pair; at `max_attempts` in a row the
                    pair is blocked: the right password from that IP is refused too, any other
                    IP still logs in. Ended by a successful login (the count only), an admin
                    (DELETE /api/v2/user-blocks), a password reset, a raised threshold, or the
                    optional expiry.
    suspicious IP   failed logins from one IP across every account, a leaky bucket (Auth0's
                    pre-login default: 100 a day); while full, every login from that IP is
                    refused (429) until one failure has leaked away. Signups per IP are a plain
                    rate bucket (50 a day), drawn by the limiter.

What counts as a failure: a wrong password or an unknown identifier, alike, so that a block
says nothing about whether an account exists. Pure rules; storage/repositories/user_blocks.py
keeps the counts and the HTTP layers refuse.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from keystead.core.ratelimit import EPSILON, BucketSpec, parse_spec
from keystead.errors import ConfigError

# Contract §12.1: Auth0's body for a blocked (identifier, IP) pair.
ACCOUNT_BLOCKED: Final = "Your account has been blocked after multiple consecutive login attempts."
IP_THROTTLED: Final = (
    "We have detected suspicious login behavior and further attempts will be blocked. "
    "Please contact the administrator."
)
# What the hosted login page shows a blocked user: what happened and the two ways out.
ACCOUNT_BLOCKED_PAGE: Final = (
    ACCOUNT_BLOCKED + " To unblock it, reset your password (Forgot password?) "
    "or ask the application's administrator to unblock your account."
)
MAX_IDENTIFIER: Final = 320  # the column's size, and the longest email address
IP_ROW: Final = ""  # identifier of an IP's own row (real identifiers are never empty)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def identifier_key(identifier: str) -> str | None:
    """How an identifier is counted and looked up (Auth0 matches emails case-insensitively);
    None when it cannot name an account, so it is not counted per pair."""
    key = identifier.strip().lower()
    return key if key and len(key) <= MAX_IDENTIFIER else None


def user_identifiers(
    email: str | None, username: str | None, phone_number: str | None
) -> tuple[str, ...]:
    """Every identifier a user may log in with (GET/DELETE /user-blocks/{id})."""
    keys = (identifier_key(v) for v in (email, username, phone_number) if v)
    return tuple(dict.fromkeys(k for k in keys if k))


class PairCount(NamedTuple):
    """What is stored for one (identifier, IP) pair."""

    failures: int
    blocked_at: float | None


class IpCount(NamedTuple):
    """What is stored for one IP: failures not yet leaked away, as of `stamp`."""

    failures: int
    stamp: float
    throttled_at: float | None


@dataclass(frozen=True)
class Verdict:
    """May a login be tried? When not: the error text and seconds to wait (0: until unblocked)."""

    allowed: bool
    reason: str = ""  # "blocked" (the pair) or "throttled" (the IP)
    message: str = ""
    retry_after: int = 0


ALLOWED: Final = Verdict(True)


@dataclass(frozen=True)
class BruteForcePolicy:
    max_attempts: int = 10  # failures in a row per (identifier, IP); 0: no blocks
    block_seconds: int = 0  # 0: blocked until unblocked
    login_ip: BucketSpec | None = field(default_factory=lambda: parse_spec("100/day"))
    signup_ip: BucketSpec | None = field(default_factory=lambda: parse_spec("50/day"))
    allowlist: tuple[Network, ...] = ()  # exempt from blocks and throttling

    @classmethod
    def from_settings(
        cls,
        *,
        max_attempts: int,
        block_seconds: int,
        login_ip: str,
        signup_ip: str,
        allowlist: Iterable[str],
    ) -> BruteForcePolicy:
        if max_attempts < 0 or block_seconds < 0:
            raise ConfigError("brute-force max attempts and block seconds must not be negative")
        return cls(
            max_attempts=max_attempts,
            block_seconds=block_seconds,
            login_ip=_optional_spec(login_ip, "suspicious_ip_login_limit"),
            signup_ip=_optional_spec(signup_ip, "suspicious_ip_signup_limit"),
            allowlist=tuple(_network(item) for item in allowlist),
        )

    def is_exempt(self, ip: str | None) -> bool:
        if not ip or not self.allowlist:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.allowlist)

    # --- (identifier, IP) pairs -----------------------------------------------------------------

    def pair_blocked(self, count: PairCount | None, now: float) -> bool:
        """A raised threshold lifts blocks below it; an expired block is lifted too."""
        if count is None or count.blocked_at is None or self.max_attempts == 0:
            return False
        if count.failures < self.max_attempts:
            return False
        return not self._expired(count, now)

    def after_failure(self, count: PairCount | None, now: float) -> tuple[PairCount, bool]:
        """The pair after one more failure, and whether this failure blocked it."""
        if count is None or (count.blocked_at is not None and self._expired(count, now)):
            count = PairCount(0, None)  # an expired block starts counting afresh
        failures = count.failures + 1
        if self.max_attempts == 0 or failures < self.max_attempts:
            return PairCount(failures, count.blocked_at), False
        if self.pair_blocked(count, now):
            return PairCount(failures, count.blocked_at), False
        return PairCount(failures, now), True

    def _expired(self, count: PairCount, now: float) -> bool:
        assert count.blocked_at is not None
        return self.block_seconds > 0 and now >= count.blocked_at + self.block_seconds

    # --- one IP, every account ------------------------------------------------------------------

    def ip_now(self, count: IpCount | None, now: float) -> IpCount:
        """Failures left after leaking at the bucket's rate; the stamp moves by whole leaks,
        so an integer count loses no fraction between failures."""
        spec = self.login_ip
        if count is None:
            return IpCount(0, now, None)
        if spec is None or count.failures == 0 or now <= count.stamp:
            return count
        leaked = math.floor((now - count.stamp) * spec.rate + EPSILON)
        if leaked >= count.failures:
            return IpCount(0, now, count.throttled_at)
        return IpCount(
            count.failures - leaked, count.stamp + leaked / spec.rate, count.throttled_at
        )

    def ip_throttled(self, count: IpCount | None, now: float) -> int:
        """Seconds until the IP may try again; 0 when it may now."""
        spec = self.login_ip
        if spec is None or count is None:
            return 0
        current = self.ip_now(count, now)
        if current.failures < spec.burst:
            return 0
        return max(1, math.ceil(current.stamp + 1 / spec.rate - now - EPSILON))

    def after_ip_failure(self, count: IpCount | None, now: float) -> tuple[IpCount, bool]:
        """The IP after one more failure, and whether this failure started a throttle."""
        spec = self.login_ip
        current = self.ip_now(count, now)
        if spec is None:
            return current, False
        failures = current.failures + 1
        if current.failures == 0:
            current = IpCount(0, now, current.throttled_at)  # the leak starts with a failure
        started = current.failures < spec.burst <= failures
        throttled_at = now if started else current.throttled_at
        return IpCount(failures, current.stamp, throttled_at), started

    # --- both, before a password is checked -----------------------------------------------------

    def verdict(
        self, pair: PairCount | None, ip: IpCount | None, now: float, *, pair_protected: bool
    ) -> Verdict:
        """`pair_protected`: the connection's `brute_force_protection` is on."""
        if pair_protected and self.pair_blocked(pair, now):
            return Verdict(False, "blocked", ACCOUNT_BLOCKED)
        wait = self.ip_throttled(ip, now)
        if wait:
            return Verdict(False, "throttled", IP_THROTTLED, wait)
        return ALLOWED


def _optional_spec(text: str, name: str) -> BucketSpec | None:
    if text.strip().lower() in ("", "off", "none", "unlimited"):
        return None
    try:
        return parse_spec(text)
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(f"{text!r} is not an IP address or CIDR range") from None
