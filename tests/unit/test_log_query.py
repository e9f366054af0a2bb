"""The log-search parser (core/log_query.py): the AST of each query form, and a 400 that names
the position of every query it refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keystead.core.log_query import BARE_TERM_FIELDS, MAX_DEPTH, MAX_LOG_QUERY, parse_log_query
from keystead.core.search_ast import DAY, And, Exists, Node, Not, Or, Range, Term, TermKind
from keystead.core.search_lexer import SearchSyntaxError

JAN15 = datetime(2024, 1, 15, tzinfo=UTC).timestamp()
PREFIX = TermKind.PREFIX


def bare(value: str, kind: TermKind = PREFIX) -> Or:
    return Or(tuple(Term(f, value, kind) for f in BARE_TERM_FIELDS))


@pytest.mark.parametrize(
    ("q", "ast"),
    [
        ("type:s", Term("type", "s")),
        ('user_id:"auth0|1 2"', Term("user_id", "auth0|1 2")),
        ("ip:10.0.*", Term("ip", "10.0.", PREFIX)),
        ("ip:*", Exists("ip")),
        ("USER_NAME:x", None),  # field names are case-sensitive: refused below
        ("user_name:Jane*", Term("user_name", "jane", PREFIX)),
        ('description:"Wrong Password"', Term("description", "wrong password")),
        ("type:s type:f", And((Term("type", "s"), Term("type", "f")))),
        ("type:s AND type:f", And((Term("type", "s"), Term("type", "f")))),
        ("type:s OR type:f", Or((Term("type", "s"), Term("type", "f")))),
        ("type:s NOT ip:1", And((Term("type", "s"), Not(Term("ip", "1"))))),
        (
            "type:s OR type:f AND ip:1",
            Or((Term("type", "s"), And((Term("type", "f"), Term("ip", "1"))))),
        ),
        ("type:(s OR f)", Or((Term("type", "s"), Term("type", "f")))),
        ("_exists_:connection", Exists("connection")),
        ("date:2024-01-15", Range("date", JAN15, JAN15 + DAY, True, False)),
        ('date:"2024-01-15T00:00:00Z"', Term("date", JAN15)),
        ("date:[2024-01-15 TO 2024-01-15]", Range("date", JAN15, JAN15 + DAY, True, False)),
        ("date:{2024-01-15 TO *]", Range("date", JAN15 + DAY, None, True, True)),
        ("date:[* TO *]", Exists("date")),
        ("Jan", bare("jan")),
        ("jan*", bare("jan")),
        ('"Jane Doe"', bare("jane doe", TermKind.EXACT)),
        ("type:a\\*b", Term("type", "a*b")),
    ],
)
def test_ast(q: str, ast: Node | None) -> None:
    if ast is None:
        with pytest.raises(SearchSyntaxError):
            parse_log_query(q)
        return
    assert parse_log_query(q) == ast


@pytest.mark.parametrize(
    ("q", "position", "reason"),
    [
        ("password:x", 0, "field 'password' is not searchable"),
        ("type:s AND scope:x", 11, "field 'scope' is not searchable"),
        ("type:s AND", 10, "expected a search term after AND"),
        ('user_id:"open', 8, "unterminated quoted phrase"),
        ("type:(s OR f", 12, "expected ')'"),
        ("type:*s", 5, "'*' is only allowed at the end of a term"),
        ("*abc", 0, "'*' is only allowed at the end of a term"),
        ("*", 0, "a lone '*' needs a field; use _exists_:field"),
        ("ty*pe:s", 0, "wildcards are not allowed in field names"),
        ("ip:[1 TO 2]", 3, "ranges are only allowed on date, not on ip"),
        ("date:[2024-01-01 2024-02-01]", 17, "expected 'TO' in range"),
        ("date:[2024-01-01 TO 2024-02-01", 30, "expected ']' or '}' to close the range"),
        ("date:yesterday", 5, "expected a date (YYYY-MM-DD or ISO 8601), got 'yesterday'"),
        ("date:2024*", 5, "wildcards are not allowed on date; use a range"),
        ("-type:s", 0, "prefix operator '-' is not supported; use NOT"),
        ("type:s~", 6, "fuzzy and proximity ('~') are not supported; escape it with '\\'"),
        ("type:s)", 6, "unexpected ')'"),
        ("()", 0, "empty group"),
        ("[1 TO 2]", 0, "a range needs a field, as in date:[2024-01-01 TO 2024-01-31]"),
        ("", 0, "expected a search term"),
        ("(" * (MAX_DEPTH + 1) + "type:s", MAX_DEPTH,
         f"query nests deeper than {MAX_DEPTH} levels"),
        ("x" * (MAX_LOG_QUERY + 1), MAX_LOG_QUERY,
         f"query is longer than {MAX_LOG_QUERY} characters"),
    ],
)  # fmt: skip
def test_refused_with_position(q: str, position: int, reason: str) -> None:
    with pytest.raises(SearchSyntaxError) as caught:
        parse_log_query(q)
    assert (caught.value.position, caught.value.reason) == (position, reason)
    assert caught.value.status == 400
    assert caught.value.message == f"Query parse error at position {position}: {reason}"
