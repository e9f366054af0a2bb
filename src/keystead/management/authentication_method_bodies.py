"""Bodies of /users/{id}/authentication-methods (contract §9.2), and what each method type takes.

    POST   /users/{id}/authentication-methods     CREATE, then add_method
    PUT    /users/{id}/authentication-methods     REPLACE_ITEM for each item, then add_method
    PATCH  …/authentication-methods/{authentication_method_id}    UPDATE

add_method refuses fields the type does not take, duplicates and more than MAX_PER_TYPE of a
type, then stores the method; the SECRETS go to the repository sealed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Final

from keystead.errors import BadRequest, Conflict, Forbidden
from keystead.management.bodies import payload_error
from keystead.storage.repositories.authentication_methods import (
    AuthenticationMethod,
    SqlAuthenticationMethods,
)

EXISTS: Final = "Authentication method already exists."
LIMIT: Final = "You reached the limit of entities of this type for this user."
MAX_PER_TYPE: Final = 20

_NAME: Final = {"type": "string", "minLength": 1, "maxLength": 20}  # GET answers ≤ 20 chars
_PREFERRED: Final = {"type": "string", "enum": ["voice", "sms"]}
_PHONE: Final = {"type": "string", "minLength": 2, "maxLength": 30}
_EMAIL: Final = {"type": "string", "minLength": 1, "maxLength": 320, "format": "email"}
_TEXT: Final = {"type": "string", "minLength": 1, "maxLength": 2048}
# Which body fields each type takes (the first ones required), public ones and secrets.
FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "phone": (("phone_number",), ("preferred_authentication_method",)),
    "email": (("email",), ()),
    "totp": (("totp_secret",), ()),
    "webauthn-roaming": (("key_id", "public_key"), ("relying_party_identifier",)),
    "passkey": (
        ("key_id", "public_key"),
        ("aaguid", "relying_party_identifier", "credential_device_type", "credential_backed_up",
         "identity_user_id", "user_agent", "user_handle", "transports"),
    ),
}  # fmt: skip
SECRETS: Final = frozenset({"totp_secret"})

CREATE: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": sorted(FIELDS)},
        "name": _NAME,
        "totp_secret": _TEXT,
        "phone_number": _PHONE,
        "email": _EMAIL,
        "preferred_authentication_method": _PREFERRED,
        "key_id": _TEXT,
        "public_key": {"type": "string", "minLength": 1, "maxLength": 8192},
        "aaguid": {"type": "string", "format": "uuid"},
        "relying_party_identifier": {"type": "string", "minLength": 1, "maxLength": 253},
        "credential_device_type": {"type": "string", "enum": ["single_device", "multi_device"]},
        "credential_backed_up": {"type": "boolean"},
        "identity_user_id": _TEXT,
        "user_agent": _TEXT,
        "user_handle": _TEXT,
        "transports": {
            "type": "array",
            "maxItems": 10,
            "items": {"type": "string", "maxLength": 32},
        },
    },
}
REPLACE_ITEM: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["phone", "email", "totp"]},
        "preferred_authentication_method": _PREFERRED,
        "name": _NAME,
        "phone_number": _PHONE,
        "email": _EMAIL,
        "totp_secret": _TEXT,
    },
}
UPDATE: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": _NAME, "preferred_authentication_method": _PREFERRED},
}


async def add_method(
    methods: SqlAuthenticationMethods,
    user_id: str,
    body: dict[str, Any],
    existing: Sequence[AuthenticationMethod],
) -> AuthenticationMethod:
    kind = body["type"]
    required, optional = FIELDS[kind]
    for name in required:
        if name not in body:
            raise payload_error(f"Missing required property: {name}")
    allowed = {"type", "name", *required, *optional}
    extra = sorted(set(body) - allowed)
    if extra:
        raise BadRequest(f"{extra[0]} does not apply to {kind} authentication methods.")
    if "totp_secret" in body:
        _check_base32(body["totp_secret"])
    same_type = [m for m in existing if m.type == kind]
    if kind == "totp" and same_type:
        raise Conflict(EXISTS)
    identifying = required[0]
    if any(m.properties.get(identifying) == body.get(identifying) for m in same_type):
        raise Conflict(EXISTS)
    if len(same_type) >= MAX_PER_TYPE:
        raise Forbidden(LIMIT, error_code="too_many_entities")
    props = {k: v for k, v in body.items() if k not in SECRETS and k not in ("type", "name")}
    if kind == "phone":
        props.setdefault("preferred_authentication_method", "sms")
    secrets = {k: body[k] for k in SECRETS if k in body}
    return await methods.create(
        user_id, kind, name=body.get("name"), properties=props, secrets=secrets
    )


def _check_base32(secret: str) -> None:
    text = secret.strip().replace(" ", "").upper()
    try:
        decoded = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) < 10 or len(text) > 128:  # RFC 4226 §4: at least 128 bits, 160 advised
        raise payload_error("totp_secret must be a base32 encoded secret of 16 to 128 characters")
