"""core/mfa.py: TOTP codes, spent steps and the signed challenge between password and code."""

from __future__ import annotations

from typing import Any

import jwt
import pyotp
import pytest

from keystead.core.mfa import (
    CHALLENGE_LIFETIME,
    CHALLENGE_TYP,
    STEP_SECONDS,
    browser_binding,
    challenge_audience,
    client_binding,
    is_fresh,
    matching_step,
    new_challenge,
    read_challenge,
    spent_mark,
    step_start,
)
from keystead.errors import InvalidToken

SECRET = pyotp.random_base32()
NOW = 1_800_000_015.0  # 15 s into a step
ISSUER = "https://id.example/"


def code_at(t: float, secret: str = SECRET) -> str:
    return pyotp.TOTP(secret).at(int(t))


def test_now_and_the_steps_either_side_match_and_no_others() -> None:
    step = int(NOW // STEP_SECONDS)
    assert matching_step(SECRET, code_at(NOW), NOW) == step
    assert matching_step(SECRET, code_at(NOW - STEP_SECONDS), NOW) == step - 1
    assert matching_step(SECRET, code_at(NOW + STEP_SECONDS), NOW) == step + 1
    assert matching_step(SECRET, code_at(NOW - 2 * STEP_SECONDS), NOW) is None
    assert matching_step(SECRET, code_at(NOW + 2 * STEP_SECONDS), NOW) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", " 123456"])
def test_codes_that_are_not_six_ascii_digits_never_match(code: str) -> None:
    assert matching_step(SECRET, code, NOW) is None


def test_a_secret_that_is_not_base32_matches_nothing() -> None:
    assert matching_step("not base32 at all!", "123456", NOW) is None


def test_a_spent_step_and_every_earlier_one_stay_spent() -> None:
    step = int(NOW // STEP_SECONDS)
    assert is_fresh(step, None)
    mark = spent_mark(step, NOW)
    assert mark == NOW
    assert not is_fresh(step, mark) and not is_fresh(step - 1, mark)
    assert is_fresh(step + 1, mark)
    # a code of the next step, accepted early, spends now's step too
    ahead = spent_mark(step + 1, NOW)
    assert ahead == step_start(step + 1)
    assert not is_fresh(step + 1, ahead) and not is_fresh(step, ahead)
    assert is_fresh(step + 2, ahead)


class _Signer:
    def __init__(self) -> None:
        self.key = "test-signing-key-0123456789abcdef"

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        return jwt.encode(claims, self.key, algorithm="HS256", headers={"typ": typ})

    def claims(self, token: str) -> dict[str, Any]:
        return jwt.decode(
            token,
            self.key,
            algorithms=["HS256"],
            audience=challenge_audience(ISSUER),
            options={"verify_exp": False, "verify_iat": False},  # NOW is a fixed instant
        )


def test_a_challenge_names_the_user_factor_binding_and_expires() -> None:
    signer = _Signer()
    token = new_challenge(
        signer, issuer=ISSUER, user_id="auth0|u1", method_id="totp|dev_x",
        bound_to=client_binding("C1"), now=NOW, extra={"audience": "https://api/"},
    )  # fmt: skip
    assert jwt.get_unverified_header(token)["typ"] == CHALLENGE_TYP
    claims = signer.claims(token)
    assert claims["aud"] == ISSUER + "u/mfa-challenge"
    assert claims["exp"] - claims["iat"] == CHALLENGE_LIFETIME
    found = read_challenge(claims, bound_to=client_binding("C1"))
    assert (found.user_id, found.method_id) == ("auth0|u1", "totp|dev_x")
    assert found.extra == {"audience": "https://api/"}
    with pytest.raises(InvalidToken):
        read_challenge(claims, bound_to=client_binding("C2"))
    with pytest.raises(InvalidToken):
        read_challenge(claims, bound_to=browser_binding("csrf"))


def test_browser_bindings_differ_per_csrf_token_and_hide_it() -> None:
    one, two = browser_binding("token-one"), browser_binding("token-two")
    assert one != two and "token-one" not in one
    assert one == browser_binding("token-one")


@pytest.mark.parametrize(
    "claims",
    [
        {"mfa": "m", "bnd": "client:C1", "exp": 1},
        {"sub": "u", "bnd": "client:C1", "exp": 1},
        {"sub": "u", "mfa": "m", "exp": 1},
        {"sub": "u", "mfa": "m", "bnd": "client:C1", "exp": 1, "ext": ["not", "a", "map"]},
    ],
)
def test_malformed_challenges_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        read_challenge(claims, bound_to="client:C1")
