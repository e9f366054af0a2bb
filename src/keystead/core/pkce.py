"""PKCE, RFC 7636: /authorize challenge checks, /oauth/token verifier checks (contract §2.1, §3.2).

    /authorize      check_challenge(code_challenge, code_challenge_method, required=…)
                    → PkceChallenge | None, stored with the code
    /oauth/token    verify_code_verifier(code_verifier, stored challenge, stored method)

Only S256 is accepted at /authorize by default (security case PK-02); `plain` stays verifiable so
that a deployment that opts in with `allow_plain=True` can redeem its codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final, Literal

from keystead.errors import InvalidGrant, InvalidRequest

S256: Final = "S256"
PLAIN: Final = "plain"
# What discovery advertises as `code_challenge_methods_supported` (security case OI-10).
SUPPORTED_METHODS: Final[tuple[str, ...]] = (S256,)

Method = Literal["S256", "plain"]

# RFC 7636 §4.1: 43 to 128 characters of ALPHA / DIGIT / "-" / "." / "_" / "~".
_VERIFIER: Final = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# BASE64URL(SHA256(…)) without padding is always exactly 43 characters.
_S256_CHALLENGE: Final = re.compile(r"[A-Za-z0-9\-_]{43}")

VERIFY_FAILED: Final = "Failed to verify code verifier"  # Auth0's text (contract §3.9, obs.)


@dataclass(frozen=True)
class PkceChallenge:
    """A validated challenge, to be stored with the authorization code."""

    challenge: str
    method: Method


def check_challenge(
    challenge: str | None,
    method: str | None,
    *,
    required: bool = False,
    allow_plain: bool = False,
) -> PkceChallenge | None:
    """Validate the PKCE parameters of an /authorize request; raise InvalidRequest if bad.

    `required` is `requires_pkce(client)` (public clients). Absent parameters (None or "") give
    None when PKCE is optional. A method without a challenge is an error (RFC 7636 §4.4.1); a
    challenge without a method means `plain` (RFC 7636 §4.3), refused unless `allow_plain`.
    """
    challenge = challenge or None
    method = method or None
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method was sent without code_challenge")
        if required:
            raise InvalidRequest("Missing required parameter: code_challenge")
        return None
    if method is None:
        method = PLAIN
    if method == S256:
        if not _S256_CHALLENGE.fullmatch(challenge):
            raise InvalidRequest("code_challenge must be 43 base64url characters for S256")
        return PkceChallenge(challenge, S256)
    if method == PLAIN and allow_plain:
        if not _VERIFIER.fullmatch(challenge):
            raise InvalidRequest("code_challenge must be 43-128 unreserved characters")
        return PkceChallenge(challenge, PLAIN)
    # RFC 7636 §4.4.1: "transform algorithm not supported". The method is not echoed: it is
    # attacker-chosen text and error descriptions stay printable ASCII (security case AZ-09).
    raise InvalidRequest("code_challenge_method not supported: transform algorithm not supported")


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_code_verifier(verifier: str | None, challenge: str | None, method: str | None) -> None:
    """Check the token request's `code_verifier` against the code's stored challenge.

    Raises InvalidGrant (403, contract §3.9) when a challenge was stored and the verifier is
    missing, malformed or wrong; and when no challenge was stored but a verifier is sent
    (RFC 9700 §2.1.1: otherwise PKCE could be downgraded). Returns None on success.
    """
    verifier = verifier or None
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant(VERIFY_FAILED, detail="code_verifier sent for a code without PKCE")
        return
    if verifier is None:
        raise InvalidGrant("Missing required parameter: code_verifier")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant(VERIFY_FAILED, detail="code_verifier syntax (RFC 7636 §4.1)")
    if method == S256:
        computed = s256_challenge(verifier)
    elif method == PLAIN or method is None:
        computed = verifier
    else:  # a stored method we never accepted: refuse rather than guess
        raise InvalidGrant(VERIFY_FAILED, detail=f"unknown stored method {method!r}")
    if not hmac.compare_digest(computed.encode("ascii"), challenge.encode("ascii", "replace")):
        raise InvalidGrant(VERIFY_FAILED, detail="code_verifier does not match code_challenge")
