"""Refresh tokens: lifetimes, rotation, the reuse leeway and reuse detection (contract §3.3).

    issue            new_lifetimes(policy, now)                 a new family (code, password)
    refresh          judge(token, client_id=…, now=…, leeway=…) → Verdict
                       USE      exchange it (rotating: rotate it; see rotated_lifetimes)
                       REPLAY   rotated within the leeway: answer the same pair again
                       REUSE    rotated earlier: revoke the family (log `ferrt`)
                       INVALID  unknown, revoked, expired or another client's
    rotate           seal_rotation(token, body) / open_rotation(token, sealed)

A family is every token descended from one login; it shares `family_id` and one absolute expiry,
fixed at issuance. The idle expiry restarts on every exchange. A rotated token keeps the answer
it produced, encrypted under a key derived from the token itself, so that a retry within the
leeway (parallel browser tabs) gets the same pair; the next rotation clears it, and a retry after
that, or outside the leeway, is reuse.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keystead.core.clients import RefreshTokenPolicy

INVALID_REFRESH_TOKEN: Final = "Unknown or invalid refresh token."  # contract §3.3, spa-js matches
USER_BLOCKED: Final = "user is blocked"  # contract §3.3: spa-js logs the user out on this text
_SEAL_INFO: Final = b"keystead refresh-token rotation result v1"
_NONCE_BYTES: Final = 12


class Verdict(Enum):
    USE = "use"
    REPLAY = "replay"
    REUSE = "reuse"
    INVALID = "invalid"


@dataclass(frozen=True)
class RefreshToken:
    """A stored refresh token, as the rules see it (the token itself is never stored)."""

    id: str
    family_id: str
    client_id: str
    user_id: str
    scope: tuple[str, ...]
    audience: str | None
    created_at: float
    auth_time: float
    sid: str | None = None
    parent_id: str | None = None  # the token this one replaced, whose kept answer it clears
    family_expires_at: float | None = None
    idle_expires_at: float | None = None
    rotated_at: float | None = None
    revoked_at: float | None = None
    rotation_result: bytes | None = None
    amr: tuple[str, ...] = ()  # the family's first login's (RFC 8176), in every token it signs

    def is_expired(self, now: float) -> bool:
        return any(
            at is not None and now >= at for at in (self.family_expires_at, self.idle_expires_at)
        )


@dataclass(frozen=True)
class NewRefreshToken:
    """What a grant stores for a token it issues."""

    family_id: str
    client_id: str
    user_id: str
    scope: tuple[str, ...]
    audience: str | None
    auth_time: float
    sid: str | None = None
    parent_id: str | None = None
    family_expires_at: float | None = None
    idle_expires_at: float | None = None
    device_name: str | None = None
    amr: tuple[str, ...] = ()


class RefreshTokenStore(Protocol):
    """Storage of refresh tokens, looked up by digest (storage/repositories/refresh_tokens.py)."""

    async def find(self, token: str) -> RefreshToken | None: ...

    async def create(self, token: str, new: NewRefreshToken) -> RefreshToken: ...

    async def rotate(self, token: str, *, now: float, result: bytes | None) -> bool:
        """Mark `token` rotated, keeping `result` (None: no leeway, nothing to keep), only if it
        is still unrotated and live; False when another request got there first."""

    async def touch(self, token: str, *, idle_expires_at: float) -> None:
        """A non-rotating token was used: its idle expiry restarts."""

    async def clear_result(self, token_id: str) -> None: ...

    async def revoke_family(self, family_id: str, *, now: float) -> int: ...


def new_lifetimes(policy: RefreshTokenPolicy, now: float) -> tuple[float | None, float | None]:
    """(absolute, idle) expiry of a new family; None means never (contract §3.3)."""
    if policy.expiration_type != "expiring":
        return None, None
    absolute = None if policy.infinite_token_lifetime else now + policy.token_lifetime
    return absolute, _idle(policy, now)


def rotated_lifetimes(
    policy: RefreshTokenPolicy, parent: RefreshToken, now: float
) -> tuple[float | None, float | None]:
    """A successor keeps the family's absolute expiry; its idle expiry starts again."""
    if policy.expiration_type != "expiring":
        return parent.family_expires_at, None
    return parent.family_expires_at, _idle(policy, now)


def _idle(policy: RefreshTokenPolicy, now: float) -> float | None:
    return None if policy.infinite_idle_token_lifetime else now + policy.idle_token_lifetime


def judge(token: RefreshToken | None, *, client_id: str, now: float, leeway: float) -> Verdict:
    """What to do with a presented refresh token (contract §3.3, security RT-01..RT-09).

    Another client's token is INVALID but stays usable by its owner (RT-04). Only a token
    rotated within `leeway` seconds that still holds its answer is REPLAY: the next rotation
    clears that answer, so a token two generations back is always REUSE (RT-03).
    """
    if token is None or token.revoked_at is not None or token.client_id != client_id:
        return Verdict.INVALID
    if token.is_expired(now):
        return Verdict.INVALID
    if token.rotated_at is None:
        return Verdict.USE
    if token.rotation_result is not None and now - token.rotated_at <= leeway:
        return Verdict.REPLAY
    return Verdict.REUSE


# --- the kept answer ---------------------------------------------------------------------------


def _cipher(token: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(
        token.encode("utf-8", "surrogatepass")
    )
    return AESGCM(key)


def seal_rotation(token: str, answer: dict[str, Any]) -> bytes:
    """Encrypt the answer a rotation of `token` gave, under a key only `token` yields.

    The database alone never holds a usable token: the answer opens only for whoever presents
    the rotated token again (and storage may seal it once more with the server's secret key).
    """
    nonce = os.urandom(_NONCE_BYTES)
    plain = json.dumps(answer, separators=(",", ":")).encode()
    return nonce + _cipher(token).encrypt(nonce, plain, None)


def open_rotation(token: str, sealed: bytes) -> dict[str, Any] | None:
    """The answer sealed by `seal_rotation`, or None when it does not open."""
    nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    try:
        value = json.loads(_cipher(token).decrypt(nonce, body, None))
    except (InvalidTag, ValueError):
        return None
    return value if isinstance(value, dict) else None
