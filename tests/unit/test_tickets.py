"""core/tickets.py: reset tickets are bound to their audience, their user and the password hash."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keystead.core.keys import KeyRing, SigningKey, generate_signing_key
from keystead.core.tickets import (
    RESET_TICKET_LIFETIME,
    InvalidTicket,
    check_reset_ticket,
    includes_email,
    marks_email_verified,
    new_reset_ticket,
    password_fingerprint,
    reset_audience,
    reset_ticket_claims,
    reset_url,
    ticket_subject,
    verified_email_fingerprint,
)
from keystead.core.users import User
from keystead.errors import InvalidToken

ISSUER = "http://keystead.test/"
NOW = 1_700_000_000
USER = User(user_id="auth0|0123456789abcdef01234567", email="a@example.com", password_hash="$h1")


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    pem, cert, kid = generate_signing_key(NOW)
    return KeyRing([SigningKey.load(kid=kid, state="current", private_pem=pem, cert_der=cert)])


def test_claims_carry_the_reset_audience_and_a_one_hour_expiry() -> None:
    claims = reset_ticket_claims(issuer=ISSUER, user=USER, now=NOW + 0.7, client_id="cid")
    assert claims["aud"] == "http://keystead.test/u/reset-password" == reset_audience(ISSUER)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == USER.user_id
    assert claims["iat"] == NOW
    assert claims["exp"] == NOW + RESET_TICKET_LIFETIME == NOW + 3600
    assert claims["azp"] == "cid"
    assert claims["pfp"] == password_fingerprint(USER.user_id, "$h1")
    assert "$h1" not in str(claims)  # the hash itself never leaves the server


def test_each_ticket_is_distinct() -> None:
    one = reset_ticket_claims(issuer=ISSUER, user=USER, now=NOW)
    two = reset_ticket_claims(issuer=ISSUER, user=USER, now=NOW)
    assert one["jti"] != two["jti"]


def test_signed_ticket_verifies_only_for_its_audience(ring: KeyRing) -> None:
    ticket = new_reset_ticket(ring, issuer=ISSUER, user=USER, now=NOW)
    claims = ring.verify(ticket, issuer=ISSUER, audience=reset_audience(ISSUER), now=NOW + 10)
    assert check_reset_ticket(claims, USER) == USER
    with pytest.raises(InvalidToken):
        ring.verify(ticket, issuer=ISSUER, audience=ISSUER + "userinfo", now=NOW + 10)


def test_ticket_expires(ring: KeyRing) -> None:
    ticket = new_reset_ticket(ring, issuer=ISSUER, user=USER, now=NOW, lifetime=60)
    with pytest.raises(InvalidToken, match="expired"):
        ring.verify(ticket, issuer=ISSUER, audience=reset_audience(ISSUER), now=NOW + 60)


@pytest.mark.parametrize(
    "current",
    [
        replace(USER, password_hash="$h2"),  # the password was changed: the ticket was used
        replace(USER, password_hash=None),
        replace(USER, user_id="auth0|ffffffffffffffffffffffff"),
        None,  # the user was deleted
    ],
)
def test_ticket_dies_once_the_password_or_user_changes(current: User | None) -> None:
    claims = reset_ticket_claims(issuer=ISSUER, user=USER, now=NOW)
    with pytest.raises(InvalidTicket):
        check_reset_ticket(claims, current)


def test_user_without_a_password_gets_a_ticket_that_dies_once_one_is_set() -> None:
    bare = replace(USER, password_hash=None)
    claims = reset_ticket_claims(issuer=ISSUER, user=bare, now=NOW)
    assert check_reset_ticket(claims, bare) == bare
    with pytest.raises(InvalidTicket):
        check_reset_ticket(claims, replace(bare, password_hash="$new"))


@pytest.mark.parametrize(
    "claims",
    [{}, {"sub": "auth0|1"}, {"pfp": "x"}, {"sub": 5, "pfp": "x"}, {"sub": "", "pfp": "x"}],
)
def test_claims_that_are_not_a_ticket_are_refused(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidTicket):
        ticket_subject(claims)


def test_fingerprint_depends_on_user_and_hash() -> None:
    fp = password_fingerprint("auth0|1", "$h")
    assert fp == password_fingerprint("auth0|1", "$h")
    assert fp != password_fingerprint("auth0|2", "$h")
    assert fp != password_fingerprint("auth0|1", "$h2")
    assert len(fp) == 22  # 128 bits, base64url without padding


def test_reset_url_quotes_the_ticket() -> None:
    assert reset_url(ISSUER, "a.b+c") == "http://keystead.test/u/reset-password?ticket=a.b%2Bc"


BASE_CLAIMS = {"iss", "sub", "aud", "iat", "exp", "jti", "pfp"}


def test_the_hosted_forms_ticket_carries_no_options() -> None:
    claims = reset_ticket_claims(issuer=ISSUER, user=USER, now=NOW)
    assert set(claims) == BASE_CLAIMS  # as before the options existed
    assert not includes_email(claims) and not marks_email_verified(claims, USER)


def test_options_are_claims_beside_an_unchanged_password_binding() -> None:
    plain = reset_ticket_claims(issuer=ISSUER, user=USER, now=NOW)
    claims = reset_ticket_claims(
        issuer=ISSUER, user=USER, now=NOW, result_url="https://app.example/done",
        include_email=True, mark_email_verified=True,
    )  # fmt: skip
    assert set(claims) == BASE_CLAIMS | {"result_url", "include_email", "mev"}
    assert claims["pfp"] == plain["pfp"]
    assert claims["result_url"] == "https://app.example/done" and includes_email(claims)
    assert claims["mev"] == verified_email_fingerprint(USER.user_id, "a@example.com")
    assert "a@example.com" not in str(claims)
    assert check_reset_ticket(claims, USER) == USER
    assert marks_email_verified(claims, USER)


def test_include_email_needs_a_result_url() -> None:
    claims = reset_ticket_claims(issuer=ISSUER, user=USER, now=NOW, include_email=True)
    assert "include_email" not in claims and not includes_email(claims)


@pytest.mark.parametrize(
    "current",
    [
        replace(USER, email="b@example.com"),  # the address changed since the ticket was made
        replace(USER, email="A@example.com"),
        replace(USER, email=None),
        replace(USER, user_id="auth0|ffffffffffffffffffffffff"),
    ],
)
def test_mark_email_verified_only_for_the_address_it_was_made_for(current: User) -> None:
    claims = reset_ticket_claims(issuer=ISSUER, user=USER, now=NOW, mark_email_verified=True)
    assert not marks_email_verified(claims, current)


def test_mark_email_verified_needs_an_address() -> None:
    with pytest.raises(ValueError, match="no email"):
        reset_ticket_claims(
            issuer=ISSUER, user=replace(USER, email=None), now=NOW, mark_email_verified=True
        )


def test_options_survive_signing(ring: KeyRing) -> None:
    ticket = new_reset_ticket(
        ring, issuer=ISSUER, user=USER, now=NOW, result_url="https://app.example/done",
        include_email=True, mark_email_verified=True,
    )  # fmt: skip
    claims = ring.verify(ticket, issuer=ISSUER, audience=reset_audience(ISSUER), now=NOW + 10)
    assert claims["result_url"] == "https://app.example/done"
    assert includes_email(claims) and marks_email_verified(claims, USER)
