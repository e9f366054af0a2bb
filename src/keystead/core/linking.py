"""Account linking (contract §9.6): the `link_with` proof and the merge rules, on core Users.

    link      the secondary's primary identity, with its profile as `profileData` and its
              password hash (hidden), is appended to the primary's identities; the secondary
              stops being a user (storage deletes it); metadata is not merged. Its email and
              password still log in, as the primary (core/login_success.py)
    unlink    the identity leaves the primary and becomes a standalone user again, its profile
              rebuilt from `profileData`, its password kept (its metadata was never kept)

`link_with` is a JWT of the secondary account (normally its ID token) that proves the caller
controls it; every failure has its own Auth0 message, checked in the order Auth0 documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

import jwt

from keystead.core.users import Identity, User
from keystead.errors import BadRequest, Conflict, NotFound

# §9.6, each a 400 unless said otherwise.
INVALID_TOKEN: Final = "Invalid token (link_with)."
INVALID_AUD: Final = "JWT (link_with) contains an invalid aud claim."
NO_SUB: Final = "JWT (link_with) must contains sub claim."
INVALID_SUB: Final = "JWT (link_with) contains an invalid sub claim."
NOT_RS256: Final = "JWT (link_with) must have an alg of RS256."
OTHER_ISSUER: Final = "JWT (link_with) must have the same issuer as the calling user."
AUD_NOT_AZP: Final = (
    "JWT (link_with) must have an aud claim that matches that of the calling token's azp."
)
NOT_FOUND: Final = "Provided secondary account not found."
SAME: Final = "Main identity and the new one are the same."
ALREADY_LINKED: Final = "Specified identity already exists."  # 409
UNABLE: Final = "Unable to link with the secondary account."
NOT_CONFIGURED: Final = "The provider/connection is not configured."
MAIN_IDENTITY: Final = "Main identity cannot be removed."
NO_IDENTITY: Final = "The identity does not exist."  # Auth0's text is unknown; 404 like others

# Profile fields kept in a linked identity's profileData, and restored from it on unlink.
PROFILE_TEXT: Final = (
    "email", "name", "nickname", "given_name", "family_name", "username", "phone_number", "picture"
)  # fmt: skip
PROFILE_FLAGS: Final = ("email_verified", "phone_verified")
_MAX_USER_ID: Final = 300  # the users.user_id column


# --- the link_with proof ------------------------------------------------------------------------


def check_link_with_header(token: str) -> None:
    """Before any key work: a token we cannot parse, or one not signed with RS256."""
    try:
        header = jwt.get_unverified_header(token)
    except (jwt.PyJWTError, RecursionError):  # RecursionError: a "[[[[…" header
        raise BadRequest(INVALID_TOKEN) from None
    if header.get("alg") != "RS256":
        raise BadRequest(NOT_RS256)


def verification_error(description: str, token: str) -> BadRequest:
    """The §9.6 error for a failed signature/issuer/time check (core/keys' descriptions)."""
    if description == "invalid issuer" or description == 'token has no "iss" claim':
        return BadRequest(OTHER_ISSUER)
    if description.startswith("token must be signed with"):
        return BadRequest(NOT_RS256)
    if description == "malformed token" and _has_odd_sub(token):
        # PyJWT refuses a non-string sub as malformed; Auth0 names the claim. Still a 400.
        return BadRequest(INVALID_SUB)
    return BadRequest(INVALID_TOKEN, detail=description)


def _has_odd_sub(token: str) -> bool:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return "sub" in claims and not isinstance(claims["sub"], str)


def is_user_id(value: object) -> bool:
    """`{provider}|{id}`, both parts present, short enough to be stored, printable."""
    if not isinstance(value, str) or len(value) > _MAX_USER_ID:
        return False
    provider, sep, local = value.partition("|")
    return bool(sep and provider and local) and value.isprintable() and " " not in provider


def linked_subject(claims: Mapping[str, Any], *, azp: str | None) -> str:
    """The secondary user id a verified `link_with` names, if it was issued to the caller's app."""
    aud = claims.get("aud")
    if isinstance(aud, str) and aud:
        audiences = [aud]
    elif isinstance(aud, list) and aud and all(isinstance(a, str) and a for a in aud):
        audiences = aud
    else:
        raise BadRequest(INVALID_AUD)
    if azp is None or azp not in audiences:
        raise BadRequest(AUD_NOT_AZP)
    if "sub" not in claims:
        raise BadRequest(NO_SUB)
    sub = claims["sub"]
    if not is_user_id(sub):
        raise BadRequest(INVALID_SUB)
    return str(sub)


# --- merging ------------------------------------------------------------------------------------


def secondary_user_id(provider: str, user_id: str | int) -> str:
    """`user_id` of the provider form, with or without its `{provider}|` prefix."""
    text = str(user_id)
    return text if text.startswith(provider + "|") else f"{provider}|{text}"


def profile_data(user: User) -> dict[str, Any]:
    """The profile a linked identity keeps: what was set, nothing secret."""
    out: dict[str, Any] = {}
    for name in PROFILE_TEXT:
        value = getattr(user, name)
        if value is not None:
            out[name] = value
    for name in PROFILE_FLAGS:
        if name == "email_verified" and user.email is None:
            continue
        if name == "phone_verified" and user.phone_number is None:
            continue
        out[name] = getattr(user, name)
    return out


def identity_index(user: User, provider: str, user_id: str) -> int | None:
    """Where (provider, id without prefix) sits in `user.identities`, if anywhere."""
    for index, identity in enumerate(user.identities):
        if identity.provider == provider and identity.user_id == user_id:
            return index
    return None


def link(primary: User, secondary: User) -> User:
    """The primary with the secondary's primary identity appended (§9.6)."""
    if primary.user_id == secondary.user_id:
        raise BadRequest(SAME)
    if not secondary.identities:
        raise BadRequest(UNABLE, detail="secondary user has no identity")
    if len(secondary.identities) > 1:
        # Linking is one level deep: a primary cannot become someone's secondary and take its
        # own linked identities along. Unlink them first.
        raise BadRequest(UNABLE, detail="secondary user has linked identities")
    own = secondary.identities[0]
    if identity_index(primary, own.provider, own.user_id) is not None:
        raise Conflict(ALREADY_LINKED, error_code="already_exists")
    linked = replace(
        own, profile_data=profile_data(secondary), password_hash=secondary.password_hash
    )
    return replace(primary, identities=(*primary.identities, linked))


def unlink(primary: User, provider: str, user_id: str) -> tuple[User, Identity]:
    """The primary without the identity, and the identity that left it."""
    index = identity_index(primary, provider, user_id)
    if index == 0:
        raise BadRequest(MAIN_IDENTITY)
    if index is None:
        raise NotFound(NO_IDENTITY, error_code="inexistent_identity")
    kept = primary.identities[:index] + primary.identities[index + 1 :]
    return replace(primary, identities=kept), primary.identities[index]


def standalone_user(identity: Identity) -> User:
    """A user again, for an unlinked identity: profile from profileData, no metadata (§9.6)."""
    data = identity.profile_data or {}
    text = {n: data[n] for n in PROFILE_TEXT if isinstance(data.get(n), str) and data[n]}
    flags = {n: data[n] for n in PROFILE_FLAGS if isinstance(data.get(n), bool)}
    return User(
        user_id=f"{identity.provider}|{identity.user_id}",
        identities=(replace(identity, profile_data=None, password_hash=None),),
        password_hash=identity.password_hash,
        **text,
        **flags,
    )
