"""User search AST: node types, the searchable-field table and typed values (contract §9.3)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final

MAX_METADATA_PATH: Final = 10  # segments after app_metadata./user_metadata.
DAY: Final = 86_400.0
# Metadata keys as path segments: letters, digits, `_` and `-` only, so that no quote, bracket
# or `$` ever reaches a JSON path the store builds (§9.1 already bans `.` and `$` in keys).
_SEGMENT = re.compile(r"[\w-]+")


class FieldType(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    INTEGER = "integer"
    DATE = "date"  # values are epoch seconds (float)
    METADATA = "metadata"  # untyped JSON; values stay strings, the store decides


# fmt: off
_STRING_FIELDS = ("user_id", "email", "email.domain", "phone_number", "name", "nickname",
                  "given_name", "family_name", "username", "picture", "last_ip", "organization_id",
                  "identities.provider", "identities.connection", "identities.user_id")
# fmt: on
FIELDS: Final[dict[str, FieldType]] = {
    **dict.fromkeys(_STRING_FIELDS, FieldType.STRING),
    **dict.fromkeys(
        ("email_verified", "phone_verified", "blocked", "identities.isSocial"), FieldType.BOOLEAN
    ),
    "logins_count": FieldType.INTEGER,
    **dict.fromkeys(("created_at", "updated_at", "last_login"), FieldType.DATE),
}
METADATA_ROOTS: Final = ("app_metadata", "user_metadata")
CASE_INSENSITIVE_FIELDS: Final = frozenset(
    {"email", "email.domain", "name", "given_name", "family_name", "nickname"}
)
# Contract §9.3: which root fields a bare term searches is a best guess; never user_metadata.
BARE_TERM_FIELDS: Final = ("email", "name", "given_name", "family_name", "nickname", "username",
                           "user_id")  # fmt: skip


# --- the AST ----------------------------------------------------------------------------------

Value = str | int | float | bool


class TermKind(StrEnum):
    EXACT = "exact"
    PREFIX = "prefix"  # name:j*
    SUFFIX = "suffix"  # name:*usa
    CONTAINS = "contains"  # name:*usa*


@dataclass(frozen=True)
class Term:
    field: str
    value: Value
    kind: TermKind = TermKind.EXACT


@dataclass(frozen=True)
class Range:
    field: str
    low: Value | None  # None: open (`*`)
    high: Value | None
    low_inclusive: bool = True
    high_inclusive: bool = True


@dataclass(frozen=True)
class Exists:
    field: str


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


Node = Term | Range | Exists | And | Or | Not


def field_type(field: str) -> FieldType:
    """The type of a searchable field; KeyError if it is not searchable."""
    if field in FIELDS:
        return FIELDS[field]
    root, dot, path = field.partition(".")
    segments = path.split(".")
    if (
        root in METADATA_ROOTS
        and dot
        and len(segments) <= MAX_METADATA_PATH
        and all(_SEGMENT.fullmatch(s) for s in segments)
    ):
        return FieldType.METADATA
    raise KeyError(field)


def normalise(node: Node) -> Node:
    """Lower-case the values of CASE_INSENSITIVE_FIELDS (contract §9.3, Case)."""
    match node:
        case Term(field=f, value=str(v)) if f in CASE_INSENSITIVE_FIELDS:
            return replace(node, value=v.lower())
        case Range(field=f) if f in CASE_INSENSITIVE_FIELDS:
            lo, hi = node.low, node.high
            return replace(
                node,
                low=lo.lower() if isinstance(lo, str) else lo,
                high=hi.lower() if isinstance(hi, str) else hi,
            )
        case And(children=cs):
            return And(tuple(normalise(c) for c in cs))
        case Or(children=cs):
            return Or(tuple(normalise(c) for c in cs))
        case Not(child=c):
            return Not(normalise(c))
    return node


# --- typed values -----------------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?",
    re.ASCII,
)
_INT = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)  # fits a signed 64-bit column


def parse_date(raw: str) -> tuple[float, bool]:
    """Epoch seconds of `YYYY-MM-DD` (UTC midnight) or an ISO date-time; True if date-only."""
    try:
        if _DATE.fullmatch(raw):
            d = date.fromisoformat(raw)
            return datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp(), True
        if _DATETIME.fullmatch(raw):
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp(), False
    except (ValueError, OverflowError):
        pass
    raise ValueError(f"expected a date (YYYY-MM-DD or ISO 8601), got {raw!r}")


def typed_value(field: str, raw: str) -> Value:
    """`raw` as the field's type: bool, int, epoch float (dates) or str; ValueError if not."""
    kind = field_type(field)
    if kind is FieldType.BOOLEAN:
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(f"expected true or false for {field}, got {raw!r}")
    if kind is FieldType.INTEGER:
        if _INT.fullmatch(raw):
            return int(raw)
        raise ValueError(f"expected an integer for {field}, got {raw!r}")
    if kind is FieldType.DATE:
        return parse_date(raw)[0]
    return raw
