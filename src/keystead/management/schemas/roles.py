"""Bodies of the roles and permissions endpoints (contract §10.5, §9.2): CreateRoleRequestContent,
UpdateRoleRequestContent, Add/DeleteRolePermissionsRequestContent, AssignRoleUsersRequestContent,
Assign/DeleteUserRolesRequestContent, Create/DeleteUserPermissionsRequestContent."""

from __future__ import annotations

from typing import Any, Final

from keystead.management.schemas import string

# Names as long as the column; the OpenAPI sets no bounds.
CREATE_ROLE: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": string(1, 255), "description": string(None, 1000)},
}

UPDATE_ROLE: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": string(1, 255), "description": string(None, 1000)},
}

PERMISSIONS: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["permissions"],
    "properties": {
        "permissions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["resource_server_identifier", "permission_name"],
                "properties": {
                    "resource_server_identifier": string(1, 600),
                    "permission_name": string(1, 280),
                },
            },
        }
    },
}

ROLE_USERS: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["users"],
    "properties": {"users": {"type": "array", "items": string(1, 300)}},
}

USER_ROLES: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["roles"],
    "properties": {"roles": {"type": "array", "minItems": 1, "items": string(1, 64)}},
}
