"""Password-reset tickets: signed, short-lived links that work once (contract §7.3).

    /dbconnections/change_password, /u/reset-password (email form)
        new_reset_ticket(signer, issuer=…, user=…, now=…) → reset_url(issuer, ticket) → email
    /u/reset-password?ticket=…
        verify the JWT (RS256 pinned, aud = reset_audience(issuer), exp) → check_reset_ticket()

No table: a ticket is a JWT whose `pfp` claim fingerprints the user's password hash at issue
time. Setting a password stores a new hash (argon2 salts every hash), so the fingerprint stops
matching and every ticket issued before dies: single use, and old links die once the password
changes by any route. Its own audience keeps it from being accepted as an access or ID token,
and access tokens from being accepted as tickets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from keystead.core.tokens import Signer
from keystead.core.users import User
from keystead.errors import InvalidToken

RESET_TICKET_LIFETIME: Final = 3600  # seconds; Auth0's default for password-change tickets
RESET_PATH: Final = "u/reset-password"


class InvalidTicket(InvalidToken):
    """The ticket is well signed but no longer usable (user gone, password already changed)."""


def reset_audience(issuer: str) -> str:
    """`{issuer}u/reset-password`: the audience only reset tickets carry."""
    return issuer + RESET_PATH


def reset_url(issuer: str, ticket: str) -> str:
    """The link the user receives."""
    return f"{issuer}{RESET_PATH}?ticket={quote(ticket, safe='')}"


def password_fingerprint(user_id: str, password_hash: str | None) -> str:
    """A short digest of the stored hash. The hash embeds a random salt, so the digest reveals
    nothing useful about the password, yet changes whenever a new password is stored."""
    return fingerprint("keystead-reset", user_id, password_hash or "")


def fingerprint(purpose: str, *parts: str) -> str:
    """A short digest binding a ticket to state it must not outlive (a password, an address)."""
    material = "\0".join((purpose, *parts)).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(material).digest()[:16]).rstrip(b"=").decode()


def ticket_claims(
    *,
    issuer: str,
    user: User,
    audience: str,
    now: float,
    lifetime: int,
    client_id: str | None = None,
    **bound: str,
) -> dict[str, Any]:
    """The claims every ticket has (issuer, user, its own audience, times, a jti, the client)
    plus `bound`, the fingerprints that tie it to the user's current state."""
    iat = int(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": user.user_id,
        "aud": audience,
        "iat": iat,
        "exp": iat + int(lifetime),
        "jti": secrets.token_urlsafe(16),
        **bound,
    }
    if client_id:
        claims["azp"] = client_id
    return claims


def reset_ticket_claims(
    *,
    issuer: str,
    user: User,
    now: float,
    lifetime: int = RESET_TICKET_LIFETIME,
    client_id: str | None = None,
) -> dict[str, Any]:
    return ticket_claims(
        issuer=issuer, user=user, audience=reset_audience(issuer), now=now, lifetime=lifetime,
        client_id=client_id, pfp=password_fingerprint(user.user_id, user.password_hash),
    )  # fmt: skip


def new_reset_ticket(
    signer: Signer,
    *,
    issuer: str,
    user: User,
    now: float,
    lifetime: int = RESET_TICKET_LIFETIME,
    client_id: str | None = None,
) -> str:
    """A signed ticket for `user`, good for `lifetime` seconds or until the password changes."""
    claims = reset_ticket_claims(
        issuer=issuer, user=user, now=now, lifetime=lifetime, client_id=client_id
    )
    return signer.sign(claims)


def ticket_subject(claims: Mapping[str, Any]) -> str:
    """The user id of verified ticket claims; InvalidTicket when it is not one of ours."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or not isinstance(claims.get("pfp"), str):
        raise InvalidTicket("not a password reset ticket")
    return sub


def check_reset_ticket(claims: Mapping[str, Any], user: User | None) -> User:
    """Is a verified ticket still usable for `user` (the current row of its `sub`)?

    Signature, audience and expiry are the verifier's job; this is the single-use rule.
    """
    sub = ticket_subject(claims)
    if user is None or user.user_id != sub:
        raise InvalidTicket("the user no longer exists")
    expected = password_fingerprint(user.user_id, user.password_hash)
    if not hmac.compare_digest(expected, str(claims["pfp"])):
        raise InvalidTicket("the ticket was already used or the password has changed")
    return user
