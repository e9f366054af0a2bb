"""SSO session rules (core/sessions.py; security cases SE-02, SE-09) and code lifetimes."""

from __future__ import annotations

import pytest

from keystead.core.codes import CODE_LIFETIME, code_expiry, new_family_id
from keystead.core.sessions import (
    ABSOLUTE_LIFETIME,
    IDLE_TIMEOUT,
    TOUCH_INTERVAL,
    LoginSession,
    cookie_name,
    new_session_expiry,
)

T0 = 1_700_000_000.0


def session(*, authenticated_at: float = T0, last_seen_at: float = T0) -> LoginSession:
    return LoginSession(
        sid="sid",
        user_id="auth0|1",
        authenticated_at=authenticated_at,
        created_at=T0,
        last_seen_at=last_seen_at,
        expires_at=new_session_expiry(T0),
    )


def test_lifetimes_are_auth0s_defaults() -> None:
    assert ABSOLUTE_LIFETIME == 7 * 86_400
    assert IDLE_TIMEOUT == 3 * 86_400
    assert new_session_expiry(T0) == T0 + ABSOLUTE_LIFETIME


@pytest.mark.parametrize(
    ("max_age", "elapsed", "older"),
    [
        (0, 0, False),  # authenticated this very second
        (0, 1, True),
        (10, 10, False),
        (10, 11, True),
        (10_000, 2, False),
    ],
)
def test_is_older_than(max_age: int, elapsed: float, older: bool) -> None:
    assert session().is_older_than(max_age, T0 + elapsed) is older


@pytest.mark.parametrize(
    ("last_seen", "now", "expired"),
    [
        (T0, T0, False),
        (T0, T0 + IDLE_TIMEOUT - 1, False),
        (T0, T0 + IDLE_TIMEOUT, True),  # SE-09: idle past the inactivity timeout
        # Active all along, but past the absolute lifetime (SE-09).
        (T0 + ABSOLUTE_LIFETIME - 10, T0 + ABSOLUTE_LIFETIME, True),
        (T0 + ABSOLUTE_LIFETIME - 10, T0 + ABSOLUTE_LIFETIME - 1, False),
    ],
)
def test_is_expired(last_seen: float, now: float, expired: bool) -> None:
    assert session(last_seen_at=last_seen).is_expired(now) is expired


def test_auth_time_is_an_integer() -> None:
    found = session(authenticated_at=T0 + 0.75)
    assert found.auth_time == int(T0)
    assert isinstance(found.auth_time, int)


def test_touch_is_rate_limited() -> None:
    assert not session().needs_touch(T0 + TOUCH_INTERVAL - 1)
    assert session().needs_touch(T0 + TOUCH_INTERVAL)


def test_cookie_name_takes_the_host_prefix_only_when_secure() -> None:
    assert cookie_name(secure=True) == "__Host-keystead_session"
    assert cookie_name(secure=False) == "keystead_session"


def test_codes_live_60_seconds_and_families_are_random() -> None:
    assert CODE_LIFETIME == 60
    assert code_expiry(T0) == T0 + 60
    ids = {new_family_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 for i in ids)
