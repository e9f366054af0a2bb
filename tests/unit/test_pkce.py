"""PKCE rules (RFC 7636; contract §2.1, §3.2; security cases PK-01…PK-08)."""

from __future__ import annotations

import pytest

from keystead.core.pkce import (
    PLAIN,
    S256,
    SUPPORTED_METHODS,
    PkceChallenge,
    check_challenge,
    s256_challenge,
    verify_code_verifier,
)
from keystead.errors import InvalidGrant, InvalidRequest

# RFC 7636 Appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
PLAIN_VERIFIER = "a" * 43


def test_rfc_7636_appendix_b_vector() -> None:
    assert s256_challenge(RFC_VERIFIER) == RFC_CHALLENGE


def test_discovery_advertises_only_s256() -> None:
    assert SUPPORTED_METHODS == ("S256",)


# --- /authorize ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("challenge", "method", "required", "allow_plain", "expected"),
    [
        (RFC_CHALLENGE, "S256", False, False, PkceChallenge(RFC_CHALLENGE, S256)),
        (RFC_CHALLENGE, "S256", True, False, PkceChallenge(RFC_CHALLENGE, S256)),
        (None, None, False, False, None),  # optional for confidential clients (PK-08)
        ("", "", False, False, None),  # empty string = absent (contract §0.2)
        (PLAIN_VERIFIER, "plain", False, True, PkceChallenge(PLAIN_VERIFIER, PLAIN)),
        (PLAIN_VERIFIER, None, False, True, PkceChallenge(PLAIN_VERIFIER, PLAIN)),  # §4.3
        ("~" * 128, "plain", False, True, PkceChallenge("~" * 128, PLAIN)),
    ],
)
def test_check_challenge_accepts(
    challenge: str | None,
    method: str | None,
    required: bool,
    allow_plain: bool,
    expected: PkceChallenge | None,
) -> None:
    got = check_challenge(challenge, method, required=required, allow_plain=allow_plain)
    assert got == expected


@pytest.mark.parametrize(
    ("challenge", "method", "required", "allow_plain", "message"),
    [
        # PK-01: public client without a challenge.
        (None, None, True, False, "Missing required parameter: code_challenge"),
        ("", None, True, False, "Missing required parameter: code_challenge"),
        # PK-07: method without challenge, wrong length or charset, unknown method.
        (None, "S256", False, False, "without code_challenge"),
        (RFC_CHALLENGE[:-1], "S256", False, False, "43 base64url"),
        (RFC_CHALLENGE + "A", "S256", False, False, "43 base64url"),
        (RFC_CHALLENGE[:-1] + "=", "S256", False, False, "43 base64url"),
        (RFC_CHALLENGE[:-1] + "+", "S256", False, False, "43 base64url"),
        (RFC_CHALLENGE[:-1] + ".", "S256", False, False, "43 base64url"),
        (RFC_CHALLENGE, "S512", False, False, "transform algorithm not supported"),
        (RFC_CHALLENGE, "s256", False, False, "transform algorithm not supported"),
        # PK-02: plain is refused unless the deployment opts in.
        (PLAIN_VERIFIER, "plain", False, False, "transform algorithm not supported"),
        (PLAIN_VERIFIER, None, False, False, "transform algorithm not supported"),
        ("a" * 42, "plain", False, True, "43-128"),
        ("a" * 129, "plain", False, True, "43-128"),
        ("a" * 42 + "!", "plain", False, True, "43-128"),
    ],
)
def test_check_challenge_refuses(
    challenge: str | None, method: str | None, required: bool, allow_plain: bool, message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_challenge(challenge, method, required=required, allow_plain=allow_plain)
    assert caught.value.error == "invalid_request"
    assert message in caught.value.description


def test_unknown_method_is_not_echoed() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_challenge(RFC_CHALLENGE, "S256\r\n<script>", required=True)
    assert "<script>" not in caught.value.description
    assert caught.value.description.isprintable()


# --- /oauth/token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verifier", "challenge", "method"),
    [
        (RFC_VERIFIER, RFC_CHALLENGE, "S256"),
        (PLAIN_VERIFIER, PLAIN_VERIFIER, "plain"),
        ("A" * 128, s256_challenge("A" * 128), "S256"),
        ("-._~" * 11, s256_challenge("-._~" * 11), "S256"),
        (None, None, None),  # no PKCE at all
        ("", None, None),  # empty string = absent
    ],
)
def test_verify_code_verifier_accepts(
    verifier: str | None, challenge: str | None, method: str | None
) -> None:
    verify_code_verifier(verifier, challenge, method)  # no exception


@pytest.mark.parametrize(
    ("verifier", "challenge", "method", "description"),
    [
        # PK-03: the code has a challenge, the request no verifier.
        (None, RFC_CHALLENGE, "S256", "Missing required parameter: code_verifier"),
        ("", RFC_CHALLENGE, "S256", "Missing required parameter: code_verifier"),
        # PK-04: syntactically valid but wrong.
        ("b" * 43, RFC_CHALLENGE, "S256", "Failed to verify code verifier"),
        (RFC_VERIFIER[:-1] + "j", RFC_CHALLENGE, "S256", "Failed to verify code verifier"),
        # The challenge itself sent as verifier must not pass S256.
        (RFC_CHALLENGE, RFC_CHALLENGE, "S256", "Failed to verify code verifier"),
        ("b" * 43, PLAIN_VERIFIER, "plain", "Failed to verify code verifier"),
        # RFC 7636 §4.1 syntax: too short, too long, bad characters, non-ASCII.
        ("a" * 42, s256_challenge("a" * 42), "S256", "Failed to verify code verifier"),
        ("a" * 129, s256_challenge("a" * 129), "S256", "Failed to verify code verifier"),
        ("a" * 42 + "+", RFC_CHALLENGE, "S256", "Failed to verify code verifier"),
        ("a" * 42 + "é", RFC_CHALLENGE, "S256", "Failed to verify code verifier"),
        # RFC 9700 §2.1.1: a verifier for a code issued without a challenge (downgrade).
        (RFC_VERIFIER, None, None, "Failed to verify code verifier"),
        # A stored method we never issue.
        (RFC_VERIFIER, RFC_CHALLENGE, "S512", "Failed to verify code verifier"),
    ],
)
def test_verify_code_verifier_refuses(
    verifier: str | None, challenge: str | None, method: str | None, description: str
) -> None:
    with pytest.raises(InvalidGrant) as caught:
        verify_code_verifier(verifier, challenge, method)
    assert caught.value.error == "invalid_grant"
    assert caught.value.status == 403
    assert caught.value.description == description


def test_authorize_then_token_round_trip() -> None:
    stored = check_challenge(s256_challenge(RFC_VERIFIER), "S256", required=True)
    assert stored is not None
    verify_code_verifier(RFC_VERIFIER, stored.challenge, stored.method)
