"""Safe self-service profile: who may write which `user_metadata`, and how much (issue 6).

    ProfilePolicy.from_config(block, clients=…)  tenant `settings.self_service` + client overrides
    policy.policy_for_client(client_id)          the client's override, else the tenant's policy
    policy.current_user_tokens_enabled(client_id)   the switch the scope computation reads
    merge_metadata(current, patch)               §9.5: shallow merge, null deletes, {} clears
    check_metadata_write(policy, current, patch, actor=…) -> MetadataChange: the one check

With no policy configured only Auth0's own limits apply: key names without "." or "$" (§9.1),
the signup limits (§7.2) and Auth0's practical 16 KiB user_metadata size.
"""

from __future__ import annotations

import json
import math
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from keystead.errors import BadRequest, ConfigError, Forbidden

Actor = Literal["user", "admin", "signup"]
ACTORS: Final = ("user", "admin", "signup")

DEFAULT_MAX_BYTES: Final = 16_384  # Auth0's stated practical limit for user_metadata
MAX_MAX_BYTES: Final = 16 * 1024 * 1024  # Auth0's hard limit for user_metadata
# Auth0 documents no depth limit; 100 keeps recursive JSON walkers (serialisers, the schema
# validator) far below Python's recursion limit.
DEFAULT_MAX_DEPTH: Final = 100
SIGNUP_MAX_PROPERTIES: Final = 10  # contract §7.2
SIGNUP_MAX_NAME: Final = 100
SIGNUP_MAX_VALUE: Final = 500
MAX_LISTED_PROBLEMS: Final = 50  # keeps a hostile body from producing a megabyte of message
DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"

_BLOCK_KEYS: Final = frozenset({"current_user_tokens", "user_metadata", "audit_values"})
_METADATA_KEYS: Final = frozenset({"schema", "writable", "max_bytes", "max_depth"})


@dataclass(frozen=True)
class ProfilePolicy:
    """Guard rails for `user_metadata` writes; the defaults are Auth0's behaviour."""

    schema: Mapping[str, Any] | None = None  # JSON Schema (Draft 2020-12) for the merged document
    self_writable_keys: frozenset[str] | None = None  # top-level keys users may write; None: all
    max_bytes: int = DEFAULT_MAX_BYTES  # compact UTF-8 JSON of the whole merged document
    max_depth: int = DEFAULT_MAX_DEPTH  # nesting levels; {"a": 1} is 1, {"a": {"b": 1}} is 2
    audit_values: bool = False  # audit records carry old/new values, not only sizes
    current_user_tokens: bool = True  # False: no Management API tokens for signed-in users
    clients: Mapping[str, ProfilePolicy] = field(default_factory=dict)  # resolved overrides
    validator: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= DEFAULT_MAX_DEPTH or not 1 <= self.max_bytes <= MAX_MAX_BYTES:
            raise ConfigError(f"max_depth or max_bytes out of range: {self!r}")
        # Compiled once per policy; policies live as long as the tenant configuration.
        if self.schema is not None:
            object.__setattr__(self, "validator", _compile(self.schema, "schema"))

    @classmethod
    def from_config(
        cls,
        block: Mapping[str, Any] | None,
        *,
        clients: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> ProfilePolicy:
        """Parse `settings.self_service` and each client's `self_service` (keyed by client_id).

        A client block overrides only the keys it names; the rest is inherited from the tenant.
        """
        tenant = _parse_block(block, "settings.self_service", cls())
        overrides = {
            client_id: _parse_block(sub, f"clients.{client_id}.self_service", tenant)
            for client_id, sub in (clients or {}).items()
            if sub is not None
        }
        return replace(tenant, clients=overrides)

    @classmethod
    def from_tenant(cls, tenant: Mapping[str, Any]) -> ProfilePolicy:
        """Read the policy from a whole tenant file (`settings:` and the `clients:` list)."""
        settings = tenant.get("settings") or {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"settings must be a mapping, got {_kind(settings)}")
        clients: dict[str, Mapping[str, Any] | None] = {}
        for i, client in enumerate(tenant.get("clients") or ()):
            if isinstance(client, Mapping) and client.get("self_service") is not None:
                client_id = client.get("client_id")
                if not isinstance(client_id, str) or not client_id:
                    raise ConfigError(f"clients[{i}].self_service needs the client's client_id")
                clients[client_id] = client["self_service"]
        return cls.from_config(settings.get("self_service"), clients=clients)

    def policy_for_client(self, client_id: str | None) -> ProfilePolicy:
        """The policy for writes made through `client_id` (the token's `azp`/`client_id`)."""
        return self if client_id is None else self.clients.get(client_id, self)

    def current_user_tokens_enabled(self, client_id: str | None) -> bool:
        return self.policy_for_client(client_id).current_user_tokens

    def allows_user_write(self, key: str) -> bool:
        return self.self_writable_keys is None or key in self.self_writable_keys


@dataclass(frozen=True)
class KeyChange:
    """One top-level key that an accepted write added, replaced or removed."""

    key: str
    old_bytes: int | None  # None: the key was absent
    new_bytes: int | None  # None: the key is removed
    old: Any = field(default=None, repr=False)  # values only when the policy audits them
    new: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class MetadataChange:
    """An accepted write: the document to store, and what to audit."""

    actor: Actor
    result: dict[str, Any]
    changes: tuple[KeyChange, ...]
    old_bytes: int
    new_bytes: int
    audit_values: bool = False

    @property
    def changed_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.changes)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def audit_details(self) -> dict[str, Any]:
        """JSON-ready audit body; the caller adds who (sub, client_id, user_id) and when."""
        keys: dict[str, Any] = {}
        for c in self.changes:
            entry: dict[str, Any] = {"old_bytes": c.old_bytes, "new_bytes": c.new_bytes}
            if self.audit_values:
                if c.old_bytes is not None:
                    entry["old"] = c.old
                if c.new_bytes is not None:
                    entry["new"] = c.new
            keys[c.key] = entry
        return {
            "field": "user_metadata",
            "actor": self.actor,
            "changed_keys": list(self.changed_keys),
            "old_bytes": self.old_bytes,
            "new_bytes": self.new_bytes,
            "keys": keys,
        }


class MetadataRejected(BadRequest):
    """400 `invalid_body` naming every offending key: `user_metadata.<key>: <why>`."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(dict.fromkeys(problems))  # de-duplicated, order kept
        shown = list(self.problems[:MAX_LISTED_PROBLEMS])
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            shown.append(f"and {len(self.problems) - MAX_LISTED_PROBLEMS} more problems")
        super().__init__("; ".join(shown), error_code="invalid_body")


def merge_metadata(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Contract §9.5: top-level keys replace (nested objects wholesale), null deletes, {} clears.

    Neither argument is modified.
    """
    if not patch:
        return {}
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def check_metadata_write(
    policy: ProfilePolicy,
    current: Mapping[str, Any],
    patch: object,
    *,
    actor: Actor,
) -> MetadataChange:
    """The one check for every `user_metadata` write; raises MetadataRejected, changes nothing.

    `policy` is already the client's (`policy_for_client`). Writability is judged on the
    patch's keys; names, depth, size and the schema on the merged result.
    """
    if actor not in ACTORS:
        raise ValueError(f"unknown actor {actor!r}")
    if actor == "user" and not policy.current_user_tokens:
        # Tokens issued before the switch was turned off must stop working too.
        raise Forbidden("Current-user tokens are disabled for this application.")
    if not isinstance(patch, Mapping):
        raise MetadataRejected([f"user_metadata: must be an object, not {_kind(patch)}"])

    result = merge_metadata(current, patch)
    names, values, too_deep = _walk(result, policy.max_depth)
    comparable = not (values or too_deep)  # only then is it safe to compare and serialise
    problems: list[str] = []
    if actor != "admin" and policy.self_writable_keys is not None:
        problems += _unwritable(policy, current, patch, comparable)
    if actor == "signup":
        problems += _signup_problems(patch)
    problems += names + values + too_deep
    new_bytes = _size(result) if comparable else 0
    if comparable and new_bytes > policy.max_bytes:
        problems.append(f"user_metadata: {new_bytes} bytes, the limit is {policy.max_bytes}")
    elif comparable and policy.validator is not None:
        problems += _schema_problems(policy.validator, result)
    if problems:
        raise MetadataRejected(problems)
    return MetadataChange(
        actor=actor,
        result=result,
        changes=_changes(current, result, audit_values=policy.audit_values),
        old_bytes=_size(current),
        new_bytes=new_bytes,
        audit_values=policy.audit_values,
    )


# --- the checks ------------------------------------------------------------------------------


def _unwritable(
    policy: ProfilePolicy, current: Mapping[str, Any], patch: Mapping[str, Any], comparable: bool
) -> list[str]:
    # `{}` removes every stored key. A read-only key sent back unchanged is not a write, so
    # apps may round-trip the whole object they read.
    keys = patch.keys() if patch else current.keys()
    return [
        f"{_path((key,))}: not writable by the user"
        for key in keys
        if not policy.allows_user_write(key)
        and (not patch or not comparable or _is_change(current, key, patch[key]))
    ]


def _is_change(current: Mapping[str, Any], key: str, value: Any) -> bool:
    if value is None:
        return key in current
    return key not in current or not _same(current[key], value)


def _signup_problems(patch: Mapping[str, Any]) -> list[str]:
    """Contract §7.2: at most 10 properties, names ≤ 100 chars, string values ≤ 500 chars."""
    problems = []
    if len(patch) > SIGNUP_MAX_PROPERTIES:
        problems.append(
            f"user_metadata: {len(patch)} properties, at most {SIGNUP_MAX_PROPERTIES} at signup"
        )
    for key, value in patch.items():
        where = _path((key,))
        if isinstance(key, str) and len(key) > SIGNUP_MAX_NAME:
            problems.append(f"{where}: names must be at most {SIGNUP_MAX_NAME} characters")
        if not isinstance(value, str):
            problems.append(f"{where}: must be a string at signup")
        elif len(value) > SIGNUP_MAX_VALUE:
            problems.append(f"{where}: must be at most {SIGNUP_MAX_VALUE} characters at signup")
    return problems


def _walk(doc: Mapping[str, Any], max_depth: int) -> tuple[list[str], list[str], list[str]]:
    """Problems with key names, with values JSON cannot hold, and with nesting depth.

    Iterative and never deeper than `max_depth`, so hostile nesting costs neither stack nor time.
    """
    names: list[str] = []
    values: list[str] = []
    too_deep: dict[str | int, None] = {}  # top-level keys, in order
    todo: deque[tuple[tuple[str | int, ...], Any, int]] = deque([((), doc, 0)])
    while todo:
        path, value, level = todo.popleft()  # level: containers around `value`
        if isinstance(value, Mapping | list) and level + 1 > max_depth:
            too_deep[path[0]] = None  # the root is level 1 and max_depth is at least 1
        elif isinstance(value, Mapping):
            for key, child in value.items():
                if not isinstance(key, str):
                    values.append(f"{_path(path)}: keys must be strings")
                    continue
                if "." in key or "$" in key:
                    names.append(f'{_path((*path, key))}: names must not contain "." or "$"')
                todo.append(((*path, key), child, level + 1))
        elif isinstance(value, list):
            todo.extend(((*path, i), child, level + 1) for i, child in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            values.append(f"{_path(path)}: must be a finite number")
        elif not isinstance(value, str | int | float | type(None)):
            values.append(f"{_path(path)}: is not a JSON value")
    deep = [f"{_path((key,))}: nested more than {max_depth} levels deep" for key in too_deep]
    return names, values, deep


def _changes(
    current: Mapping[str, Any], result: Mapping[str, Any], *, audit_values: bool
) -> tuple[KeyChange, ...]:
    changes = []
    for key in sorted(current.keys() | result.keys()):
        old, new = current.get(key), result.get(key)
        if key in current and key in result and _same(old, new):
            continue
        changes.append(
            KeyChange(
                key=key,
                old_bytes=_size(old) if key in current else None,
                new_bytes=_size(new) if key in result else None,
                old=deepcopy(old) if audit_values else None,
                new=deepcopy(new) if audit_values else None,
            )
        )
    return tuple(changes)


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _same(a: Any, b: Any) -> bool:
    # JSON equality: Python's == would call true and 1 the same value.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


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


# --- configuration ---------------------------------------------------------------------------


def _parse_block(block: object, where: str, base: ProfilePolicy) -> ProfilePolicy:
    """One `self_service` block over `base`: keys it names replace, the rest is inherited."""
    if block is None:
        return replace(base, clients={})
    _check_keys(block, where, _BLOCK_KEYS)
    assert isinstance(block, Mapping)
    changes: dict[str, Any] = {}
    for name in ("current_user_tokens", "audit_values"):
        if name in block:
            changes[name] = _bool(block[name], f"{where}.{name}")
    metadata = block.get("user_metadata")
    if metadata is not None:
        where = f"{where}.user_metadata"
        _check_keys(metadata, where, _METADATA_KEYS)
        assert isinstance(metadata, Mapping)
        if "schema" in metadata:
            schema = metadata["schema"]
            if schema is not None:
                _compile(schema, f"{where}.schema")
                schema = deepcopy(dict(schema))  # the caller's mapping may change later
            changes["schema"] = schema
        if "writable" in metadata:
            changes["self_writable_keys"] = _writable(metadata["writable"], f"{where}.writable")
        if "max_bytes" in metadata:
            changes["max_bytes"] = _int(metadata["max_bytes"], f"{where}.max_bytes", MAX_MAX_BYTES)
        if "max_depth" in metadata:
            changes["max_depth"] = _int(
                metadata["max_depth"], f"{where}.max_depth", DEFAULT_MAX_DEPTH
            )
    return replace(base, clients={}, **changes)


def _check_keys(block: object, where: str, allowed: frozenset[str]) -> None:
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {_kind(block)}")
    unknown = sorted(str(k) for k in block if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(allowed))})"
        )


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _int(value: object, where: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ConfigError(f"{where} must be a whole number from 1 to {most}, got {value!r}")
    return value


def _writable(value: object, where: str) -> frozenset[str] | None:
    if value is None:
        return None  # every key
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list of user_metadata keys, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str) or not key or "." in key or "$" in key:
            raise ConfigError(
                f'{where}: {key!r} is not a top-level key name (a non-empty string, no "." or "$")'
            )
    return frozenset(value)
