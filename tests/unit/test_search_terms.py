"""Search terms (core/search_terms.py): a user's (path, value) pairs and how values are spelled."""

from __future__ import annotations

from typing import Any

import pytest

from keystead.core.search_terms import (
    MAX_LEAVES,
    MAX_VALUE_LENGTH,
    encode,
    encode_number,
    spellings,
    user_terms,
)

PRIMARY = {"connection": "Username-Password-Authentication", "provider": "auth0", "user_id": "1"}
PRIMARY_TERMS = {
    ("identities.connection", "sUsername-Password-Authentication"),
    ("identities.provider", "sauth0"),
    ("identities.user_id", "s1"),
}


def terms(linked: tuple[dict[str, Any], ...] = (), **kw: Any) -> set[tuple[str, str]]:
    args: dict[str, Any] = {"email": None, "app_metadata": {}, "user_metadata": {}}
    return user_terms(**args | kw, identities=[PRIMARY, *linked]) - PRIMARY_TERMS


def n(x: float) -> str:
    return str(encode_number(x))


@pytest.mark.parametrize(
    ("app_metadata", "expected"),
    [
        ({"plan": "pro"}, {("app_metadata.plan", "spro")}),
        ({"n": 5, "ok": True, "no": False}, {("app_metadata.n", n(5)), ("app_metadata.ok", "t"),
                                             ("app_metadata.no", "f")}),
        # arrays are transparent, one level deep, objects inside them too
        ({"roles": ["admin", "dev", "admin"]}, {("app_metadata.roles", "sadmin"),
                                                ("app_metadata.roles", "sdev")}),
        ({"a": [{"c": "x"}]}, {("app_metadata.a", "o"), ("app_metadata.a.c", "sx")}),
        ({"deep": [[1]]}, set()),
        # a non-empty object exists, an empty one does not; null is kept (and never matched)
        ({"org": {"id": "o1"}}, {("app_metadata.org", "o"), ("app_metadata.org.id", "so1")}),
        ({"e": {}, "l": [], "z": None}, {("app_metadata.z", "z")}),
        # keys a query cannot name are left out
        ({"a b": 1, "ok-key_2": 1}, {("app_metadata.ok-key_2", n(1))}),
        ({"long": "x" * (MAX_VALUE_LENGTH + 1)}, set()),
        ({"edge": "x" * MAX_VALUE_LENGTH}, {("app_metadata.edge", "s" + "x" * MAX_VALUE_LENGTH)}),
    ],
)  # fmt: skip
def test_metadata_leaves(app_metadata: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert terms(app_metadata=app_metadata) == expected


def test_depth_is_capped_at_the_query_path_limit() -> None:
    doc: dict[str, Any] = {"v": 1}
    for key in "jihgfedcba":
        doc = {key: doc}
    paths = {p for p, _ in terms(user_metadata=doc)}
    assert "user_metadata.a.b.c.d.e.f.g.h.i.j" in paths  # 10 segments: searchable
    assert not any(p.endswith(".v") for p in paths)  # the 11th is not


def test_leaves_per_document_are_capped_in_document_order() -> None:
    doc = {f"k{i}": i for i in range(MAX_LEAVES + 50)}
    found = terms(user_metadata=doc)
    assert len(found) == MAX_LEAVES
    assert ("user_metadata.k0", n(0)) in found
    assert ("user_metadata.k" + str(MAX_LEAVES), n(MAX_LEAVES)) not in found


def test_email_domain_and_identities() -> None:
    linked = {"connection": "github", "provider": "github", "user_id": 987, "isSocial": True}
    assert terms(email="jane@Example.com", linked=(linked,)) == {
        ("email.domain", "sexample.com"),
        ("identities.connection", "sgithub"),
        ("identities.provider", "sgithub"),
        ("identities.user_id", "s987"),
        ("identities.isSocial", "t"),
    }
    assert terms(email="no-at-sign") == set()


def test_numbers_sort_as_numbers() -> None:
    values = [-1e300, -2.5, -1, -0.0, 0, 0.5, 1, 13, 1e10, 2**60]
    encoded = [encode_number(v) for v in values]
    assert encoded == sorted(encoded)
    assert encode_number(0.0) == encode_number(-0.0) == encode(0)
    assert encode_number(13) == encode_number(13.0)
    assert encode(10**400) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pro", ["spro"]),
        ("13", ["s13", n(13)]),
        ("13.0", ["s13.0", n(13)]),
        ("true", ["strue", "t"]),
        ("TRUE", ["sTRUE"]),
        (True, ["t"]),
        (5, [n(5)]),
        ("x" * (MAX_VALUE_LENGTH + 1), []),
    ],
)
def test_spellings_of_a_query_value(value: Any, expected: list[str]) -> None:
    assert spellings(value) == expected
