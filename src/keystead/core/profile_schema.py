"""`user_metadata` JSON Schema (Draft 2020-12): compiled once, failures in plain words (issue 6).

Also how every profile problem names its place: `user_metadata.prefs.tags[2]: <why>`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from keystead.errors import ConfigError

DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"


# --- messages --------------------------------------------------------------------------------

_PLAIN_NAME = re.compile(r"[\w-]+")
_MAX_SHOWN_NAME = 64


def _path(segments: Iterable[str | int]) -> str:
    """`user_metadata.prefs.tags[2]`; names that need it quoted: `user_metadata["a.b"]`."""
    out = "user_metadata"
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
            continue
        shown = seg if len(seg) <= _MAX_SHOWN_NAME else seg[:_MAX_SHOWN_NAME] + "…"
        if _PLAIN_NAME.fullmatch(seg):
            out += "." + shown
        else:
            out += "[" + json.dumps(shown, ensure_ascii=False) + "]"
    return out


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    return "a mapping" if isinstance(value, Mapping) else type(value).__name__


# --- JSON Schema -----------------------------------------------------------------------------

# A fixed set, so behaviour does not change with whichever optional packages are installed.
_FORMATS = FormatChecker(formats=("date", "email", "ipv4", "ipv6", "uuid"))
_FORMAT_NAMES: Final = {
    "date": "date (YYYY-MM-DD)",
    "date-time": "date and time (RFC 3339)",
    "email": "email address",
    "ipv4": "IPv4 address",
    "ipv6": "IPv6 address",
    "uri": "URI",
    "uuid": "UUID",
}
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.fullmatch(value):
        return False
    datetime.fromisoformat(value[:19])  # RFC 3339 §5.6; raises on 2025-02-30
    return True


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    scheme = urlsplit(value).scheme  # raises on a broken IPv6 host
    return bool(_SCHEME.fullmatch(scheme)) and not any(c.isspace() for c in value)


_FORMATS.checks("date-time", raises=ValueError)(_is_date_time)
_FORMATS.checks("uri", raises=ValueError)(_is_uri)


def _compile(schema: object, where: str) -> Any:
    """Check a tenant's schema once, at configuration time, and build its validator."""
    if not isinstance(schema, Mapping):
        raise ConfigError(f"{where} must be a mapping (a JSON Schema), got {_kind(schema)}")
    dialect = schema.get("$schema", DRAFT_2020_12)
    if not isinstance(dialect, str) or dialect.rstrip("#") != DRAFT_2020_12:
        raise ConfigError(f"{where}: only JSON Schema Draft 2020-12 is supported, got {dialect!r}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        at = "/".join(str(p) for p in e.absolute_path) or "the top"
        raise ConfigError(f"{where} is not a valid JSON Schema: {e.message} (at {at})") from None
    types = schema.get("type", "object")
    if "object" not in ([types] if isinstance(types, str) else types):
        raise ConfigError(f"{where} must describe an object: user_metadata always is one")
    _check_refs(schema, where)
    return Draft202012Validator(_false_as_not(schema), format_checker=_FORMATS)


_SUBSCHEMA: Final = frozenset(
    {"items", "additionalProperties", "contains", "propertyNames", "not", "if", "then", "else"}
)
_SUBSCHEMA_MAPS: Final = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
_SUBSCHEMA_LISTS: Final = frozenset({"prefixItems", "allOf", "anyOf", "oneOf"})


def _false_as_not(schema: Any) -> Any:
    """A copy with `false` subschemas as `{"not": {}}`: the same meaning, but jsonschema's
    errors for `false` lose the key they are about (`properties: {plan: false}`)."""
    if schema is False:
        return {"not": {}}
    if not isinstance(schema, Mapping):
        return schema
    out = dict(schema)
    for key, value in schema.items():
        if key in _SUBSCHEMA:
            out[key] = _false_as_not(value)
        elif key in _SUBSCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {k: _false_as_not(v) for k, v in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [_false_as_not(v) for v in value]
    return out


def _check_refs(schema: Mapping[str, Any], where: str) -> None:
    # Remote references would mean network fetches (or a 500) at request time.
    base = "urn:keystead:profile-schema"
    resolver = Registry().with_resource(base, DRAFT202012.create_resource(schema)).resolver(base)
    todo: list[Any] = [schema]
    while todo:
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
        if not isinstance(node, Mapping):
            continue
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                if not value.startswith("#"):
                    raise ConfigError(
                        f"{where}: {key} {value!r} must point inside the schema (#/…)"
                    )
                try:
                    resolver.lookup(value)
                except Unresolvable:
                    raise ConfigError(f"{where}: {key} {value!r} does not resolve") from None
            elif key not in ("enum", "const", "default", "examples"):  # data, not schemas
                todo.append(value)


def _schema_problems(validator: Any, doc: Mapping[str, Any]) -> list[str]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    try:
        for error in validator.iter_errors(doc):
            found += _explain(error)
    except (RecursionError, Unresolvable):
        return ["user_metadata: cannot be checked against the profile schema"]
    found.sort(key=lambda item: _path(item[0]))
    return [f"{_path(path)}: {why}" for path, why in found]


def _explain(error: ValidationError) -> list[tuple[tuple[str | int, ...], str]]:
    """One jsonschema error as (path, short reason) pairs; `required` names the missing key."""
    path = tuple(error.absolute_path)
    keyword, value, instance = error.validator, error.validator_value, error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "required":
        return [((*path, name), "is required") for name in value if name not in instance]
    if keyword == "dependentRequired":
        return [
            ((*path, name), f"is required when {key} is set")
            for key, needs in value.items()
            if key in instance
            for name in needs
            if name not in instance
        ]
    if _under_property_names(list(error.absolute_schema_path)):
        return [((*path, instance), "is not an allowed key name")]  # `instance` is the key
    return [(path, _why(keyword, value, schema))]


_NOUNS: Final = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}
_BOUNDS: Final = (
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
)
_WHY: Final[Mapping[str, Callable[[Any], str]]] = {
    "enum": lambda v: "must be one of: " + _show_list(v),
    "const": lambda v: "must be " + _show(v),
    "pattern": lambda v: f"must match the pattern {v}",
    "format": lambda v: "must be a valid " + _FORMAT_NAMES.get(v, v),
    "minLength": lambda v: f"must be at least {_count(v, 'character')} long",
    "maxLength": lambda v: f"must be at most {_count(v, 'character')} long",
    "minItems": lambda v: f"must have at least {_count(v, 'item')}",
    "maxItems": lambda v: f"must have at most {_count(v, 'item')}",
    "minProperties": lambda v: f"must have at least {_count(v, 'key')}",
    "maxProperties": lambda v: f"must have at most {_count(v, 'key')}",
    "uniqueItems": lambda v: "must not repeat items",
    "multipleOf": lambda v: f"must be a multiple of {_show(v)}",
    "anyOf": lambda v: "does not match any of the allowed forms",
    "oneOf": lambda v: "must match exactly one of the allowed forms",
    "contains": lambda v: "has no item of the required form",
    "unevaluatedProperties": lambda v: "has keys the schema does not allow",
    "unevaluatedItems": lambda v: "has more items than allowed",
    "not": lambda v: "is not allowed",
}


def _under_property_names(schema_path: list[str | int]) -> bool:
    # A `propertyNames` keyword, not a property that happens to be called that.
    return any(
        seg == "propertyNames" and (i == 0 or schema_path[i - 1] not in _SUBSCHEMA_MAPS)
        for i, seg in enumerate(schema_path)
    )


def _why(keyword: str | None, value: Any, schema: Mapping[str, Any]) -> str:
    if keyword is None:  # a `false` schema, e.g. `properties: {plan: false}`
        return "is not allowed"
    if keyword == "type" or keyword in dict(_BOUNDS):
        return "must be " + _expected(schema)
    explain = _WHY.get(keyword)
    return explain(value) if explain else f"does not satisfy the schema ({keyword})"


def _expected(schema: Mapping[str, Any]) -> str:
    """`an integer ≥ 0`, `a string or null`: the type and numeric bounds in one phrase."""
    bounds = " and ".join(f"{op} {_show(schema[k])}" for k, op in _BOUNDS if k in schema)
    types = schema.get("type", "number")
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(
        _NOUNS.get(t, t) + (f" {bounds}" if bounds and t in ("integer", "number") else "")
        for t in names
    )


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _show_list(values: list[Any]) -> str:
    shown = ", ".join(_show(v) for v in values[:10])
    return shown + (", …" if len(values) > 10 else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
