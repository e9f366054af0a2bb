"""Log search as SQL (storage/log_search.py) on SQLite and PostgreSQL: a fixed set of events, a
table of queries and the exact events each matches; order, paging, the capped total."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.search_lexer import SearchSyntaxError
from keystead.storage import log_search
from keystead.storage.log_search import get_log, logs_after, search_logs
from keystead.storage.models import LogEventRow

DB = "Username-Password-Authentication"


def at(moment: str) -> float:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC).timestamp()


# fmt: off
EVENTS: dict[str, dict[str, Any]] = {
    "e1": dict(date=at("2024-01-15T10:00:00"), type="s", user_id="auth0|001", client_id="cA",
               data=dict(description="Success Login", ip="203.0.113.7", connection=DB,
                         user_name="Jane.Doe@example.com", client_name="Portal")),
    "e2": dict(date=at("2024-01-15T23:59:59"), type="fp", user_id="auth0|001", client_id="cA",
               data=dict(description="Wrong email or password.", ip="203.0.113.8",
                         connection=DB, user_name="jane.doe@example.com")),
    "e3": dict(date=at("2024-01-16T00:00:00"), type="seccft", client_id="cB",
               data=dict(description="Success Exchange", audience="https://api/",
                         scope=["read:a"], client_name="Backend")),
    "e4": dict(date=at("2024-02-01T08:30:00"), type="fu", client_id="cA",
               data=dict(description="Wrong email or password.", ip="198.51.100.1",
                         connection="google-oauth2", user_name="nobody@acme.io")),
    "e5": dict(date=at("2024-03-01T00:00:00"), type="sapi", user_id="google-oauth2|5",
               client_id=None, data=dict(description='Update a "user"', ip="2001:db8::1")),
}
# fmt: on
ALL = set(EVENTS)

CASES: list[tuple[str, set[str]]] = [
    # columns: exact and case-sensitive
    ("type:s", {"e1"}),
    ("type:S", set()),
    ("type:f*", {"e2", "e4"}),
    ('user_id:"auth0|001"', {"e1", "e2"}),
    ("user_id:auth0*", {"e1", "e2"}),
    ("client_id:cA", {"e1", "e2", "e4"}),
    ("client_id:ca", set()),
    # JSON fields
    ("ip:203.0.113.7", {"e1"}),
    ("ip:203.0.113.*", {"e1", "e2"}),
    ('ip:"2001:db8::1"', {"e5"}),
    (f'connection:"{DB}"', {"e1", "e2"}),
    ("connection:GOOGLE*", {"e4"}),
    ("user_name:jane.doe@example.com", {"e1", "e2"}),  # without case
    ("user_name:JANE*", {"e1", "e2"}),
    ('description:"wrong email or password."', {"e2", "e4"}),
    ("description:success*", {"e1", "e3"}),
    ('description:"Update a \\"user\\""', {"e5"}),
    ('audience:"https://api/"', {"e3"}),
    ("client_name:portal", {"e1"}),
    ("hostname:x", set()),
    # bare terms: prefixes of client_name, connection, user_name without case
    ("back", {"e3"}),
    ("JANE", {"e1", "e2"}),
    ('"portal"', {"e1"}),
    ('"port"', set()),
    # dates: a whole UTC day, an instant, ranges with open and exclusive ends
    ("date:2024-01-15", {"e1", "e2"}),
    ("date:2024-01-16", {"e3"}),
    ('date:"2024-01-15T10:00:00Z"', {"e1"}),
    ("date:[2024-01-15 TO 2024-02-01]", {"e1", "e2", "e3", "e4"}),
    ("date:{2024-01-15 TO 2024-02-01}", {"e3"}),
    ("date:[2024-02-01 TO *]", {"e4", "e5"}),
    ("date:[* TO 2024-01-15T23:59:59Z}", {"e1"}),
    ("date:[* TO *]", ALL),
    # boolean structure; NOT also finds events without the field
    ("type:s OR type:fu", {"e1", "e4"}),
    ("client_id:cA type:fp", {"e2"}),
    ("client_id:cA AND NOT type:fp", {"e1", "e4"}),
    ("NOT ip:203.0.113.7", ALL - {"e1"}),
    ("NOT user_id:auth0*", {"e3", "e4", "e5"}),
    ("NOT client_id:cA", {"e3", "e5"}),
    ("(type:s OR type:sapi) AND date:[2024-02-01 TO *]", {"e5"}),
    ("type:(s OR fp)", {"e1", "e2"}),
    ("_exists_:user_name", {"e1", "e2", "e4"}),
    ("NOT _exists_:client_id", {"e5"}),
    ("ip:*", {"e1", "e2", "e4", "e5"}),
]


@pytest.fixture
async def logs(session: AsyncSession) -> dict[str, str]:
    """The events, stored with time-ordered ids; name → log_id."""
    ids = {}
    for n, (name, fields) in enumerate(EVENTS.items()):
        log_id = f"{int(fields['date'] * 1000):013d}{n:016x}"
        session.add(LogEventRow(log_id=log_id, **fields))
        ids[name] = log_id
    await session.flush()
    return ids


@pytest.mark.parametrize(("q", "expected"), CASES)
async def test_search_matches(
    session: AsyncSession, logs: dict[str, str], q: str, expected: set[str]
) -> None:
    events, total = await search_logs(session, q, limit=100)
    by_id = {v: k for k, v in logs.items()}
    assert {by_id[e.log_id] for e in events} == expected
    assert total == len(expected)


async def test_order_paging_and_user_filter(session: AsyncSession, logs: dict[str, str]) -> None:
    newest, total = await search_logs(session, "", limit=2)
    assert [e.log_id for e in newest] == [logs["e5"], logs["e4"]] and total == len(EVENTS)
    oldest, _ = await search_logs(session, None, newest_first=False, offset=1, limit=2)
    assert [e.log_id for e in oldest] == [logs["e2"], logs["e3"]]
    none, total = await search_logs(session, "type:s", limit=0)
    assert none == [] and total == 1
    mine, total = await search_logs(session, None, user_id="auth0|001", limit=10)
    assert [e.log_id for e in mine] == [logs["e2"], logs["e1"]] and total == 2
    event = await get_log(session, logs["e3"])
    assert event is not None and event.description == "Success Exchange"
    assert event.data["scope"] == ["read:a"] and "description" not in event.data
    assert await get_log(session, "nope") is None
    after = await logs_after(session, logs["e2"], 2)
    assert [e.log_id for e in after] == [logs["e3"], logs["e4"]]
    assert [e.log_id for e in await logs_after(session, None, 1)] == [logs["e1"]]


async def test_total_stops_at_the_cap(
    session: AsyncSession, logs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_search, "TOTAL_CAP", 3)
    events, total = await search_logs(session, "", limit=10)
    assert len(events) == len(EVENTS) and total == 3


async def test_bad_query_is_a_syntax_error(session: AsyncSession) -> None:
    with pytest.raises(SearchSyntaxError) as caught:
        await search_logs(session, "type:s AND password:x")
    assert caught.value.position == 11
