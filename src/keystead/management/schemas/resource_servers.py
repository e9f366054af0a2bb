"""Bodies of POST /resource-servers and PATCH /resource-servers/{id}
(CreateResourceServerRequestContent, UpdateResourceServerRequestContent; contract §10.3)."""

from __future__ import annotations

from typing import Any, Final

from keystead.management.schemas import ANY, boolean, choice, string

SCOPES: Final[dict[str, Any]] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["value"],
        "properties": {"value": string(1, 280), "description": string(None, 500)},
    },
}


def _typed() -> dict[str, Any]:
    return {
        "name": {"type": "string", "maxLength": 200, "pattern": "^[^<>]+$"},
        "scopes": SCOPES,
        "signing_alg": choice("HS256", "RS256", "RS512", "PS256"),
        "signing_secret": string(16, 1024),
        "allow_offline_access": boolean(),
        "skip_consent_for_verifiable_first_party_clients": boolean(),
        # The OpenAPI allows 0; a token that is born expired helps nobody.
        "token_lifetime": {"type": "integer", "minimum": 1, "maximum": 2_592_000},
        "token_dialect": choice(
            "access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz"
        ),
        "enforce_policies": boolean(),
    }


# In the OpenAPI document, not in Keystead: allowed only when they ask for nothing.
UNSUPPORTED: Final = frozenset(
    {
        "allow_online_access", "allow_online_access_with_ephemeral_sessions",
        "authorization_details", "authorization_policy", "consent_policy", "proof_of_possession",
        "subject_type_authorization", "token_encryption",
    }
)  # fmt: skip

CREATE_RESOURCE_SERVER: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["identifier"],
    "properties": {
        "identifier": string(1, 600),
        **_typed(),
        **dict.fromkeys(sorted(UNSUPPORTED), ANY),
    },
}

UPDATE_RESOURCE_SERVER: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {**_typed(), **dict.fromkeys(sorted(UNSUPPORTED), ANY)},
}
