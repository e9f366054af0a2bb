"""Form-encoded Management API bodies (contract §0.2): `application/x-www-form-urlencoded`.

Auth0's OpenAPI document lists form encoding beside JSON for every Management POST/PATCH body,
and Auth0 converts form strings by the field's schema. So does Keystead, before the same schema
validation a JSON body gets:

    boolean         "true" / "false"
    integer/number  a decimal number
    object          a JSON object ('{…}'), e.g. user_metadata={"theme":"dark"}
    array           a repeated key (callbacks=a&callbacks=b), a JSON array ('[…]'), or one value
    string          as sent

A value that fits none of its field's types stays a string, and validation names the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from keystead.errors import BadRequest

MAX_FIELDS: Final = 1000
_NUMBER: Final = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?", re.ASCII)


class FormBody(dict[str, Any]):
    """A form body before coercion: values are strings, or lists of strings for repeated keys."""


def parse_form(raw: bytes) -> FormBody:
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):  # ValueError: more than MAX_FIELDS fields
        raise BadRequest(
            "Invalid request payload: form body is not UTF-8 or has too many fields",
            error_code="invalid_body",
        ) from None
    body = FormBody()
    for key, value in pairs:
        if key in body:
            previous = body[key]
            body[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            body[key] = value
    return body


def coerce_form(body: FormBody, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The body with each value converted to a type its property's schema allows."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    return {key: _coerce(value, properties.get(key) or {}) for key, value in body.items()}


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    return [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


def _coerce(value: str | list[str], schema: Mapping[str, Any]) -> Any:
    types = _types(schema)
    items: Mapping[str, Any] = schema.get("items") or {}
    if isinstance(value, list):
        return [_scalar(v, _types(items)) for v in value] if "array" in types else value
    if "string" in types or not types:
        return value
    if "array" in types:
        parsed = _json(value, "[", list)
        return parsed if parsed is not None else [_scalar(value, _types(items))]
    return _scalar(value, types)


def _scalar(value: str, types: list[str]) -> Any:
    if "string" in types or not types:
        return value
    if "boolean" in types and value in ("true", "false"):
        return value == "true"
    if ("integer" in types or "number" in types) and _NUMBER.fullmatch(value):
        return float(value) if "." in value else int(value)
    if "object" in types:
        parsed = _json(value, "{", dict)
        if parsed is not None:
            return parsed
    return value


def _json(value: str, opening: str, kind: type) -> Any:
    if not value.lstrip().startswith(opening):
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, kind) else None
