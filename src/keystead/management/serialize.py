"""User → Auth0's user JSON (contract §9.1, §0.6): what every users endpoint answers.

Dates are ISO-8601 UTC with milliseconds; the primary identity comes first; empty metadata and
unset fields are left out; the password hash never leaves, and IdP tokens only with
`read:user_idp_tokens`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from keystead.core.policy_fields import IDP_TOKEN_FIELDS
from keystead.core.users import Identity, User
from keystead.management.params import Projection

# Root fields in Auth0's order; each is sent only when set.
_STRINGS = ("username", "phone_number")
_NAMES = ("picture", "name", "nickname", "given_name", "family_name")


def iso(timestamp: float) -> str:
    """`2024-05-01T09:12:33.417Z`: milliseconds, always UTC, always a `Z`."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def identity_json(identity: Identity, *, idp_tokens: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "connection": identity.connection,
        "provider": identity.provider,
        "user_id": identity.user_id,
        "isSocial": identity.is_social,
    }
    if identity.profile_data:
        profile = dict(identity.profile_data)
        if not idp_tokens:
            for name in IDP_TOKEN_FIELDS:
                profile.pop(name, None)
        out["profileData"] = profile
    return out


def user_json(
    user: User, *, idp_tokens: bool = False, projection: Projection | None = None
) -> dict[str, Any]:
    """The user as Auth0 sends it; `projection` applies `fields`/`include_fields`."""
    out: dict[str, Any] = {"user_id": user.user_id}
    if user.email is not None:
        out["email"] = user.email
        out["email_verified"] = user.email_verified
    for name in _STRINGS:
        value = getattr(user, name)
        if value is not None:
            out[name] = value
    if user.phone_number is not None:
        out["phone_verified"] = user.phone_verified
    out["created_at"] = iso(user.created_at)
    out["updated_at"] = iso(user.updated_at)
    out["identities"] = [identity_json(i, idp_tokens=idp_tokens) for i in user.identities]
    if user.app_metadata:
        out["app_metadata"] = user.app_metadata
    if user.user_metadata:
        out["user_metadata"] = user.user_metadata
    for name in _NAMES:
        value = getattr(user, name)
        if value is not None:
            out[name] = value
    if user.last_ip is not None:
        out["last_ip"] = user.last_ip
    if user.last_login is not None:
        out["last_login"] = iso(user.last_login)
    if user.last_password_reset is not None:
        out["last_password_reset"] = iso(user.last_password_reset)
    if user.logins_count:
        out["logins_count"] = user.logins_count
    if user.blocked:  # §9.1: absent when not blocked
        out["blocked"] = True
    return projection.apply(out) if projection else out


def users_json(
    users: Iterable[User], *, idp_tokens: bool = False, projection: Projection | None = None
) -> list[dict[str, Any]]:
    return [user_json(u, idp_tokens=idp_tokens, projection=projection) for u in users]
