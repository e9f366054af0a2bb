"""core/refresh_tokens: verdicts, lifetimes and the kept rotation answer (contract §3.3)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keystead.core.clients import RefreshTokenPolicy
from keystead.core.refresh_tokens import (
    RefreshToken,
    Verdict,
    judge,
    new_lifetimes,
    open_rotation,
    rotated_lifetimes,
    seal_rotation,
)

NOW = 1_700_000_000.0
TOKEN = RefreshToken(
    id="rt1",
    family_id="fam",
    client_id="spa",
    user_id="auth0|a",
    scope=("openid", "offline_access"),
    audience=None,
    created_at=NOW - 100,
    auth_time=NOW - 100,
    family_expires_at=NOW + 1000,
    idle_expires_at=NOW + 500,
)
ROTATED = replace(TOKEN, rotated_at=NOW - 5, rotation_result=b"sealed")


@pytest.mark.parametrize(
    ("token", "client_id", "now", "leeway", "verdict"),
    [
        (TOKEN, "spa", NOW, 10, Verdict.USE),
        (None, "spa", NOW, 10, Verdict.INVALID),
        (TOKEN, "other", NOW, 10, Verdict.INVALID),  # RT-04: no revocation for a stranger
        (replace(TOKEN, revoked_at=NOW - 1), "spa", NOW, 10, Verdict.INVALID),
        (TOKEN, "spa", NOW + 500, 10, Verdict.INVALID),  # idle expiry reached
        (replace(TOKEN, idle_expires_at=None), "spa", NOW + 1000, 10, Verdict.INVALID),  # absolute
        (replace(TOKEN, idle_expires_at=None, family_expires_at=None), "spa", NOW + 1e9, 0,
         Verdict.USE),
        (ROTATED, "spa", NOW, 10, Verdict.REPLAY),
        (ROTATED, "spa", NOW + 5, 10, Verdict.REPLAY),  # exactly at the leeway's end
        (ROTATED, "spa", NOW + 5.001, 10, Verdict.REUSE),
        (ROTATED, "spa", NOW, 0, Verdict.REUSE),  # no leeway: any second use is reuse
        (replace(ROTATED, rotation_result=None), "spa", NOW, 10, Verdict.REUSE),  # RT-03
        (replace(ROTATED, revoked_at=NOW), "spa", NOW, 10, Verdict.INVALID),
        (replace(ROTATED, idle_expires_at=NOW - 1), "spa", NOW, 10, Verdict.INVALID),
    ],
)  # fmt: skip
def test_judge(
    token: RefreshToken | None, client_id: str, now: float, leeway: float, verdict: Verdict
) -> None:
    assert judge(token, client_id=client_id, now=now, leeway=leeway) is verdict


SPA = RefreshTokenPolicy(
    rotation_type="rotating",
    expiration_type="expiring",
    leeway=10,
    token_lifetime=2_592_000,
    infinite_token_lifetime=False,
    idle_token_lifetime=1_296_000,
    infinite_idle_token_lifetime=False,
)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (SPA, (NOW + 2_592_000, NOW + 1_296_000)),
        (RefreshTokenPolicy(), (None, None)),  # Auth0's default: non-expiring
        (replace(SPA, infinite_token_lifetime=True), (None, NOW + 1_296_000)),
        (replace(SPA, infinite_idle_token_lifetime=True), (NOW + 2_592_000, None)),
        (replace(SPA, expiration_type="non-expiring"), (None, None)),
    ],
)
def test_new_lifetimes(
    policy: RefreshTokenPolicy, expected: tuple[float | None, float | None]
) -> None:
    assert new_lifetimes(policy, NOW) == expected


def test_rotation_keeps_the_absolute_expiry_and_restarts_the_idle_one() -> None:
    assert rotated_lifetimes(SPA, TOKEN, NOW + 50) == (NOW + 1000, NOW + 50 + 1_296_000)
    assert rotated_lifetimes(RefreshTokenPolicy(), TOKEN, NOW) == (NOW + 1000, None)


def test_the_kept_answer_opens_only_with_its_token() -> None:
    answer = {"access_token": "a", "refresh_token": "r2", "exp": 1}
    sealed = seal_rotation("rt-one", answer)
    assert b"r2" not in sealed and b"access_token" not in sealed
    assert open_rotation("rt-one", sealed) == answer
    assert open_rotation("rt-two", sealed) is None
    assert open_rotation("rt-one", sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
    assert open_rotation("rt-one", b"") is None
    assert seal_rotation("rt-one", answer) != sealed  # a fresh nonce every time
