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

The words come from core/search_lexer.py; node types, the field table and typed values live in
core/search_ast.py and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, Literal, TypeVar

from keystead.core.search_ast import (
    BARE_TERM_FIELDS,
    CASE_INSENSITIVE_FIELDS,
    DAY,
    FIELDS,
    MAX_METADATA_PATH,
    METADATA_ROOTS,
    And,
    Exists,
    FieldType,
    Node,
    Not,
    Or,
    Range,
    Term,
    TermKind,
    Value,
    field_type,
    normalise,
    parse_date,
    typed_value,
)
from keystead.core.search_grammar import BooleanParser
from keystead.core.search_lexer import SearchSyntaxError, _ends_word, _Word

__all__ = [
    "BARE_TERM_FIELDS", "CASE_INSENSITIVE_FIELDS", "DAY", "FIELDS", "MAX_DEPTH",
    "MAX_METADATA_PATH", "MAX_QUERY_LENGTH", "METADATA_ROOTS", "And", "Exists", "FieldType",
    "Node", "Not", "Or", "Range", "SearchSyntaxError", "Term", "TermKind", "Value",
    "field_type", "normalise", "parse", "parse_date", "typed_value",
]  # fmt: skip

MAX_QUERY_LENGTH: Final = 2000
MAX_DEPTH: Final = 20
_T = TypeVar("_T")


def parse(q: str, *, default_operator: Literal["OR", "AND"] = "OR") -> Node:
    """Parse a `q` of GET /users into an AST over whitelisted fields."""
    if default_operator not in ("OR", "AND"):
        raise ValueError(f"default_operator must be OR or AND, not {default_operator!r}")
    if len(q) > MAX_QUERY_LENGTH:
        raise SearchSyntaxError(
            f"query is longer than {MAX_QUERY_LENGTH} characters", MAX_QUERY_LENGTH
        )
    return _Parser(q, default_operator).query()


class _Parser(BooleanParser):
    max_depth = MAX_DEPTH

    def __init__(self, q: str, default_operator: str) -> None:
        super().__init__(q)
        self.default_and = default_operator == "AND"

    range_example = "logins_count:[1 TO 5]"

    def searchable(self, name: str, *, exists: bool) -> bool:
        if exists and name in METADATA_ROOTS:
            return True  # `_exists_:user_metadata`: the document as a whole
        try:
            field_type(name)
        except KeyError:
            return False
        return True

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
