"""core/email_tickets.py: verification tickets are bound to their audience, user and address."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keystead.core.email_tickets import (
    VERIFICATION_TICKET_LIFETIME,
    check_verification_ticket,
    new_verification_ticket,
    ticket_result_url,
    verification_audience,
    verification_subject,
    verification_url,
)
from keystead.core.keys import KeyRing, SigningKey, generate_signing_key
from keystead.core.tickets import InvalidTicket, new_reset_ticket, reset_audience
from keystead.core.users import User
from keystead.errors import InvalidToken

ISSUER = "http://keystead.test/"
NOW = 1_700_000_000
USER = User(user_id="auth0|0123456789abcdef01234567", email="a@example.com")
AUD = "http://keystead.test/u/email-verification"


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    pem, cert, kid = generate_signing_key(NOW)
    return KeyRing([SigningKey.load(kid=kid, state="current", private_pem=pem, cert_der=cert)])


def test_a_ticket_verifies_for_its_user_and_address(ring: KeyRing) -> None:
    ticket = new_verification_ticket(
        ring, issuer=ISSUER, user=USER, now=NOW, result_url="https://a/"
    )
    claims = ring.verify(ticket, issuer=ISSUER, audience=AUD, now=NOW + 1)
    assert verification_audience(ISSUER) == AUD
    assert claims["exp"] - claims["iat"] == VERIFICATION_TICKET_LIFETIME == 432_000
    assert verification_subject(claims) == USER.user_id
    assert check_verification_ticket(claims, USER) is USER
    assert ticket_result_url(claims) == "https://a/"
    assert verification_url(ISSUER, "a.b+c").endswith("u/email-verification?ticket=a.b%2Bc")


def test_a_changed_address_or_another_user_kills_it(ring: KeyRing) -> None:
    claims = ring.verify(
        new_verification_ticket(ring, issuer=ISSUER, user=USER, now=NOW),
        issuer=ISSUER,
        audience=AUD,
        now=NOW,
    )
    for user in (
        replace(USER, email="b@example.com"),
        replace(USER, email=None),
        replace(USER, user_id="auth0|other"),
        None,
    ):
        with pytest.raises(InvalidTicket):
            check_verification_ticket(claims, user)


def test_expired_and_foreign_tickets_fail(ring: KeyRing) -> None:
    ticket = new_verification_ticket(ring, issuer=ISSUER, user=USER, now=NOW, lifetime=60)
    with pytest.raises(InvalidToken):
        ring.verify(ticket, issuer=ISSUER, audience=AUD, now=NOW + 61)
    with pytest.raises(InvalidToken):  # not a reset ticket
        ring.verify(ticket, issuer=ISSUER, audience=reset_audience(ISSUER), now=NOW)
    reset = new_reset_ticket(ring, issuer=ISSUER, user=USER, now=NOW)
    with pytest.raises(InvalidToken):  # and a reset ticket is not one of these
        ring.verify(reset, issuer=ISSUER, audience=AUD, now=NOW)
    reset_claims = ring.verify(reset, issuer=ISSUER, audience=reset_audience(ISSUER), now=NOW)
    with pytest.raises(InvalidTicket):
        verification_subject(reset_claims)


def test_a_user_without_email_gets_no_ticket(ring: KeyRing) -> None:
    with pytest.raises(ValueError, match="no email"):
        new_verification_ticket(ring, issuer=ISSUER, user=replace(USER, email=None), now=NOW)
