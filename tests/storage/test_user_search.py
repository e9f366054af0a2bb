"""User search as SQL (storage/user_search.py) on SQLite and PostgreSQL: a fixed set of users,
a table of queries and the exact users each matches; sorting, paging, totals, index use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.search import SearchSyntaxError, normalise, parse
from keystead.errors import BadRequest
from keystead.storage import user_search
from keystead.storage.models import UserRow
from keystead.storage.user_search import TOTAL_CAP, search_users
from keystead.storage.user_search_sql import SearchSql

DB = "Username-Password-Authentication"


def at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


# fmt: off
USERS: dict[str, dict[str, Any]] = {
    "u1": dict(user_id="auth0|001", connection=DB, email="jane.doe@example.com",
               email_verified=True, name="Jane Doe", given_name="Jane", family_name="Doe",
               nickname="jane", username="janed", last_ip="10.0.0.1",
               app_metadata={"plan": "pro", "roles": ["admin", "dev"], "n": 5},
               user_metadata={"display": {"fontSize": 13}, "addresses": [{"cities": "Paris"}]},
               created_at=at("2024-01-15T10:00:00"), logins_count=10,
               last_login=at("2024-06-01T00:00:00")),
    "u2": dict(user_id="auth0|002", connection=DB, email="john.smith@example.com",
               name="John Smith", given_name="John", family_name="Smith", nickname="johnny",
               app_metadata={"plan": "free"}, user_metadata={"display": {"fontSize": "13"}},
               created_at=at("2024-02-01T08:00:00"), logins_count=0),
    "u3": dict(user_id="google-oauth2|103", connection="google-oauth2", email="joanna@acme.io",
               name="Joanna Usa", nickname="Jo", blocked=True,
               app_metadata={"plan": "pro", "tags": []}, user_metadata={"nickname": None},
               created_at=at("2024-12-31T23:00:00"), logins_count=100),
    "u4": dict(user_id="auth0|004", connection=DB, username="bob_builder",
               phone_number="+15551234",
               linked_identities=[{"connection": "github", "provider": "github",
                                   "user_id": "987", "isSocial": True}],
               created_at=at("2025-01-01T00:00:00"), logins_count=5),
    "u5": dict(user_id="email|005", connection="email", email="percent%user@weird_domain.org",
               name="Zed", app_metadata={"plan": "enterprise", "org": {"id": "o1"}},
               user_metadata={"tags": ["a", "b"], "empty": {}},
               created_at=at("2025-03-01T00:00:00"), logins_count=50,
               last_login=at("2025-03-02T00:00:00")),
}
# fmt: on
ALL = set(USERS)
BY_ID = {fields["user_id"]: name for name, fields in USERS.items()}

# fmt: off
CASES: list[tuple[str, set[str]]] = [
    # e-mail: stored lower-case, compared case-insensitively
    ('email:"jane.doe@example.com"', {"u1"}),
    ('email:"JANE.DOE@EXAMPLE.COM"', {"u1"}),
    ("email:jo*", {"u2", "u3"}),
    ("email:*example.com", {"u1", "u2"}),
    ("email:*%user*", {"u5"}),
    ('email.domain:"example.com"', {"u1", "u2"}),
    ("email.domain:ACME.io", {"u3"}),
    ('email.domain:"weird_domain.org"', {"u5"}),
    ('email.domain:"ample.com"', set()),
    ("email.domain:exam*", {"u1", "u2"}),
    # case-insensitive names, exact, prefix, suffix, contains, ranges
    ('name:"jane doe"', {"u1"}),
    ("name:jo*", {"u2", "u3"}),
    ("name:J*", {"u1", "u2", "u3"}),
    ("name:*USA", {"u3"}),
    ("name:*oan*", {"u3"}),
    ("given_name:JOHN", {"u2"}),
    ("nickname:jo", {"u3"}),
    ("family_name:[a TO e]", {"u1"}),
    ('name:("jane doe" OR "john smith")', {"u1", "u2"}),
    # case-sensitive strings
    ("username:bob_builder", {"u4"}),
    ("username:bob*", {"u4"}),
    ("username:BOB_builder", set()),
    ("username:*BUILDER", set()),
    ("username:*uild*", {"u4"}),
    ('phone_number:"+15551234"', {"u4"}),
    ("last_ip:10.0.*", {"u1"}),
    ('user_id:"auth0|001"', {"u1"}),
    ("user_id:auth0|00*", {"u1", "u2", "u4"}),
    ("picture:x", set()),
    ("organization_id:org_1", set()),
    ("NOT organization_id:org_1", ALL),
    # identities: the primary one from user_id/connection, linked ones from JSON
    ('identities.connection:"github"', {"u4"}),
    ('identities.connection:"google-oauth2"', {"u3"}),
    (f'identities.connection:"{DB}"', {"u1", "u2", "u4"}),
    ("identities.connection:git*", {"u4"}),
    ("identities.provider:github", {"u4"}),
    ("identities.provider:auth0", {"u1", "u2", "u4"}),
    ("identities.provider:goog*", {"u3"}),
    ("identities.user_id:987", {"u4"}),
    ('identities.user_id:"001"', {"u1"}),
    ("identities.user_id:103", {"u3"}),
    ("identities.isSocial:true", {"u3", "u4"}),
    ("identities.isSocial:false", {"u1", "u2", "u4", "u5"}),
    # metadata: arrays are transparent, "13" matches 13, null/{}/[] do not exist
    ('app_metadata.plan:"pro"', {"u1", "u3"}),
    ("app_metadata.roles:admin", {"u1"}),
    ("app_metadata.n:5", {"u1"}),
    ("app_metadata.n:[4 TO 6]", {"u1"}),
    ("app_metadata.n:{5 TO 6]", set()),
    ("app_metadata.plan:pr*", {"u1", "u3"}),
    ("app_metadata.plan:*prise", {"u5"}),
    ("app_metadata.plan:*terp*", {"u5"}),
    ("app_metadata.org.id:o1", {"u5"}),
    ("user_metadata.display.fontSize:13", {"u1", "u2"}),
    ('user_metadata.addresses.cities:"Paris"', {"u1"}),
    ('user_metadata.addresses.cities:"paris"', set()),
    ("user_metadata.tags:b", {"u5"}),
    ("_exists_:user_metadata.nickname", set()),
    ("_exists_:user_metadata.empty", set()),
    ("_exists_:app_metadata.tags", set()),
    ("_exists_:app_metadata.roles", {"u1"}),
    ("_exists_:app_metadata.org", {"u5"}),
    ("_exists_:user_metadata.display", {"u1", "u2"}),
    ("_exists_:app_metadata", {"u1", "u2", "u3", "u5"}),
    ("NOT _exists_:app_metadata", {"u4"}),
    ("NOT app_metadata.plan:pro", {"u2", "u4", "u5"}),
    ("NOT identities.connection:github", ALL - {"u4"}),
    ("NOT name:jo* AND NOT family_name:[a TO e]", {"u4", "u5"}),
    # numbers, dates, booleans, existence
    ("logins_count:[10 TO 100}", {"u1", "u5"}),
    ("logins_count:5", {"u4"}),
    ("NOT _exists_:logins_count", {"u2"}),
    ("created_at:[2025-01-01 TO *]", {"u4", "u5"}),
    ("created_at:2024-12-31", {"u3"}),
    ("created_at:{* TO 2024-02-01]", {"u1", "u2"}),
    ("last_login:[* TO 2024-12-31]", {"u1"}),
    ("_exists_:last_login", {"u1", "u5"}),
    ("_exists_:email", {"u1", "u2", "u3", "u5"}),
    ("blocked:true", {"u3"}),
    ("blocked:false", ALL - {"u3"}),
    ("email_verified:true", {"u1"}),
    # boolean structure and bare terms
    ('NOT name:"jane doe"', ALL - {"u1"}),
    ("jane", {"u1"}),
    ("jo*", {"u2", "u3"}),
    ("app_metadata.plan:pro AND logins_count:[50 TO *]", {"u3"}),
    ("app_metadata.plan:pro OR app_metadata.plan:enterprise", {"u1", "u3", "u5"}),
    ("app_metadata.plan:pro AND NOT blocked:true", {"u1"}),
    ("(name:jo* OR username:bob*) AND NOT email.domain:acme.io", {"u2", "u4"}),
]
# fmt: on


@pytest.fixture
async def users(session: AsyncSession) -> AsyncSession:
    for fields in USERS.values():
        session.add(UserRow(updated_at=fields["created_at"], **fields))
    await session.flush()
    return session


async def found(session: AsyncSession, q: str | None, **kw: Any) -> list[str]:
    options: dict[str, Any] = {"sort": None, "offset": 0, "limit": 50, "include_total": False}
    users, _ = await search_users(session, q, **(options | kw))
    return [BY_ID[u.user_id] for u in users]


@pytest.mark.parametrize(("q", "expected"), CASES, ids=[q for q, _ in CASES])
async def test_query_matches_exactly(users: AsyncSession, q: str, expected: set[str]) -> None:
    assert set(await found(users, q)) == expected


async def test_no_query_lists_everyone_oldest_first(users: AsyncSession) -> None:
    assert await found(users, None) == ["u1", "u2", "u3", "u4", "u5"]
    assert await found(users, "  ") == ["u1", "u2", "u3", "u4", "u5"]


@pytest.fixture(params=["page only", "with total", "many matches"])
def totals(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """include_totals or not; "many matches" (a cap of 0) sends SQLite down the index walk
    it takes past SORT_CAP matches instead of sorting the few it found."""
    if request.param == "many matches":
        monkeypatch.setattr(user_search, "SORT_CAP", 0)
    return request.param != "page only"


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created_at:-1", ["u5", "u4", "u3", "u2", "u1"]),
        (("logins_count", False), ["u2", "u4", "u1", "u5", "u3"]),
        # case-insensitive fields sort by their lower-cased value; nulls last both ways
        ("name:1", ["u1", "u3", "u2", "u5", "u4"]),
        ("name:-1", ["u5", "u2", "u3", "u1", "u4"]),
        ("email:1", ["u1", "u3", "u2", "u5", "u4"]),
        # two without the field, ordered by user_id in the sort's direction
        ("last_login:-1", ["u5", "u1", "u3", "u4", "u2"]),
        ("last_login:1", ["u1", "u5", "u2", "u4", "u3"]),
        ("user_id:1", ["u1", "u2", "u4", "u5", "u3"]),
    ],
)
async def test_sort(users: AsyncSession, totals: bool, sort: Any, expected: list[str]) -> None:
    assert await found(users, None, sort=sort, include_total=totals) == expected


@pytest.mark.parametrize(
    ("offset", "limit", "expected"),
    [(0, 2, ["u1", "u3"]), (3, 2, ["u5", "u4"]), (4, 5, ["u4"]), (5, 5, []), (2, 0, [])],
)
async def test_pages_across_the_nulls(
    users: AsyncSession, totals: bool, offset: int, limit: int, expected: list[str]
) -> None:
    page = await found(users, None, sort="name:1", offset=offset, limit=limit, include_total=totals)
    assert page == expected


async def test_ties_are_broken_by_user_id(users: AsyncSession) -> None:
    assert await found(users, "app_metadata.plan:pro", sort="blocked:-1") == ["u3", "u1"]
    assert await found(users, "email.domain:example.com", sort="blocked:1") == ["u1", "u2"]


async def test_total_counts_matches_not_the_page(users: AsyncSession) -> None:
    options: dict[str, Any] = {"sort": None, "offset": 1, "limit": 1, "include_total": True}
    users_page, total = await search_users(users, "app_metadata.plan:pro", **options)
    assert [u.user_id for u in users_page] == ["google-oauth2|103"] and total == 2
    assert (await search_users(users, None, **options | {"limit": 0}))[1] == 5
    assert (await search_users(users, None, **options | {"include_total": False}))[1] is None


async def test_total_is_capped(session: AsyncSession) -> None:
    await session.execute(
        UserRow.__table__.insert(),
        [
            {"user_id": f"auth0|{i:06}", "connection": DB, "email_verified": False,
             "phone_verified": False, "user_metadata": {}, "app_metadata": {},
             "linked_identities": [], "blocked": False, "created_at": float(i),
             "updated_at": float(i), "logins_count": 0}
            for i in range(TOTAL_CAP + 5)
        ],
    )  # fmt: skip
    _, total = await search_users(
        session, "user_id:auth0*", sort=None, offset=0, limit=1, include_total=True
    )
    assert total == TOTAL_CAP


async def test_returns_whole_users(users: AsyncSession) -> None:
    [user], _ = await search_users(
        users, "identities.connection:github", sort=None, offset=0, limit=5, include_total=False
    )
    assert user.username == "bob_builder"
    assert [(i.connection, i.user_id) for i in user.identities] == [(DB, "004"), ("github", "987")]


@pytest.mark.parametrize(
    ("q", "position"), [("name:", 5), ("email:(a OR", 11), ("foo:bar", 0), ("name:*ab", 5)]
)
async def test_a_bad_query_is_a_syntax_error(users: AsyncSession, q: str, position: int) -> None:
    with pytest.raises(SearchSyntaxError) as caught:
        await search_users(users, q, sort=None, offset=0, limit=5, include_total=True)
    assert caught.value.position == position


@pytest.mark.parametrize("sort", ["password_hash:1", "name:2", "name"])
async def test_a_bad_sort_is_refused(users: AsyncSession, sort: str) -> None:
    with pytest.raises(BadRequest):
        await search_users(users, None, sort=sort, offset=0, limit=5, include_total=False)


# Index use: every statement of a search reaches its index and none reads `users` whole
# (PostgreSQL with sequential scans made unattractive, as on a large table; SQLite's planner
# prefers indexes on its own). bench/ shows the plans at 10^6 users.
TERMS = "ix_user_search_terms_path_value"
INDEXED = [
    ('email:"a@b.c"', "ix_users_email", "ix_users_email"),
    ("email:jan*", "ix_users_email_pattern", "ix_users_email"),
    ("name:jan*", "ix_users_name_lower", "ix_users_name_lower"),
    ('given_name:"Jane"', "ix_users_given_name_lower", "ix_users_given_name_lower"),
    ("user_id:auth0*", "ix_users_user_id_pattern", "sqlite_autoindex_users_1"),
    ("identities.provider:github", TERMS, TERMS),
    ("identities.isSocial:true", "ix_users_user_id_pattern", "sqlite_autoindex_users_1"),
    ("identities.isSocial:false", "ix_users_user_id_pattern", "sqlite_autoindex_users_1"),
    ("email.domain:example.com", TERMS, TERMS),
    ("email.domain:exam*", TERMS, TERMS),
    ("identities.user_id:987", TERMS, TERMS),
    ('app_metadata.plan:"pro"', TERMS, TERMS),
    ("app_metadata.plan:pr*", TERMS, TERMS),
    ("app_metadata.n:[4 TO 6]", TERMS, TERMS),
    ("_exists_:app_metadata.roles", TERMS, TERMS),
    ("user_metadata.display.fontSize:13", TERMS, TERMS),
    ("app_metadata.tenant:t1 OR app_metadata.tenant:t2", TERMS, TERMS),
    ('app_metadata.plan:"pro" AND created_at:[2024-01-01 TO *]', TERMS, TERMS),
    ("identities.connection:github", TERMS, TERMS),
    ("blocked:true", "ix_users_blocked", "ix_users_blocked"),
    ("logins_count:[5 TO 9]", "ix_users_logins_count", "ix_users_logins_count"),
    ("created_at:[2024-01-01 TO 2024-02-01]", "ix_users_created_at", "ix_users_created_at"),
]


@pytest.mark.parametrize(("q", "pg_index", "sqlite_index"), INDEXED, ids=[c[0] for c in INDEXED])
async def test_query_uses_its_index(
    users: AsyncSession, q: str, pg_index: str, sqlite_index: str
) -> None:
    pg = users.bind.dialect.name == "postgresql"
    if pg:
        await users.execute(text("SET LOCAL enable_seqscan = off"))
    plans = await search_plans(users, q)
    assert not [p for p in plans if reads_users_whole(p, pg=pg)], plans
    # On 5 rows a walk of the sort index may beat the filter's index: then the filter alone
    # must reach it (the bounded count runs it so).
    alone = await explain(users, select(UserRow.user_id).where(SearchSql(pg).where(parse_q(q))))
    assert (pg_index if pg else sqlite_index) in "\n".join([*plans, alone]), plans


async def search_plans(session: AsyncSession, q: str) -> list[str]:
    """The plan of every statement search_users runs for `q`."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "set_config" not in statement:
            statements.append((statement, parameters))

    engine = session.bind.engine if hasattr(session.bind, "engine") else session.bind
    sync_engine = engine.sync_engine  # type: ignore[union-attr]
    event.listen(sync_engine, "before_cursor_execute", capture)
    try:
        await search_users(session, q, sort=None, offset=0, limit=5, include_total=True)
    finally:
        event.remove(sync_engine, "before_cursor_execute", capture)
    conn = await session.connection()
    pg = conn.dialect.name == "postgresql"
    plans = []
    for statement, parameters in statements:
        explain = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
        rows = (await conn.exec_driver_sql(explain + statement, parameters)).all()
        plans.append("\n".join(str(r[0] if pg else r[-1]) for r in rows))
    return plans


async def explain(session: AsyncSession, stmt: Any) -> str:
    conn = await session.connection()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    pg = conn.dialect.name == "postgresql"
    rows = (
        await conn.exec_driver_sql(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + str(compiled))
    ).all()
    return "\n".join(str(r[0] if pg else r[-1]) for r in rows)


def parse_q(q: str) -> Any:
    return normalise(parse(q))


def reads_users_whole(plan: str, *, pg: bool) -> bool:
    if pg:
        return "Seq Scan on users" in plan
    return any(
        line.strip().startswith("SCAN users") and "INDEX" not in line for line in plan.splitlines()
    )
