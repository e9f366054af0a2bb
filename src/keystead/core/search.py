"""User search: the Lucene subset of `GET /users?q=` parsed to a typed AST (contract §9.3).

    parse(q) -> Node        syntax, whitelisted fields, typed values; SearchSyntaxError else
    normalise(node) -> Node  lower-cases values of the case-insensitive fields

Grammar (NOT binds tighter than AND, AND tighter than OR; juxtaposition is the default
operator, except before NOT, where it is AND as in Lucene's `a -b`):

    query   := expr EOF              expr   := clause ((AND | OR)? clause)*
    clause  := NOT clause | '(' expr ')' | '_exists_:' field | field ':' value | term
    value   := '(' expr-of-values ')' | range | "phrase" | word      range := [ { lo TO hi } ]

Bare terms search BARE_TERM_FIELDS and become an Or of Terms, so the AST walker (storage)
never meets an implicit field. Dates are day-granular when given without a time, as in
Elasticsearch: `created_at:2024-01-31` and `[* TO 2024-01-31]` include that whole UTC day.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Final, Literal, TypeVar

from keystead.errors import BadRequest

MAX_QUERY_LENGTH: Final = 2000
MAX_DEPTH: Final = 20
MAX_METADATA_PATH: Final = 10  # segments after app_metadata./user_metadata.
DAY: Final = 86_400.0
# Metadata keys as path segments: letters, digits, `_` and `-` only, so that no quote, bracket
# or `$` ever reaches a JSON path the store builds (§9.1 already bans `.` and `$` in keys).
_SEGMENT = re.compile(r"[\w-]+")
_T = TypeVar("_T")


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


class SearchSyntaxError(BadRequest):
    """400 invalid_query_string, naming the 0-based position of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(
            f"Query parse error at position {position}: {message}",
            error_code="invalid_query_string",
        )
        self.reason = message
        self.position = position


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


# --- the parser -------------------------------------------------------------------------------

_STOP = frozenset('()[]{}"')  # and whitespace end an unquoted word; ':' too outside values
_UNSUPPORTED = {"?": "'?' wildcards", "~": "fuzzy and proximity ('~')", "^": "boosts ('^')"}
_OPERATORS = ("AND", "OR", "NOT")


@dataclass
class _Word:
    text: str  # escapes resolved
    stars: tuple[int, ...]  # indexes of unescaped '*' in text
    start: int
    end: int
    quoted: bool = False


def parse(q: str, *, default_operator: Literal["OR", "AND"] = "OR") -> Node:
    """Parse a `q` of GET /users into an AST over whitelisted fields."""
    if default_operator not in ("OR", "AND"):
        raise ValueError(f"default_operator must be OR or AND, not {default_operator!r}")
    if len(q) > MAX_QUERY_LENGTH:
        raise SearchSyntaxError(
            f"query is longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH
        )
    return _Parser(q, default_operator).query()


class _Parser:
    def __init__(self, q: str, default_operator: str) -> None:
        self.q = q
        self.pos = 0
        self.default_and = default_operator == "AND"

    # 1. characters and words

    def fail(self, message: str, position: int | None = None) -> SearchSyntaxError:
        return SearchSyntaxError(message, self.pos if position is None else position)

    def skip_space(self) -> None:
        while self.pos < len(self.q) and self.q[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.q[self.pos] if self.pos < len(self.q) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected '{char}'")
        self.pos += 1

    def peek_operator(self) -> str | None:
        self.skip_space()
        for op in _OPERATORS:
            end = self.pos + len(op)
            if self.q.startswith(op, self.pos) and (end == len(self.q) or _ends_word(self.q[end])):
                return op
        return None

    def word(self, *, colon_ends: bool) -> _Word:
        start, text, stars = self.pos, list[str](), list[int]()
        while self.pos < len(self.q):
            c = self.q[self.pos]
            if _ends_word(c) or (colon_ends and c == ":"):
                break
            if c == "\\":
                if self.pos + 1 == len(self.q):
                    raise self.fail("escape character '\\' at the end of the query")
                c = self.q[self.pos + 1]
                self.pos += 1
            elif c == "*":
                stars.append(len(text))
            elif c in _UNSUPPORTED:
                raise self.fail(f"{_UNSUPPORTED[c]} are not supported; escape it with '\\'")
            text.append(c)
            self.pos += 1
        if self.pos == start:
            raise self.fail("expected a search term")
        return _Word("".join(text), tuple(stars), start, self.pos)

    def phrase(self) -> _Word:
        start, text = self.pos, list[str]()
        self.pos += 1  # the opening quote
        while self.pos < len(self.q) and self.q[self.pos] != '"':
            if self.q[self.pos] == "\\" and self.pos + 1 < len(self.q):
                self.pos += 1
            text.append(self.q[self.pos])
            self.pos += 1
        if self.pos == len(self.q):
            raise self.fail("unterminated quoted phrase", start)
        self.pos += 1
        return _Word("".join(text), (), start, self.pos, quoted=True)

    def value_word(self) -> _Word:
        if self.peek_operator():
            raise self.fail(f"expected a value, found operator {self.peek_operator()}")
        return self.phrase() if self.peek() == '"' else self.word(colon_ends=False)

    # 2. boolean structure

    def query(self) -> Node:
        node = self.expr(None, 0)
        if self.peek():
            raise self.fail(f"unexpected '{self.q[self.pos]}'")
        return node

    def expr(self, field: str | None, depth: int) -> Node:
        """Clauses joined by operators; returns Or of And groups (AND binds tighter)."""
        groups: list[list[Node]] = [[self.clause(field, depth)]]
        while (c := self.peek()) and c != ")":
            op = self.peek_operator()
            if op in ("AND", "OR"):
                self.pos += len(op)
                if not self.peek() or self.peek() == ")":
                    raise self.fail(f"expected a search term after {op}")
            elif op == "NOT" or self.default_and:
                op = "AND"  # Lucene: `a NOT b` prohibits b whatever the default operator
            else:
                op = "OR"
            clause = self.clause(field, depth)
            if op == "AND":
                groups[-1].append(clause)
            else:
                groups.append([clause])
        return _join(Or, [_join(And, g) for g in groups])

    def clause(self, field: str | None, depth: int) -> Node:
        op = self.peek_operator()
        if (op == "NOT" or self.peek() == "(") and depth >= MAX_DEPTH:
            raise self.fail(f"query nests deeper than {MAX_DEPTH} levels")
        if op == "NOT":
            self.pos += 3
            if not self.peek() or self.peek() == ")":
                raise self.fail("expected a search term after NOT")
            return Not(self.clause(field, depth + 1))
        if op:
            raise self.fail(f"unexpected {op}: expected a search term")
        c = self.peek()
        if c == "(":
            start = self.pos
            self.pos += 1
            if self.peek() == ")":
                raise self.fail("empty group", start)
            node = self.expr(field, depth + 1)
            self.expect(")")
            return node
        if c and c in "+-!":
            raise self.fail(f"prefix operator '{c}' is not supported; use NOT")
        if field is not None:
            return self.value(field, grouped=True)
        return self.field_clause(depth)

    def field_clause(self, depth: int) -> Node:
        if self.peek() in ('"', "[", "{"):
            if self.peek() != '"':
                raise self.fail("a range needs a field, as in logins_count:[1 TO 5]")
            return self.bare(self.phrase())
        head = self.word(colon_ends=True)
        if self.pos >= len(self.q) or self.q[self.pos] != ":":
            return self.bare(head)
        self.pos += 1  # the colon
        if head.text == "_exists_" and not head.stars:
            if not self.peek() or _ends_word(self.peek()):
                raise self.fail("expected a field name after _exists_:")
            return Exists(self.check_field(self.word(colon_ends=True), exists=True))
        field = self.check_field(head)
        self.skip_space()
        if self.peek() == "(":
            return self.clause(field, depth)
        return self.value(field, grouped=False)

    def check_field(self, w: _Word, *, exists: bool = False) -> str:
        if w.stars:
            raise self.fail("wildcards are not allowed in field names", w.start)
        if exists and w.text in METADATA_ROOTS:
            return w.text
        try:
            field_type(w.text)
        except KeyError:
            raise self.fail(f"field '{w.text}' is not searchable", w.start) from None
        return w.text

    # 3. values

    def value(self, field: str, *, grouped: bool) -> Node:
        c = self.peek()
        if c in ("[", "{"):
            return self.range(field)
        if c in ("]", "}", ")", ""):
            raise self.fail(f"expected a value for {field}")
        w = self.value_word()
        name = w.text.partition(":")[0] if ":" in w.text and not w.quoted else None
        if grouped and name is not None and (name == "_exists_" or _searchable(name)):
            raise self.fail(f"field '{name}' inside a group for field {field}", w.start)
        if w.quoted or not w.stars:
            return self.typed_term(field, w)
        return self.wildcard(field, w)

    def bare(self, w: _Word) -> Node:
        if w.text == "*" and w.stars:
            raise self.fail("a lone '*' needs a field; use _exists_:field", w.start)
        return Or(
            tuple(self.wildcard(f, w) if w.stars else Term(f, w.text) for f in BARE_TERM_FIELDS)
        )

    def typed_term(self, field: str, w: _Word) -> Node:
        if field_type(field) is FieldType.DATE:
            epoch, date_only = self.convert(parse_date, w)
            if date_only:  # the whole UTC day
                return Range(field, epoch, epoch + DAY, True, False)
            return Term(field, epoch)
        return Term(field, self.convert(lambda raw: typed_value(field, raw), w))

    def convert(self, fn: Callable[[str], _T], w: _Word) -> _T:
        try:
            return fn(w.text)
        except ValueError as exc:
            raise self.fail(str(exc), w.start) from None

    def wildcard(self, field: str, w: _Word) -> Node:
        kind = field_type(field)
        if w.text == "*":
            return Exists(field)
        if field.startswith("user_metadata."):
            raise self.fail("wildcards are not allowed on user_metadata fields", w.start)
        if kind not in (FieldType.STRING, FieldType.METADATA):
            raise self.fail(f"wildcards are not allowed on {kind} field {field}", w.start)
        n, stars = len(w.text), set(w.stars)
        literal = w.text[1 if 0 in stars else 0 : n - 1 if n - 1 in stars else n]
        if not stars <= {0, n - 1} or not literal:
            raise self.fail("'*' is only allowed at the start or end of a term", w.start)
        if stars == {n - 1}:
            return Term(field, literal, TermKind.PREFIX)
        if len(literal) < 3:
            raise self.fail("a leading '*' needs at least 3 other characters", w.start)
        return Term(field, literal, TermKind.SUFFIX if stars == {0} else TermKind.CONTAINS)

    def range(self, field: str) -> Node:
        kind = field_type(field)
        start = self.pos
        if field.startswith("user_metadata."):
            raise self.fail("ranges are not allowed on user_metadata fields", start)
        if kind is FieldType.BOOLEAN:
            raise self.fail(f"ranges are not allowed on boolean field {field}", start)
        low_inclusive = self.q[self.pos] == "["
        self.pos += 1
        low = self.bound(field)
        self.skip_space()
        after = self.pos + 2
        if not self.q.startswith("TO", self.pos) or (
            after < len(self.q) and not _ends_word(self.q[after])
        ):
            raise self.fail("expected 'TO' in range")
        self.pos = after
        high, end = self.bound(field), self.peek()
        if end not in ("]", "}"):
            raise self.fail("expected ']' or '}' to close the range")
        self.pos += 1
        high_inclusive = end == "]"
        lo, lo_inc = _round(kind, low, upper=False, inclusive=low_inclusive)
        hi, hi_inc = _round(kind, high, upper=True, inclusive=high_inclusive)
        if lo is None and hi is None:
            return Exists(field)
        return Range(field, lo, hi, lo_inc, hi_inc)

    def bound(self, field: str) -> tuple[Value, bool] | None:
        if self.peek() in ("]", "}", ""):
            raise self.fail("expected a range bound")
        w = self.phrase() if self.peek() == '"' else self.word(colon_ends=False)
        if not w.quoted and w.text == "*" and w.stars:
            return None
        if w.stars and not w.quoted:
            raise self.fail("wildcards are not allowed in range bounds", w.start)
        if field_type(field) is FieldType.DATE:
            return self.convert(parse_date, w)
        return self.convert(lambda raw: typed_value(field, raw), w), False


def _ends_word(c: str) -> bool:
    return c in _STOP or c.isspace()


def _searchable(name: str) -> bool:
    try:
        field_type(name)
    except KeyError:
        return False
    return True


def _round(
    kind: FieldType, bound: tuple[Value, bool] | None, *, upper: bool, inclusive: bool
) -> tuple[Value | None, bool]:
    """Day-granular date bounds as Elasticsearch rounds them: `]` and `{` round up."""
    if bound is None:
        return None, inclusive
    value, date_only = bound
    if kind is FieldType.DATE and date_only and isinstance(value, float):
        if upper == inclusive:  # `d]` is < next day; `{d` is ≥ next day
            return value + DAY, not upper
        return value, inclusive
    return value, inclusive


def _join(cls: type[And] | type[Or], nodes: list[Node]) -> Node:
    """One node for one child; nested nodes of the same operator are flattened."""
    flat: list[Node] = []
    for n in nodes:
        flat.extend(n.children if isinstance(n, cls) else (n,))
    return flat[0] if len(flat) == 1 else cls(tuple(flat))
