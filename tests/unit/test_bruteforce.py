"""core/bruteforce: pair blocks, the suspicious-IP leaky count, the allowlist (AT-01, AT-03)."""

from __future__ import annotations

import pytest

from keystead.core.bruteforce import (
    ACCOUNT_BLOCKED,
    IP_THROTTLED,
    BruteForcePolicy,
    IpCount,
    PairCount,
    identifier_key,
    user_identifiers,
)
from keystead.core.ratelimit import parse_spec
from keystead.errors import ConfigError

T0 = 1_700_000_000.0


def policy(**kw: object) -> BruteForcePolicy:
    values: dict[str, object] = {
        "max_attempts": 3,
        "block_seconds": 0,
        "login_ip": "4/hour",
        "signup_ip": "off",
        "allowlist": (),
    }
    values.update(kw)
    return BruteForcePolicy.from_settings(**values)  # type: ignore[arg-type]


def failures(p: BruteForcePolicy, n: int, now: float = T0) -> tuple[PairCount | None, list[bool]]:
    count: PairCount | None = None
    started = []
    for _ in range(n):
        count, blocked = p.after_failure(count, now)
        started.append(blocked)
    return count, started


def test_the_nth_failure_blocks_the_pair_once() -> None:
    p = policy()
    count, started = failures(p, 5)
    assert started == [False, False, True, False, False]  # one limit_wc event, not three
    assert count == PairCount(5, T0)
    assert p.pair_blocked(count, T0 + 10**9)  # no expiry by default


def test_below_the_threshold_nothing_is_blocked() -> None:
    p = policy()
    count, _ = failures(p, 2)
    assert not p.pair_blocked(count, T0)
    assert p.verdict(count, None, T0, pair_protected=True).allowed


def test_a_raised_threshold_lifts_blocks_below_it() -> None:
    count, _ = failures(policy(max_attempts=3), 3)
    assert policy(max_attempts=3).pair_blocked(count, T0)
    assert not policy(max_attempts=10).pair_blocked(count, T0)
    assert not policy(max_attempts=0).pair_blocked(count, T0)  # 0: blocks switched off


def test_an_expired_block_is_lifted_and_counting_starts_again() -> None:
    p = policy(block_seconds=600)
    count, _ = failures(p, 3)
    assert p.pair_blocked(count, T0 + 599)
    assert not p.pair_blocked(count, T0 + 600)
    again, blocked = p.after_failure(count, T0 + 600)
    assert (again, blocked) == (PairCount(1, None), False)


def test_max_attempts_zero_counts_but_never_blocks() -> None:
    count, started = failures(policy(max_attempts=0), 20)
    assert count == PairCount(20, None)
    assert not any(started)


def test_verdicts_name_the_reason_and_the_wait() -> None:
    p = policy()
    blocked, _ = failures(p, 3)
    verdict = p.verdict(blocked, None, T0, pair_protected=True)
    assert (verdict.allowed, verdict.reason, verdict.message) == (False, "blocked", ACCOUNT_BLOCKED)
    assert p.verdict(blocked, None, T0, pair_protected=False).allowed
    full = IpCount(4, T0, T0)
    verdict = p.verdict(None, full, T0 + 100, pair_protected=True)
    # 4/hour: one failure leaks away every 900 s, counted from the first failure.
    assert (verdict.reason, verdict.message, verdict.retry_after) == (
        "throttled",
        IP_THROTTLED,
        800,
    )


def test_ip_failures_leak_in_whole_steps_and_throttle_at_the_burst() -> None:
    p = policy()
    count: IpCount | None = None
    started = []
    for i in range(5):
        count, s = p.after_ip_failure(count, T0 + i)
        started.append(s)
    assert started == [False, False, False, True, False]  # limit_mu once
    assert count == IpCount(5, T0, T0 + 3)
    assert p.ip_throttled(count, T0 + 899) == 1
    assert p.ip_throttled(count, T0 + 1800) == 0  # two leaked: 3 left, below the burst of 4
    assert p.ip_now(count, T0 + 1800 + 450) == IpCount(3, T0 + 1800, T0 + 3)  # no fraction lost
    assert p.ip_now(count, T0 + 10**6).failures == 0


def test_ip_throttling_off() -> None:
    p = policy(login_ip="off")
    _, started = p.after_ip_failure(None, T0)
    assert not started
    assert p.ip_throttled(IpCount(10**6, T0, None), T0) == 0


@pytest.mark.parametrize(
    ("ip", "exempt"),
    [("10.1.2.3", True), ("192.0.2.7", True), ("192.0.2.8", False), ("::1", True), ("x", False)],
)
def test_allowlist(ip: str, exempt: bool) -> None:
    p = policy(allowlist=("10.0.0.0/8", "192.0.2.7", "::1"))
    assert p.is_exempt(ip) is exempt


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"allowlist": ("not-an-ip",)}, "not an IP address"),
        ({"login_ip": "lots"}, "suspicious_ip_login_limit"),
        ({"max_attempts": -1}, "must not be negative"),
    ],
)
def test_bad_settings_are_config_errors(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        policy(**kw)


def test_identifiers_are_case_insensitive_and_bounded() -> None:
    assert identifier_key("  Alice@Example.COM ") == "alice@example.com"
    assert identifier_key("   ") is None
    assert identifier_key("a" * 321) is None
    assert user_identifiers("A@x.org", "alice", None) == ("a@x.org", "alice")
    assert user_identifiers("a@x.org", "A@X.org", "+15550100") == ("a@x.org", "+15550100")


def test_default_policy_copies_auth0() -> None:
    p = BruteForcePolicy()
    assert p.max_attempts == 10
    assert p.login_ip == parse_spec("100/day")
    assert p.signup_ip == parse_spec("50/day")
