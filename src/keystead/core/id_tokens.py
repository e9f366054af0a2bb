"""ID token and /userinfo claims (contract §4.3, §5).

    id_token = signer.sign(id_token_claims(...))    when `openid` was granted
    userinfo_claims(user, scopes)                   the /userinfo body

Both release the profile claims of the granted scopes: user_claims().
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from keystead.core.scopes import CLAIMS_BY_SCOPE, OPENID
from keystead.core.tokens import _with_extra
from keystead.core.users import User


def iso8601(timestamp: float) -> str:
    """Epoch seconds → `2024-05-01T09:12:33.417Z` (contract §0.6): UTC, milliseconds."""
    millis = round(timestamp * 1000)
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis % 1000:03d}Z"


def half_hash(value: str) -> str:
    """`at_hash` / `c_hash` for SHA-256 algorithms: left half of the digest (OIDC §3.1.3.6)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def user_claims(user: User, scopes: Iterable[str]) -> dict[str, Any]:
    """The profile claims `scopes` release for `user` (CLAIMS_BY_SCOPE), only those known.

    `updated_at` is an ISO string, as Auth0 sends it; `*_verified` only with their value.
    """
    granted = set(scopes)
    out: dict[str, Any] = {}
    for scope, names in CLAIMS_BY_SCOPE.items():
        if scope == OPENID or scope not in granted:
            continue
        for name in names:
            value = _user_claim(user, name)
            if value is not None:
                out[name] = value
    return out


def _user_claim(user: User, name: str) -> Any:
    if name == "updated_at":
        return iso8601(user.updated_at) if user.updated_at else None
    if name == "email_verified":
        return bool(user.email_verified) if user.email else None
    if name == "phone_number_verified":
        return bool(user.phone_verified) if user.phone_number else None
    return getattr(user, name, None)  # claims the User does not model yet are simply absent


def userinfo_claims(user: User, scopes: Iterable[str]) -> dict[str, Any]:
    """The /userinfo body: `sub` and the current profile claims of the granted scopes."""
    return {"sub": user.user_id, **user_claims(user, scopes)}


def id_token_claims(
    *,
    issuer: str,
    user: User,
    client_id: str,
    scopes: Iterable[str],
    now: float,
    auth_time: float,
    lifetime: int,
    nonce: str | None = None,
    session_id: str | None = None,
    org_id: str | None = None,
    org_name: str | None = None,
    access_token: str | None = None,
    code: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Claims of an ID token (contract §4.3).

    `lifetime` is the client's `jwt_lifetime_in_seconds`; `auth_time` the session's last login
    (kept unchanged across refreshes, security case RT-10). `nonce` is echoed byte-exact (OI-01).
    `access_token` / `code` add `at_hash` / `c_hash` (SHA-256 algorithms, OI-02).
    """
    iat = int(now)
    claims: dict[str, Any] = {
        **user_claims(user, scopes),
        "iss": issuer,
        "sub": user.user_id,
        "aud": client_id,
        "iat": iat,
        "exp": iat + int(lifetime),
        "auth_time": int(auth_time),
    }
    optional = {
        "nonce": nonce,
        "sid": session_id,
        "org_id": org_id,
        "org_name": org_name,
        "at_hash": half_hash(access_token) if access_token else None,
        "c_hash": half_hash(code) if code else None,
    }
    claims.update({name: value for name, value in optional.items() if value})
    return _with_extra(claims, extra)
