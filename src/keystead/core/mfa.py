"""A second factor at login: one-time passwords from an authenticator app (TOTP, RFC 6238).

    who is asked        a user with a confirmed `totp` authentication method (stored through
                        the Management API, §9.2). As Keycloak's conditional OTP: an enrolled
                        factor is always asked for, by the hosted login and the password grants
    the code            6 digits, HMAC-SHA1, 30 s steps (what authenticator apps use); the step
                        before and after now's are accepted for clock drift
    each code once      accepting step k spends it and every step before it
                        (`spent_before`, kept as the method's `last_auth_at`), so a code seen
                        over a shoulder or in a log cannot be replayed
    between the steps   a challenge: a JWT signed by the key ring with an audience of its own,
                        valid CHALLENGE_LIFETIME seconds, naming the user, the factor and what it
                        is bound to: the client (the token endpoint's `mfa_token`) or the
                        browser's CSRF token (the hosted page), so it is useless elsewhere
    wrong codes         count as failed logins (ratelimit/protection.py), so guessing is
                        throttled and blocked exactly as password guessing is

Codes are compared with `hmac.compare_digest`; the code generation itself is pyotp's.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pyotp

from keystead.core.tokens import Signer
from keystead.errors import InvalidToken

TOTP_TYPE: Final = "totp"  # the authentication method type that holds a `totp_secret`
TOTP_SECRET: Final = "totp_secret"
STEP_SECONDS: Final = 30
DIGITS: Final = 6
DRIFT_STEPS: Final = 1  # steps accepted either side of now's
CHALLENGE_LIFETIME: Final = 300  # seconds between the password and the code
CHALLENGE_PATH: Final = "u/mfa-challenge"
CHALLENGE_TYP: Final = "mfa-challenge+jwt"
MFA: Final = "mfa"  # RFC 8176 `amr` value: more than one factor was used
MFA_AMR: Final = (MFA,)  # a session's, code's and refresh token's `amr` after an accepted code


def challenge_audience(issuer: str) -> str:
    """`{issuer}u/mfa-challenge`: carried by challenges only, so a challenge is never taken
    for an access token, ID token or ticket, nor any of those for a challenge."""
    return issuer + CHALLENGE_PATH


def is_code_shaped(code: str) -> bool:
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (now's, or one either side) whose code `code` is, else None. A secret
    that is not base32 matches nothing."""
    if not is_code_shaped(code):
        return None
    try:
        totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
        current = int(now // STEP_SECONDS)
        found = None
        for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
            # Every candidate is compared, so the time taken says nothing about which matched.
            if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
                found = step
        return found
    except (binascii.Error, ValueError, TypeError):
        return None


def step_start(step: int) -> float:
    return float(step * STEP_SECONDS)


def spent_mark(step: int, now: float) -> float:
    """What `last_auth_at` becomes once `step` is accepted: never earlier than the step's
    start, so that step and every earlier one read as spent (`is_fresh`)."""
    return max(now, step_start(step))


def is_fresh(step: int, last_auth_at: float | None) -> bool:
    """Has `step` not been spent yet (by itself or by a later step)?"""
    return last_auth_at is None or last_auth_at < step_start(step)


# --- the challenge between the password and the code ---------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """A password check passed; a code is still owed."""

    user_id: str
    method_id: str
    bound_to: str  # "client:{client_id}" or "browser:{digest of the CSRF token}"
    expires_at: float
    extra: Mapping[str, Any] = field(default_factory=dict)  # what the second step needs


def client_binding(client_id: str) -> str:
    return f"client:{client_id}"


def browser_binding(csrf_token: str) -> str:
    digest = hashlib.sha256(b"keystead-mfa-browser\0" + csrf_token.encode()).hexdigest()
    return f"browser:{digest[:32]}"


def new_challenge(
    signer: Signer,
    *,
    issuer: str,
    user_id: str,
    method_id: str,
    bound_to: str,
    now: float,
    extra: Mapping[str, Any] | None = None,
) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": challenge_audience(issuer),
        "sub": user_id,
        "mfa": method_id,
        "bnd": bound_to,
        "iat": int(now),
        "exp": int(now) + CHALLENGE_LIFETIME,
        "jti": secrets.token_urlsafe(12),
    }
    if extra:
        claims["ext"] = dict(extra)
    return signer.sign(claims, typ=CHALLENGE_TYP)


def read_challenge(claims: Mapping[str, Any], *, bound_to: str) -> Challenge:
    """The challenge in verified `claims` (signature, issuer, audience and expiry already
    checked), or InvalidToken when it is bound to another client or browser, or malformed."""
    sub, method, binding = claims.get("sub"), claims.get("mfa"), claims.get("bnd")
    extra = claims.get("ext") or {}
    if not all(isinstance(v, str) and v for v in (sub, method, binding)):
        raise InvalidToken("malformed MFA challenge")
    if not isinstance(extra, Mapping):
        raise InvalidToken("malformed MFA challenge")
    if not hmac.compare_digest(str(binding), bound_to):
        raise InvalidToken("MFA challenge issued to another client or browser")
    return Challenge(
        user_id=str(sub),
        method_id=str(method),
        bound_to=str(binding),
        expires_at=float(claims["exp"]),
        extra=extra,
    )
