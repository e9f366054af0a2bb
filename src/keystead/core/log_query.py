"""Log search: the Lucene subset of `GET /logs?q=` parsed to the search AST (contract §10.7).

    parse_log_query(q) -> Node   whitelisted log fields; SearchSyntaxError (400) names the position

Grammar (NOT binds tighter than AND, AND tighter than OR). Juxtaposed clauses are joined by AND,
as Auth0's log search does ("if multiple fields are used, the AND operator is used"):

    query  := expr EOF               expr  := clause ((AND | OR)? clause)*
    clause := NOT clause | '(' expr ')' | '_exists_:' field | field ':' value | term
    value  := '(' expr-of-values ')' | range | "phrase" | word | word*

Values match exactly; a trailing `*` makes a prefix search. Fields in CASE_INSENSITIVE compare
without case. A bare term is a case-insensitive prefix search over BARE_TERM_FIELDS (what the
OpenAPI document describes for terms without a field). `date` takes YYYY-MM-DD (the whole UTC day)
or an ISO date-time, and ranges `date:[a TO b]`, `{a TO b}`, `*` for an open end.

The words come from core/search_lexer.py, AND/OR/NOT from core/search_grammar.py and the node
types from core/search_ast.py, all shared with user search; only the field table and the value
rules differ.
"""

from __future__ import annotations

from typing import Final

from keystead.core.search_ast import (
    DAY,
    Exists,
    Node,
    Or,
    Range,
    Term,
    TermKind,
    Value,
    parse_date,
)
from keystead.core.search_grammar import BooleanParser
from keystead.core.search_lexer import SearchSyntaxError, _ends_word, _Word

MAX_LOG_QUERY: Final = 1000
MAX_DEPTH: Final = 10
DATE_FIELD: Final = "date"
# Every searchable log field: `date`, the row's own columns and the keys of its `data`. Not
# `scope`, stored as a list, nor `details`, an object.
STRING_FIELDS: Final = frozenset(
    {"type", "user_id", "client_id", "log_id", "client_name", "ip", "connection",
     "connection_id", "description", "user_name", "user_agent", "hostname", "audience",
     "strategy", "strategy_type"}
)  # fmt: skip
CASE_INSENSITIVE: Final = frozenset(
    {"client_name", "connection", "description", "user_name", "hostname"}
)
BARE_TERM_FIELDS: Final = ("client_name", "connection", "user_name")


def parse_log_query(q: str) -> Node:
    """Parse the `q` (or `search`) of GET /logs into an AST over the log fields."""
    if len(q) > MAX_LOG_QUERY:
        raise SearchSyntaxError(f"query is longer than {MAX_LOG_QUERY} characters", MAX_LOG_QUERY)
    return _LogParser(q).query()


def searchable(field: str) -> bool:
    return field == DATE_FIELD or field in STRING_FIELDS


class _LogParser(BooleanParser):
    max_depth = MAX_DEPTH
    default_and = True  # Auth0: "if multiple fields are used, the AND operator is used"
    range_example = "date:[2024-01-01 TO 2024-01-31]"

    def searchable(self, name: str, *, exists: bool) -> bool:
        return searchable(name)

    # 2. values

    def value(self, field: str, *, grouped: bool = False) -> Node:
        c = self.peek()
        if c in ("[", "{"):
            return self.range(field)
        if c in ("]", "}", ")", ""):
            raise self.fail(f"expected a value for {field}")
        w = self.value_word()
        if field == DATE_FIELD:
            if w.stars and not w.quoted:
                raise self.fail("wildcards are not allowed on date; use a range", w.start)
            epoch, date_only = self.date(w)
            return (
                Range(field, epoch, epoch + DAY, True, False) if date_only else Term(field, epoch)
            )
        if w.quoted or not w.stars:
            return Term(field, self.cased(field, w.text))
        return self.prefix(field, w)

    def bare(self, w: _Word) -> Node:
        if w.text == "*" and w.stars:
            raise self.fail("a lone '*' needs a field; use _exists_:field", w.start)
        if w.stars and w.stars != (len(w.text) - 1,):
            raise self.fail("'*' is only allowed at the end of a term", w.start)
        # "quoted": exact; unquoted: prefix, its trailing `*` optional (OpenAPI's wording).
        kind = TermKind.EXACT if w.quoted else TermKind.PREFIX
        literal = (w.text[:-1] if w.stars else w.text).lower()
        return Or(tuple(Term(f, literal, kind) for f in BARE_TERM_FIELDS))

    def prefix(self, field: str, w: _Word) -> Node:
        if w.text == "*":
            return Exists(field)
        if w.stars != (len(w.text) - 1,):
            raise self.fail("'*' is only allowed at the end of a term", w.start)
        return Term(field, self.cased(field, w.text[:-1]), TermKind.PREFIX)

    def range(self, field: str) -> Node:
        if field != DATE_FIELD:
            raise self.fail(f"ranges are only allowed on date, not on {field}")
        low_inclusive = self.q[self.pos] == "["
        self.pos += 1
        low = self.bound()
        self.skip_space()
        after = self.pos + 2
        if not self.q.startswith("TO", self.pos) or (
            after < len(self.q) and not _ends_word(self.q[after])
        ):
            raise self.fail("expected 'TO' in range")
        self.pos = after
        high, end = self.bound(), self.peek()
        if end not in ("]", "}"):
            raise self.fail("expected ']' or '}' to close the range")
        self.pos += 1
        lo, lo_inc = _round(low, upper=False, inclusive=low_inclusive)
        hi, hi_inc = _round(high, upper=True, inclusive=end == "]")
        if lo is None and hi is None:
            return Exists(field)
        return Range(field, lo, hi, lo_inc, hi_inc)

    def bound(self) -> tuple[float, bool] | None:
        if self.peek() in ("]", "}", ""):
            raise self.fail("expected a range bound")
        w = self.phrase() if self.peek() == '"' else self.word(colon_ends=False)
        if not w.quoted and w.text == "*" and w.stars:
            return None
        if w.stars and not w.quoted:
            raise self.fail("wildcards are not allowed in range bounds", w.start)
        return self.date(w)

    def date(self, w: _Word) -> tuple[float, bool]:
        try:
            return parse_date(w.text)
        except ValueError as exc:
            raise self.fail(str(exc), w.start) from None

    @staticmethod
    def cased(field: str, value: str) -> str:
        return value.lower() if field in CASE_INSENSITIVE else value


def _round(
    bound: tuple[float, bool] | None, *, upper: bool, inclusive: bool
) -> tuple[Value | None, bool]:
    """Day-granular bounds as Elasticsearch rounds them: `d]` is before the next day."""
    if bound is None:
        return None, inclusive
    value, date_only = bound
    if date_only and upper == inclusive:  # `d]` is < next day; `{d` is ≥ next day
        return value + DAY, not upper
    return value, inclusive
