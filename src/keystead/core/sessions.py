"""The SSO session behind the login cookie (contract §2.5; security cases SE-02, SE-07, SE-09).

    /u/login, /u/signup   start: a new random cookie value and a new `sid` at every login
    /authorize            usable(now)? then is_older_than(max_age, now)? else log in again
    /v2/logout            the row is deleted and the cookie cleared

The cookie holds 256 random bits; the database holds only their SHA-256 digest, so a leaked
database does not hand out sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Auth0's tenant defaults: "Maximum Session Lifetime" 7 days (absolute, from login) and
# "Idle Session Lifetime" 3 days (since the session was last used). ASVS 7.3.1, 7.3.2.
ABSOLUTE_LIFETIME: Final = 7 * 86_400  # seconds
IDLE_TIMEOUT: Final = 3 * 86_400  # seconds
# Using a session writes its last_seen_at at most this often: one write per request would make
# every silent authentication a database write for nothing the idle timeout can notice.
TOUCH_INTERVAL: Final = 60  # seconds

COOKIE_NAME: Final = "keystead_session"
# RFC 6265bis §4.1.3.2: a `__Host-` cookie is Secure, host-only and Path=/, so a sibling
# subdomain cannot plant a session (fixation). Browsers accept the prefix only with Secure.
SECURE_COOKIE_NAME: Final = "__Host-keystead_session"


def cookie_name(secure: bool) -> str:
    """The session cookie's name: `__Host-` prefixed whenever the cookie is Secure (SE-02)."""
    return SECURE_COOKIE_NAME if secure else COOKIE_NAME


@dataclass(frozen=True)
class LoginSession:
    """One signed-in browser. `sid` is public (the ID token's `sid` claim); the cookie is not."""

    sid: str
    user_id: str
    authenticated_at: float  # when credentials were last checked: the `auth_time` claim
    created_at: float
    last_seen_at: float
    expires_at: float  # absolute end, ABSOLUTE_LIFETIME after login
    ip: str | None = None
    user_agent: str | None = None
    # RFC 8176 methods the login used beyond the password: ("mfa",) after a second factor's code
    # (the `amr` claim of the tokens the session leads to); () for a password or signup alone.
    amr: tuple[str, ...] = ()

    @property
    def auth_time(self) -> int:
        """Integer seconds, as token claims must be (contract §0.6)."""
        return int(self.authenticated_at)

    def is_expired(self, now: float) -> bool:
        """Past its absolute lifetime, or idle too long (SE-09)."""
        return now >= self.expires_at or now - self.last_seen_at >= IDLE_TIMEOUT

    def is_older_than(self, max_age: int, now: float) -> bool:
        """OIDC Core §3.1.2.1 `max_age`: were credentials checked more than `max_age` s ago?"""
        return now - self.authenticated_at > max_age

    def needs_touch(self, now: float) -> bool:
        return now - self.last_seen_at >= TOUCH_INTERVAL


def new_session_expiry(now: float) -> float:
    return now + ABSOLUTE_LIFETIME
