"""Email-verification tickets: signed, expiring links that prove a user reads a mailbox
(contract §10.9; the companion of the password-reset tickets in core/tickets.py).

    POST /api/v2/tickets/email-verification, POST /api/v2/jobs/verification-email
        new_verification_ticket(signer, issuer=…, user=…, now=…) → verification_url(…)
    GET /u/email-verification?ticket=…
        verify the JWT (RS256 pinned, aud = verification_audience(issuer), exp)
        → check_verification_ticket(claims, user) → email_verified = true

No table, as for reset tickets: the `evf` claim fingerprints the address the ticket was made
for, so a ticket dies once the user's email changes (it never verifies an address it was not
sent to). Using it twice only verifies the same address again. Its own audience keeps reset
tickets and access tokens out, and keeps these out of the reset page.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from keystead.core.tickets import InvalidTicket, fingerprint, ticket_claims
from keystead.core.tokens import Signer
from keystead.core.users import User

VERIFICATION_PATH: Final = "u/email-verification"
# Auth0's default when ttl_sec is absent or 0: five days.
VERIFICATION_TICKET_LIFETIME: Final = 432_000
MAX_TICKET_LIFETIME: Final = 30 * 86_400  # a longer-lived link is a credential left lying around


def verification_audience(issuer: str) -> str:
    """`{issuer}u/email-verification`: the audience only verification tickets carry."""
    return issuer + VERIFICATION_PATH


def verification_url(issuer: str, ticket: str) -> str:
    """The link the user receives."""
    return f"{issuer}{VERIFICATION_PATH}?ticket={quote(ticket, safe='')}"


def email_fingerprint(user_id: str, email: str) -> str:
    """A short digest binding the ticket to one user's one address (case as stored)."""
    return fingerprint("keystead-verify-email", user_id, email)


def new_verification_ticket(
    signer: Signer,
    *,
    issuer: str,
    user: User,
    now: float,
    lifetime: int = VERIFICATION_TICKET_LIFETIME,
    result_url: str | None = None,
    client_id: str | None = None,
) -> str:
    """A signed ticket for `user`'s current email address; ValueError when it has none."""
    if not user.email:
        raise ValueError("the user has no email address")
    bound = {"evf": email_fingerprint(user.user_id, user.email)}
    if result_url:
        bound["result_url"] = result_url
    claims = ticket_claims(
        issuer=issuer, user=user, audience=verification_audience(issuer), now=now,
        lifetime=lifetime, client_id=client_id, **bound,
    )  # fmt: skip
    return signer.sign(claims)


def verification_subject(claims: Mapping[str, Any]) -> str:
    """The user id of verified ticket claims; InvalidTicket when it is not a verification one."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or not isinstance(claims.get("evf"), str):
        raise InvalidTicket("not an email verification ticket")
    return sub


def check_verification_ticket(claims: Mapping[str, Any], user: User | None) -> User:
    """Is a verified ticket still good for `user` (the current row of its `sub`)?

    Signature, audience and expiry are the verifier's job; this checks the address.
    """
    sub = verification_subject(claims)
    if user is None or user.user_id != sub:
        raise InvalidTicket("the user no longer exists")
    if not user.email:
        raise InvalidTicket("the user has no email address")
    expected = email_fingerprint(user.user_id, user.email)
    if not hmac.compare_digest(expected, str(claims["evf"])):
        raise InvalidTicket("the email address changed since the ticket was issued")
    return user


def ticket_result_url(claims: Mapping[str, Any]) -> str | None:
    value = claims.get("result_url")
    return value if isinstance(value, str) and value else None
