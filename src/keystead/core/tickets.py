"""Password-reset tickets: signed, short-lived links that work once (contract §7.3).

    /dbconnections/change_password, /u/reset-password (email form)
        new_reset_ticket(signer, issuer=…, user=…, now=…) → reset_url(issuer, ticket) → email
    /u/reset-password?ticket=…
        verify the JWT (RS256 pinned, aud = reset_audience(issuer), exp) → check_reset_ticket()
    POST /api/v2/tickets/password-change
        the same ticket, optionally with `result_url` (where the page redirects once the password
        is set), `include_email` (the redirect names the address) and `mev` (marks the address
        verified); the hosted form's tickets never carry them

No table: a ticket is a JWT whose `pfp` claim fingerprints the user's password hash at issue
time. Setting a password stores a new hash (argon2 salts every hash), so the fingerprint stops
matching and every ticket issued before dies: single use, and old links die once the password
changes by any route. Its own audience keeps it from being accepted as an access or ID token,
and access tokens from being accepted as tickets. `mev` fingerprints the address the ticket was
made for, so it never verifies an address it was not sent to (as core/email_tickets.py's `evf`).
The optional claims are simply absent when not asked for: a ticket without them is the same as
before they existed, and `pfp` never depends on them.
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
    **bound: str | bool,
) -> dict[str, Any]:
    """The claims every ticket has (issuer, user, its own audience, times, a jti, the client)
    plus `bound`: the fingerprints that tie it to the user's current state, and what the ticket
    asks of the page that uses it."""
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


def verified_email_fingerprint(user_id: str, email: str) -> str:
    """What `mev` holds: the one address a ticket may mark verified."""
    return fingerprint("keystead-reset-verify-email", user_id, email)


def reset_ticket_claims(
    *,
    issuer: str,
    user: User,
    now: float,
    lifetime: int = RESET_TICKET_LIFETIME,
    client_id: str | None = None,
    result_url: str | None = None,
    include_email: bool = False,
    mark_email_verified: bool = False,
) -> dict[str, Any]:
    """`include_email` only counts with a `result_url`; `mark_email_verified` only for a user with
    an address (ValueError otherwise)."""
    bound: dict[str, str | bool] = {"pfp": password_fingerprint(user.user_id, user.password_hash)}
    if result_url:
        bound["result_url"] = result_url
        if include_email:
            bound["include_email"] = True
    if mark_email_verified:
        if not user.email:
            raise ValueError("the user has no email address")
        bound["mev"] = verified_email_fingerprint(user.user_id, user.email)
    return ticket_claims(
        issuer=issuer, user=user, audience=reset_audience(issuer), now=now, lifetime=lifetime,
        client_id=client_id, **bound,
    )  # fmt: skip


def new_reset_ticket(
    signer: Signer,
    *,
    issuer: str,
    user: User,
    now: float,
    lifetime: int = RESET_TICKET_LIFETIME,
    client_id: str | None = None,
    result_url: str | None = None,
    include_email: bool = False,
    mark_email_verified: bool = False,
) -> str:
    """A signed ticket for `user`, good for `lifetime` seconds or until the password changes.
    The keyword options are the Management API's (reset_ticket_claims)."""
    claims = reset_ticket_claims(
        issuer=issuer, user=user, now=now, lifetime=lifetime, client_id=client_id,
        result_url=result_url, include_email=include_email,
        mark_email_verified=mark_email_verified,
    )  # fmt: skip
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


def marks_email_verified(claims: Mapping[str, Any], user: User) -> bool:
    """Does a usable ticket ask to mark `user`'s address verified, and is it still the address
    the ticket was made for? A changed address still gets its password, but stays unverified."""
    mev = claims.get("mev")
    if not isinstance(mev, str) or not user.email:
        return False
    return hmac.compare_digest(verified_email_fingerprint(user.user_id, user.email), mev)


def includes_email(claims: Mapping[str, Any]) -> bool:
    """Does the redirect to the ticket's result_url name the user's address?"""
    return claims.get("include_email") is True
