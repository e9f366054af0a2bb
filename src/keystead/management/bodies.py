"""Request bodies of the Management API (contract §0.2, §8.2): parse once, validate once.

JSON, or form-encoded (management/form_bodies.py); any other Content-Type is a 415.
Every failure is a 400 `invalid_body` in Auth0's words, e.g.
`Payload validation error: 'Additional properties not allowed: foo'.` The schemas are the
OpenAPI document's request schemas (tests compare them), with `additionalProperties: false`
where Auth0 refuses unknown keys in practice (§9.4, §9.5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from starlette.requests import Request

from keystead.errors import ApiError, BadRequest
from keystead.management.form_bodies import FormBody, coerce_form, parse_form

MALFORMED: Final = "Invalid request payload JSON format"
FORM: Final = "application/x-www-form-urlencoded"


def payload_error(why: str, where: str | None = None) -> BadRequest:
    suffix = f" on property {where}" if where else ""
    return BadRequest(f"Payload validation error: '{why}'{suffix}.", error_code="invalid_body")


class UnsupportedMediaType(ApiError):
    status = 415
    default_code = "unsupported_media_type"


async def read_json(request: Request) -> Any:
    """The parsed body; an empty body is `{}` (PATCH with nothing to change).

    JSON, or a form (§0.2) that validate() converts by the schema; no Content-Type means JSON.
    """
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    raw = await request.body()
    if media_type == FORM:
        return parse_form(raw)
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"Unsupported Media Type: send {media_type} bodies as application/json or {FORM}."
        )
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: hostile nesting, thousands deep
        raise BadRequest(MALFORMED, error_code="invalid_body") from None


# --- schemas ------------------------------------------------------------------------------------

_E164: Final = r"^\+[0-9]{1,15}$"


def _string(lo: int | None = None, hi: int | None = None, *, null: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": ["string", "null"] if null else "string"}
    if lo is not None:
        out["minLength"] = lo
    if hi is not None:
        out["maxLength"] = hi
    return out


_BOOL: Final = {"type": "boolean"}
_OBJECT: Final = {"type": "object"}

# POST /users: CreateUserRequestContent.
CREATE_USER: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["connection"],
    "properties": {
        "email": {**_string(), "format": "email"},
        "phone_number": {**_string(), "pattern": _E164},
        "user_metadata": _OBJECT,
        "blocked": _BOOL,
        "email_verified": _BOOL,
        "phone_verified": _BOOL,
        "app_metadata": _OBJECT,
        "given_name": _string(1, 150),
        "family_name": _string(1, 150),
        "name": _string(1, 300),
        "nickname": _string(1, 300),
        "picture": {**_string(), "format": "strict-uri"},
        "user_id": {**_string(0, 255), "pattern": r"^\S*$"},
        "connection": _string(1),
        "password": _string(1),
        "verify_email": _BOOL,
        "username": _string(1, 128),
    },
}

# PATCH /users/{id}: UpdateUserRequestContent. The OpenAPI leaves it open; §9.5 lists the
# updatable keys, and anything else is refused rather than silently dropped.
UPDATE_USER: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "blocked": _BOOL,
        "email_verified": _BOOL,
        "email": {**_string(null=True), "format": "email"},
        "phone_number": {**_string(null=True), "pattern": _E164},
        "phone_verified": _BOOL,
        "user_metadata": _OBJECT,
        "app_metadata": _OBJECT,
        "given_name": _string(1, 150, null=True),
        "family_name": _string(1, 150, null=True),
        "name": _string(1, 300, null=True),
        "nickname": _string(1, 300, null=True),
        "picture": {**_string(null=True), "format": "strict-uri"},
        "verify_email": _BOOL,
        "verify_phone_number": _BOOL,
        "password": _string(1, null=True),
        "connection": _string(1),
        "client_id": _string(1),
        "username": _string(1, 128, null=True),
    },
}

_FORMATS = FormatChecker(formats=("email",))


def _is_strict_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


_FORMATS.checks("strict-uri")(_is_strict_uri)


_VALIDATORS: dict[int, Draft202012Validator] = {}


def _validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    found = _VALIDATORS.get(id(schema))
    if found is None:
        found = _VALIDATORS[id(schema)] = Draft202012Validator(schema, format_checker=_FORMATS)
    return found


# --- messages -----------------------------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 64 else text[:64] + "…"


def _explain(error: ValidationError) -> BadRequest:
    where = ".".join(str(p) for p in error.absolute_path) or None
    keyword, expected, value = error.validator, error.validator_value, error.instance
    if keyword == "required":
        missing = [name for name in expected if name not in value]
        return payload_error(f"Missing required property: {missing[0]}", where)
    if keyword == "type":
        wanted = ",".join(expected) if isinstance(expected, list) else expected
        return payload_error(f"Expected type {wanted} but found type {_json_type(value)}", where)
    if keyword == "minLength":
        return payload_error(f"String is too short ({len(value)} chars), minimum {expected}", where)
    if keyword == "maxLength":
        return payload_error(f"String is too long ({len(value)} chars), maximum {expected}", where)
    if keyword == "pattern":
        return payload_error(f"String does not match pattern {expected}: {_short(value)}", where)
    if keyword == "format":
        why = f"Object didn't pass validation for format {expected}: {_short(value)}"
        return payload_error(why, where)
    return payload_error(error.message, where)


def validate(body: object, schema: Mapping[str, Any]) -> dict[str, Any]:
    """`body` checked against `schema` (an object schema), or the first problem as a 400."""
    if isinstance(body, FormBody):
        body = coerce_form(body, schema)
    if not isinstance(body, dict):
        raise payload_error(f"Expected type object but found type {_json_type(body)}")
    if schema.get("additionalProperties") is False:
        unknown = [key for key in body if key not in schema["properties"]]
        if unknown:
            raise payload_error("Additional properties not allowed: " + ",".join(unknown))
    errors = sorted(_validator(schema).iter_errors(body), key=_order)
    if errors:
        raise _explain(errors[0])
    return body


def _order(error: ValidationError) -> tuple[int, str]:
    # Missing properties first, then by property name, so the answer does not vary.
    return (0 if error.validator == "required" else 1, ".".join(map(str, error.absolute_path)))


async def read_body(request: Request, schema: Mapping[str, Any]) -> dict[str, Any]:
    return validate(await read_json(request), schema)


# --- rules across fields (§9.1, §9.5) -----------------------------------------------------------

# §9.5: pairs one PATCH may not carry together.
EXCLUSIVE_UPDATES: Final = (
    ("password", "email"),
    ("password", "email_verified"),
    ("username", "email"),
    ("username", "email_verified"),
    ("username", "password"),
)
# §9.1: app_metadata may not use these keys.
RESERVED_APP_METADATA: Final = frozenset(
    {
        "__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email",
        "globalClientID", "global_client_id", "identities", "lastIP", "lastLogin", "loginsCount",
        "metadata", "multifactor_last_modified", "multifactor", "updated_at", "user_id",
    }
)  # fmt: skip
MAX_METADATA_DEPTH: Final = 100  # as core/profile: far below the JSON encoder's recursion limit
MAX_APP_METADATA_BYTES: Final = 16_384


def check_update_combinations(body: Mapping[str, Any]) -> None:
    for first, second in EXCLUSIVE_UPDATES:
        if first in body and second in body:
            raise BadRequest(f"Cannot update {first} and {second} simultaneously.")


def check_app_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    """Reserved root keys, key names, depth and size of a merged app_metadata; returns it."""
    reserved = sorted(RESERVED_APP_METADATA & doc.keys())
    if reserved:
        raise BadRequest(f"app_metadata.{reserved[0]} is a reserved key.")
    todo: list[tuple[str, Any, int]] = [("app_metadata", doc, 1)]
    while todo:  # iterative: hostile nesting costs no stack
        where, value, depth = todo.pop()
        if isinstance(value, dict | list) and depth > MAX_METADATA_DEPTH:
            raise BadRequest(f"{where}: nested more than {MAX_METADATA_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, child in value.items():
                if "." in key or "$" in key:
                    raise BadRequest(f'{where}.{_short(key)}: names must not contain "." or "$"')
                todo.append((f"{where}.{_short(key)}", child, depth + 1))
        elif isinstance(value, list):
            todo.extend((f"{where}[{i}]", child, depth + 1) for i, child in enumerate(value))
    size = len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_APP_METADATA_BYTES:
        raise BadRequest(f"app_metadata: {size} bytes, the limit is {MAX_APP_METADATA_BYTES}")
    return doc
