"""Request schemas of the tenant-resource endpoints (clients, resource servers, client grants,
roles), written from Auth0's OpenAPI request schemas; tests/http/test_management_clients.py
compares them property by property. Also what those endpoints share: checkpoint paging
(query.py), `sapi` events (audit.py), and the rules a client body must meet (client_body.py).

Each schema lists every property the OpenAPI document allows, in three kinds:
  typed        Keystead uses or stores the value: the OpenAPI type, sometimes narrower
  UNSUPPORTED  features Keystead does not have: accepted only when they ask for nothing
               (null, false, "", {} or []), so exported configurations still load, and refused
               otherwise rather than silently ignored
  anything else is refused by `additionalProperties: false`
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from starlette.requests import Request

from keystead.errors import BadRequest
from keystead.management.bodies import payload_error, read_json, validate

ANY: Final[
    dict[str, Any]
] = {}  # the schema of an UNSUPPORTED property: checked by refuse_unsupported


def string(lo: int | None = None, hi: int | None = None, *, null: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ["string", "null"] if null else "string"}
    if lo is not None:
        out["minLength"] = lo
    if hi is not None:
        out["maxLength"] = hi
    return out


def boolean(*, null: bool = False) -> dict[str, Any]:
    return {"type": ["boolean", "null"] if null else "boolean"}


def strings(lo: int | None = None, hi: int | None = None) -> dict[str, Any]:
    return {"type": "array", "items": string(lo, hi)}


def choice(*values: str, null: bool = False) -> dict[str, Any]:
    if null:
        return {"type": ["string", "null"], "enum": [*values, None]}
    return {"type": "string", "enum": list(values)}


def asks_nothing(value: Any) -> bool:
    return value is None or value is False or value in ("", {}, [])


def refuse_unsupported(body: Mapping[str, Any], names: Iterable[str]) -> None:
    """400 for the first UNSUPPORTED property that asks for something."""
    for name in sorted(set(names) & body.keys()):
        if not asks_nothing(body[name]):
            raise BadRequest(
                f"Keystead does not support {name}; leave it out or send null.",
                error_code="operation_not_supported",
            )


async def read_patch(request: Request, schema: Mapping[str, Any]) -> dict[str, Any]:
    """A PATCH body; an empty one names Auth0's minProperties rule rather than jsonschema's."""
    body = await read_json(request)
    if body == {} and schema.get("minProperties"):
        raise payload_error("Too few properties defined (0), minimum 1")
    return validate(body, schema)
