"""User search queries (contract §9.3): valid queries → exact AST, invalid → error with position."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keystead.core.search import (
    BARE_TERM_FIELDS,
    DAY,
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    And,
    Exists,
    FieldType,
    Node,
    Not,
    Or,
    Range,
    SearchSyntaxError,
    Term,
    TermKind,
    field_type,
    normalise,
    parse,
    typed_value,
)
from keystead.errors import BadRequest

P, S, C = TermKind.PREFIX, TermKind.SUFFIX, TermKind.CONTAINS


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def bare(value: str, kind: TermKind = TermKind.EXACT) -> Or:
    return Or(tuple(Term(f, value, kind) for f in BARE_TERM_FIELDS))


D1 = ts("2024-12-31")
D2 = ts("2025-01-01")

VALID: list[tuple[str, Node]] = [
    # field terms, quoted phrases, typed values
    ('email:"jane@example.com"', Term("email", "jane@example.com")),
    ("email:jane@example.com", Term("email", "jane@example.com")),
    ("email_verified:false", Term("email_verified", False)),
    ("blocked:TRUE", Term("blocked", True)),
    ('email_verified:"true"', Term("email_verified", True)),
    ("logins_count:5", Term("logins_count", 5)),
    ("logins_count:-1", Term("logins_count", -1)),
    ('name:"Jane Doe"', Term("name", "Jane Doe")),
    ('name:"say \\"hi\\" \\\\ bye"', Term("name", 'say "hi" \\ bye')),
    ('name:"a*b (c) AND d"', Term("name", "a*b (c) AND d")),
    ("user_id:auth0|65f1", Term("user_id", "auth0|65f1")),
    ("phone_number:+15550100", Term("phone_number", "+15550100")),
    ("picture:https://x.example/a.png", Term("picture", "https://x.example/a.png")),
    ("name:a\\*b", Term("name", "a*b")),
    ("name:foo\\ bar", Term("name", "foo bar")),
    ("email: jane@example.com", Term("email", "jane@example.com")),
    ("organization_id:org_1", Term("organization_id", "org_1")),
    ("last_ip:10.0.0.1", Term("last_ip", "10.0.0.1")),
    # nested fields and the synthetic email.domain
    ('identities.connection:"google-oauth2"', Term("identities.connection", "google-oauth2")),
    ("identities.isSocial:true", Term("identities.isSocial", True)),
    ("identities.provider:auth0", Term("identities.provider", "auth0")),
    ("identities.user_id:123", Term("identities.user_id", "123")),
    ('app_metadata.plan:"pro"', Term("app_metadata.plan", "pro")),
    ("user_metadata.display.fontSize:13", Term("user_metadata.display.fontSize", "13")),
    ('user_metadata.addresses.cities:"Paris"', Term("user_metadata.addresses.cities", "Paris")),
    ('email.domain:"example.com"', Term("email.domain", "example.com")),
    ("user_metadata.my-key_1:x", Term("user_metadata.my-key_1", "x")),
    ("user_metadata.größe:x", Term("user_metadata.größe", "x")),
    # wildcards
    ("name:john*", Term("name", "john", P)),
    ("name:j*", Term("name", "j", P)),
    ("name:*usa", Term("name", "usa", S)),
    ("name:*usa*", Term("name", "usa", C)),
    ("email.domain:*ample.com", Term("email.domain", "ample.com", S)),
    ("app_metadata.plan:pr*", Term("app_metadata.plan", "pr", P)),
    ("name:\\*x*", Term("name", "*x", P)),
    ("name:*", Exists("name")),
    ("user_metadata.theme:*", Exists("user_metadata.theme")),
    ("logins_count:*", Exists("logins_count")),
    # ranges, mixed brackets, open ends, dates
    ("logins_count:[10 TO 100]", Range("logins_count", 10, 100, True, True)),
    ("logins_count:[10 TO 100}", Range("logins_count", 10, 100, True, False)),
    ("logins_count:{10 TO 100]", Range("logins_count", 10, 100, False, True)),
    ("logins_count:{10 TO 100}", Range("logins_count", 10, 100, False, False)),
    ("logins_count:[ 10 TO 100 ]", Range("logins_count", 10, 100, True, True)),
    ("logins_count:[5 TO *]", Range("logins_count", 5, None, True, True)),
    ("logins_count:[* TO *]", Exists("logins_count")),
    ("last_login:[* TO 2024-12-31]", Range("last_login", None, D1 + DAY, True, False)),
    ("last_login:[* TO 2024-12-31}", Range("last_login", None, D1, True, False)),
    ("created_at:[2025-01-01 TO *]", Range("created_at", D2, None, True, True)),
    ("created_at:{2024-12-31 TO *]", Range("created_at", D2, None, True, True)),
    ("created_at:[2024-12-31 TO 2025-01-01]", Range("created_at", D1, D2 + DAY, True, False)),
    (
        "updated_at:[2025-01-01T10:00:00Z TO 2025-01-01T12:30:00.5+02:00}",
        Range("updated_at", D2 + 36_000, D2 + 37_800.5, True, False),
    ),
    ('created_at:["2025-01-01T00:00:00" TO *]', Range("created_at", D2, None, True, True)),
    ("created_at:2025-01-01", Range("created_at", D2, D2 + DAY, True, False)),
    ("created_at:2025-01-01T00:00:00Z", Term("created_at", D2)),
    ("name:[a TO m}", Range("name", "a", "m", True, False)),
    ("app_metadata.score:[1 TO 5]", Range("app_metadata.score", "1", "5", True, True)),
    # existence
    ("_exists_:user_metadata.nickname", Exists("user_metadata.nickname")),
    ("_exists_:app_metadata", Exists("app_metadata")),
    ("NOT _exists_:logins_count", Not(Exists("logins_count"))),
    # boolean structure
    ("name:a AND blocked:true", And((Term("name", "a"), Term("blocked", True)))),
    ("name:a OR name:b", Or((Term("name", "a"), Term("name", "b")))),
    ("name:a name:b", Or((Term("name", "a"), Term("name", "b")))),
    ("NOT blocked:true", Not(Term("blocked", True))),
    ("name:a NOT name:b", And((Term("name", "a"), Not(Term("name", "b"))))),
    ("name:a OR NOT name:b", Or((Term("name", "a"), Not(Term("name", "b"))))),
    (
        "name:a OR name:b AND name:c",
        Or((Term("name", "a"), And((Term("name", "b"), Term("name", "c"))))),
    ),
    (
        "(name:a OR name:b) AND name:c",
        And((Or((Term("name", "a"), Term("name", "b"))), Term("name", "c"))),
    ),
    (
        "name:a AND name:b AND name:c",
        And((Term("name", "a"), Term("name", "b"), Term("name", "c"))),
    ),
    ("((name:a))", Term("name", "a")),
    ("NOT NOT name:a", Not(Not(Term("name", "a")))),
    ('name:("a b" OR "c d")', Or((Term("name", "a b"), Term("name", "c d")))),
    ("name:(a b)", Or((Term("name", "a"), Term("name", "b")))),
    ("name:(a AND NOT b)", And((Term("name", "a"), Not(Term("name", "b"))))),
    ("logins_count:([1 TO 2] OR 7)", Or((Range("logins_count", 1, 2), Term("logins_count", 7)))),
    ("name:(jo* OR (*usa))", Or((Term("name", "jo", P), Term("name", "usa", S)))),
    ("name:and", Term("name", "and")),  # operators are upper-case only
    # bare terms
    ("jane", bare("jane")),
    ('"jane doe"', bare("jane doe")),
    ("jan*", bare("jan", P)),
    ("jane AND blocked:false", And((bare("jane"), Term("blocked", False)))),
    ("jane john", Or(bare("jane").children + bare("john").children)),
    ("TO", bare("TO")),
    ("name:a\u00a0name:b", Or((Term("name", "a"), Term("name", "b")))),  # any Unicode space
]


@pytest.mark.parametrize(("q", "ast"), VALID, ids=[q for q, _ in VALID])
def test_valid_query(q, ast):
    assert parse(q) == ast


INVALID: list[tuple[str, int, str]] = [
    ("", 0, "expected a search term"),
    ("   ", 3, "expected a search term"),
    ("name:(jane", 10, "expected ')'"),
    ("(name:a OR name:b", 17, "expected ')'"),
    ("name:a)", 6, "unexpected ')'"),
    ("()", 0, "empty group"),
    ("name:()", 5, "empty group"),
    ("foo:bar", 0, "field 'foo' is not searchable"),
    ("blocked:x AND Email:a", 8, "expected true or false for blocked, got 'x'"),
    ("name:a AND Email:a", 11, "field 'Email' is not searchable"),
    ("app_metadata:x", 0, "field 'app_metadata' is not searchable"),
    ("app_metadata.:x", 0, "field 'app_metadata.' is not searchable"),
    ("app_metadata.a..b:x", 0, "field 'app_metadata.a..b' is not searchable"),
    ("app_metadata.$where:x", 0, "field 'app_metadata.$where' is not searchable"),
    ("user_metadata.a.b.c.d.e.f.g.h.i.j.k:x", 0, "is not searchable"),
    ("identities.foo:x", 0, "field 'identities.foo' is not searchable"),
    ('app_metadata.a\\"b:x', 0, "field 'app_metadata.a\"b' is not searchable"),
    ("app_metadata.a\\[0\\]:x", 0, "field 'app_metadata.a[0]' is not searchable"),
    ("app_metadata.a\\ b:x", 0, "field 'app_metadata.a b' is not searchable"),
    ("password:x", 0, "field 'password' is not searchable"),
    ("na*e:x", 0, "wildcards are not allowed in field names"),
    ("name:*sa", 5, "a leading '*' needs at least 3 other characters"),
    ("name:*sa*", 5, "a leading '*' needs at least 3 other characters"),
    ("name:jo*hn", 5, "'*' is only allowed at the start or end of a term"),
    ("name:**", 5, "'*' is only allowed at the start or end of a term"),
    ("name:a**", 5, "'*' is only allowed at the start or end of a term"),
    ("user_metadata.x:a*", 16, "wildcards are not allowed on user_metadata fields"),
    ("user_metadata.x:*abcd", 16, "wildcards are not allowed on user_metadata fields"),
    ("user_metadata.x:[1 TO 2]", 16, "ranges are not allowed on user_metadata fields"),
    ("logins_count:1*", 13, "wildcards are not allowed on integer field logins_count"),
    ("blocked:t*", 8, "wildcards are not allowed on boolean field blocked"),
    ("created_at:2024*", 11, "wildcards are not allowed on date field created_at"),
    ("blocked:[true TO false]", 8, "ranges are not allowed on boolean field blocked"),
    ("logins_count:abc", 13, "expected an integer for logins_count, got 'abc'"),
    ("logins_count:1.5", 13, "expected an integer for logins_count"),
    ("logins_count:99999999999999999999", 13, "expected an integer for logins_count"),
    ("logins_count:[a TO 5]", 14, "expected an integer for logins_count"),
    ("created_at:2024-13-01", 11, "expected a date (YYYY-MM-DD or ISO 8601)"),
    ("created_at:2024-02-30", 11, "expected a date"),
    ("created_at:20240101", 11, "expected a date"),
    ("created_at:[2024-01-01 TO tomorrow]", 26, "expected a date"),
    ("created_at:[2024-01-01 TO 2024-01-0]", 26, "expected a date"),
    ("logins_count:[1 TO 2", 20, "expected ']' or '}' to close the range"),
    ("logins_count:[1 2]", 16, "expected 'TO' in range"),
    ("logins_count:[1 TOO 2]", 16, "expected 'TO' in range"),
    ("logins_count:[1 TO]", 18, "expected a range bound"),
    ("logins_count:[]", 14, "expected a range bound"),
    ("logins_count:[1* TO 2]", 14, "wildcards are not allowed in range bounds"),
    ("[1 TO 2]", 0, "a range needs a field"),
    ('"abc', 0, "unterminated quoted phrase"),
    ('name:"abc', 5, "unterminated quoted phrase"),
    ('name:"abc\\"', 5, "unterminated quoted phrase"),
    ("abc\\", 3, "escape character '\\' at the end of the query"),
    ("name:(email:x)", 6, "field 'email' inside a group for field name"),
    ("name:(_exists_:x)", 6, "field '_exists_' inside a group for field name"),
    ("name:a AND", 10, "expected a search term after AND"),
    ("name:a OR ", 10, "expected a search term after OR"),
    ("(name:a AND)", 11, "expected a search term after AND"),
    ("AND name:a", 0, "unexpected AND: expected a search term"),
    ("name:a AND OR name:b", 11, "unexpected OR: expected a search term"),
    ("NOT", 3, "expected a search term after NOT"),
    ("(NOT)", 4, "expected a search term after NOT"),
    ("name:AND", 5, "expected a value, found operator AND"),
    ("name:", 5, "expected a value for name"),
    ("name:)", 5, "expected a value for name"),
    ("name:a?c", 6, "'?' wildcards are not supported"),
    ("name:abc~2", 8, "fuzzy and proximity ('~') are not supported"),
    ("name:abc^2", 8, "boosts ('^') are not supported"),
    ("-name:a", 0, "prefix operator '-' is not supported; use NOT"),
    ("name:a +name:b", 7, "prefix operator '+' is not supported"),
    ("!name:a", 0, "prefix operator '!' is not supported"),
    ("*", 0, "a lone '*' needs a field; use _exists_:field"),
    ("_exists_:", 9, "expected a field name after _exists_:"),
    ("_exists_:(name)", 9, "expected a field name after _exists_:"),
    ("_exists_:foo", 9, "field 'foo' is not searchable"),
    ("name:a :b", 7, "expected a search term"),
    ("name:a ]", 7, "unexpected ']'"),
    ("x" * (MAX_QUERY_LENGTH + 1), MAX_QUERY_LENGTH, "query is longer than 2000 characters"),
    ("(" * 21 + "name:a" + ")" * 21, 20, "query nests deeper than 20 levels"),
    ("NOT " * 21 + "name:a", 80, "query nests deeper than 20 levels"),
    ("name:" + "(" * 21 + "a" + ")" * 21, 25, "query nests deeper than 20 levels"),
]


@pytest.mark.parametrize(("q", "position", "reason"), INVALID, ids=[q[:40] for q, *_ in INVALID])
def test_invalid_query(q, position, reason):
    with pytest.raises(SearchSyntaxError) as exc:
        parse(q)
    err = exc.value
    assert (err.position, reason in err.reason) == (position, True), err.message
    assert err.message == f"Query parse error at position {position}: {err.reason}"
    assert err.body() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": err.message,
        "errorCode": "invalid_query_string",
    }
    assert isinstance(err, BadRequest)


def test_limits_are_inclusive():
    assert parse("name:" + "a" * (MAX_QUERY_LENGTH - 5)) == Term("name", "a" * 1995)
    deep = "(" * MAX_DEPTH + "name:a" + ")" * MAX_DEPTH
    assert parse(deep) == Term("name", "a")


@pytest.mark.parametrize(
    ("q", "default", "ast"),
    [
        ("name:a name:b", "AND", And((Term("name", "a"), Term("name", "b")))),
        ("name:a name:b", "OR", Or((Term("name", "a"), Term("name", "b")))),
        (
            "name:a name:b OR name:c",
            "AND",
            Or((And((Term("name", "a"), Term("name", "b"))), Term("name", "c"))),
        ),
        ("name:a OR name:b", "AND", Or((Term("name", "a"), Term("name", "b")))),
        ("name:(a b)", "AND", And((Term("name", "a"), Term("name", "b")))),
    ],
)
def test_default_operator(q, default, ast):
    assert parse(q, default_operator=default) == ast


def test_default_operator_is_checked():
    with pytest.raises(ValueError):
        parse("a", default_operator="XOR")  # type: ignore[arg-type]


# --- normalise and typed values -------------------------------------------------------------


def test_normalise_lowercases_case_insensitive_fields_only():
    q = (
        'email:"Jane@Example.COM" AND name:JO* AND NOT nickname:(X OR Y) AND '
        "user_id:Auth0|AbC AND app_metadata.Plan:PRO AND given_name:[A TO M] AND blocked:true "
        "AND email.domain:Example.com AND username:Jane"
    )
    assert normalise(parse(q)) == And(
        (
            Term("email", "jane@example.com"),
            Term("name", "jo", P),
            Not(Or((Term("nickname", "x"), Term("nickname", "y")))),
            Term("user_id", "Auth0|AbC"),
            Term("app_metadata.Plan", "PRO"),
            Range("given_name", "a", "m"),
            Term("blocked", True),
            Term("email.domain", "example.com"),
            Term("username", "Jane"),
        )
    )


def test_normalise_keeps_open_bounds():
    assert normalise(parse("name:[* TO M}")) == Range("name", None, "m", True, False)


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [
        ("email_verified", "true", True),
        ("phone_verified", "False", False),
        ("logins_count", "42", 42),
        ("logins_count", "+7", 7),
        ("created_at", "2025-01-01", D2),
        ("last_login", "2025-01-01T01:00:00Z", D2 + 3600),
        ("last_login", "2025-01-01T02:00:00+01:00", D2 + 3600),
        ("updated_at", "2025-01-01T01:00", D2 + 3600),
        ("name", "Jane", "Jane"),
        ("app_metadata.n", "13", "13"),
    ],
)
def test_typed_value(field, raw, value):
    assert typed_value(field, raw) == value


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("blocked", "yes"),
        ("blocked", "1"),
        ("logins_count", "٣"),  # a non-ASCII digit
        ("logins_count", ""),
        ("created_at", "2025-W01-1"),
        ("created_at", "0000-01-01"),
        ("created_at", "2025-01-01T10:00:00+24:00"),
        ("created_at", "2025-01-01T25:00:00Z"),
    ],
)
def test_typed_value_refuses(field, raw):
    with pytest.raises(ValueError):
        typed_value(field, raw)


def test_field_types():
    assert field_type("email") is FieldType.STRING
    assert field_type("identities.isSocial") is FieldType.BOOLEAN
    assert field_type("logins_count") is FieldType.INTEGER
    assert field_type("last_login") is FieldType.DATE
    assert field_type("user_metadata.a.b") is FieldType.METADATA
    with pytest.raises(KeyError):
        field_type("app_metadata")


# --- no input escapes as anything but SearchSyntaxError --------------------------------------

TOKENS = [
    "name", "email", "user_metadata.a", "app_metadata.b", "logins_count", "created_at",
    "blocked", "_exists_", "email.domain", ":", " ", "(", ")", "[", "]", "{", "}", '"', "\\",
    "*", "?", "~", "^", "-", "+", "!", "AND", "OR", "NOT", "TO", "and", "a", "abc", "2024-01-01",
    "2025-01-01T10:00:00Z", "5", "true", "é", "\x00", "\u2028", "\ud800", "%7C", "|", "'", ".",
]  # fmt: skip


def _check(q: str) -> None:
    try:
        node = parse(q)
    except SearchSyntaxError as err:
        assert 0 <= err.position <= len(q)
        assert err.message.startswith(f"Query parse error at position {err.position}: ")
        return
    _walk(normalise(node))


def _walk(node: Node) -> None:
    """Every AST node is well-formed: whitelisted fields, no user_metadata wildcards/ranges."""
    match node:
        case Term(field=f, kind=k):
            field_type(f)
            assert k is TermKind.EXACT or not f.startswith("user_metadata.")
        case Range(field=f):
            field_type(f)
            assert not f.startswith("user_metadata.")
        case Exists(field=f):
            assert f in ("app_metadata", "user_metadata") or field_type(f)
        case And(children=cs) | Or(children=cs):
            assert len(cs) >= 2
            for c in cs:
                _walk(c)
        case Not(child=c):
            _walk(c)
        case _:
            raise AssertionError(node)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_token_soup_never_escapes(q):
    _check(q)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=200))
def test_random_text_never_escapes(q):
    _check(q)


def test_big_random_loop_never_escapes():
    rng = random.Random(20240501)
    for _ in range(3000):
        _check("".join(rng.choice(TOKENS) for _ in range(rng.randrange(40))))
    for _ in range(50):  # long and deep inputs hit the limits, not the recursion limit
        _check("".join(rng.choice("(()NOT ") for _ in range(rng.randrange(2500))))


# --- rendered ASTs parse back to themselves ---------------------------------------------------

_STRING_FIELDS = ["email", "name", "nickname", "user_id", "app_metadata.plan", "user_metadata.x"]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _render(node: Node) -> str:
    match node:
        case Term(field=f, value=str(v)):
            return f"{f}:{_quote(v)}"
        case And(children=cs):
            return "(" + " AND ".join(_render(c) for c in cs) + ")"
        case Or(children=cs):
            return "(" + " OR ".join(_render(c) for c in cs) + ")"
        case Not(child=c):
            return f"NOT {_render(c)}"
    raise AssertionError(node)


_terms = st.builds(Term, st.sampled_from(_STRING_FIELDS), st.text(max_size=12))
_nodes = st.recursive(
    _terms,
    lambda kids: st.one_of(
        st.lists(kids, min_size=2, max_size=3).map(lambda cs: And(tuple(cs))),
        st.lists(kids, min_size=2, max_size=3).map(lambda cs: Or(tuple(cs))),
        kids.map(Not),
    ),
    max_leaves=8,
)


def _flat(node: Node) -> Node:
    """The parser flattens nested And/Or of one kind; do the same to the generated tree."""
    match node:
        case And(children=cs) | Or(children=cs):
            kind = type(node)
            out: list[Node] = []
            for c in map(_flat, cs):
                out.extend(c.children if isinstance(c, kind) else (c,))
            return kind(tuple(out))
        case Not(child=c):
            return Not(_flat(c))
    return node


@settings(max_examples=200, deadline=None, database=None)
@given(_nodes)
def test_rendered_ast_round_trips(node):
    q = _render(node)
    if len(q) <= MAX_QUERY_LENGTH:
        assert parse(q) == _flat(node)
