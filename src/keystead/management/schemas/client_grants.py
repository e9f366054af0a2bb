"""Bodies of POST /client-grants and PATCH /client-grants/{id} (CreateClientGrantRequestContent,
UpdateClientGrantRequestContent; contract §10.4)."""

from __future__ import annotations

from typing import Any, Final

from keystead.management.schemas import ANY, boolean, choice, string

_SCOPE: Final = {"type": "array", "items": string(1, 280)}

# Keystead has no organizations: `organization_usage` may only be "deny" (or null), and
# `allow_any_organization` only false; management/client_grants.py checks both.
UNSUPPORTED: Final = frozenset({"authorization_details_types", "default_for"})

CREATE_CLIENT_GRANT: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    # The OpenAPI also allows `default_for` instead of client_id; Keystead has no such grants.
    "required": ["client_id", "audience"],
    "properties": {
        "client_id": string(1, 64),
        "audience": string(1, 600),
        "scope": _SCOPE,
        "subject_type": choice("client", "user"),
        "allow_all_scopes": boolean(),
        "organization_usage": choice("deny", "allow", "require"),
        "allow_any_organization": boolean(),
        **dict.fromkeys(sorted(UNSUPPORTED), ANY),
    },
}

UPDATE_CLIENT_GRANT: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "scope": {**_SCOPE, "type": ["array", "null"]},
        "allow_all_scopes": boolean(null=True),
        "organization_usage": choice("deny", "allow", "require", null=True),
        "allow_any_organization": boolean(null=True),
        "authorization_details_types": ANY,
    },
}
