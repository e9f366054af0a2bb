"""Authorization codes: what /authorize binds to a code, and /oauth/token checks (contract §2.2
step 9, §3.2; security cases CD-01, CD-03, CD-05).

    /authorize     new_family_id(); AuthorizationCode(..., expires_at=code_expiry(now))
                   → SqlCodes.create(code) → the opaque code in the redirect
    /oauth/token   SqlCodes.consume(code) → ConsumeResult: the code once, then `replayed`
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

# Auth0's codes live briefly; RFC 6749 §4.1.2 allows at most 10 minutes, 60 s is plenty for a
# browser redirect followed by a token request.
CODE_LIFETIME: Final = 60  # seconds


@dataclass(frozen=True)
class AuthorizationCode:
    """Everything the token endpoint must check or copy into the tokens."""

    client_id: str
    user_id: str
    redirect_uri: str | None  # what the /authorize request sent: the token request must match it
    scope: tuple[str, ...]  # granted scopes, in order
    audience: str | None  # the resolved API identifier; None: a /userinfo-only token
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int  # when the user last gave credentials (the ID token's `auth_time`)
    sid: str  # the SSO session (the ID token's `sid`)
    family_id: str  # refresh-token family the exchange starts; revoked if the code is replayed
    expires_at: float
    amr: tuple[str, ...] = ()  # the session's (RFC 8176): the tokens' `amr` claim when not empty


@dataclass(frozen=True)
class ConsumeResult:
    """`code` set and not `replayed`: redeem it. `replayed`: refuse, and revoke what the first
    exchange issued (RFC 6749 §4.1.2). `code` None: unknown or expired."""

    code: AuthorizationCode | None
    replayed: bool = False


def code_expiry(now: float) -> float:
    return now + CODE_LIFETIME


def new_family_id() -> str:
    """A fresh refresh-token family id, one per code (128 random bits)."""
    return secrets.token_hex(16)
