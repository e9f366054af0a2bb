"""/api/v2/logs, /logs/{id}, /users/{id}/logs (contract §10.7, §9.2, §8.4): offset and checkpoint
paging, search, the 1000-record window, and Auth0's event shape."""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_asyncio
from auth0.management import AsyncAuth0

from keystead.core.clock import FixedClock
from keystead.storage.repositories.logs import SqlLogs
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    check_error,
    check_oas,
    m2m,
    make_client,
    mint,
    module_app,
    module_http,
    state_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

ALICE = "auth0|aaaaaaaaaaaaaaaaaaaaaaaa"
BOB = "auth0|bbbbbbbbbbbbbbbbbbbbbbbb"
TYPES = ("s", "f", "seccft")
COUNT = 30
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def events(app: Any) -> list[str]:
    """COUNT events, one a second, oldest first; their log_ids."""
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")
    clock = FixedClock(1_700_000_000.0)
    ids = []
    async with state_of(app).transaction() as session:
        logs = SqlLogs(session, clock)
        for i in range(COUNT):
            event = await logs.record(
                TYPES[i % 3],
                user_id=(ALICE, BOB)[i % 2],
                client_id=f"client{i % 2}",
                ip="203.0.113.7",
                user_agent="test/1.0",
                scope=["openid", "profile"],
                details={"n": i},
            )
            ids.append(event.log_id)
            clock.advance(1)
    return ids


def reader(app: Any, scope: str = "read:logs") -> dict[str, str]:
    return m2m(app, scope)


async def test_list_newest_first_with_auth0_shape(http: Any, app: Any, events: list[str]) -> None:
    r = await http.get("/api/v2/logs", headers=reader(app))
    listed = check_oas(r, "GET", "/logs")
    assert [e["log_id"] for e in listed] == events[::-1]
    newest = listed[0]
    assert ISO_MS.match(newest["date"]) and newest["date"] == "2023-11-14T22:13:49.000Z"
    assert newest == {
        "_id": events[-1], "log_id": events[-1], "date": newest["date"], "type": "seccft",
        "description": "Success Exchange (Client Credentials for Access Token)",
        "user_id": BOB, "client_id": "client1", "ip": "203.0.113.7", "user_agent": "test/1.0",
        "scope": "openid profile", "details": {"n": COUNT - 1},
    }  # fmt: skip


async def test_offset_paging_totals_sort_and_fields(http: Any, app: Any, events: list[str]) -> None:
    r = await http.get(
        "/api/v2/logs",
        params={"include_totals": "true", "page": "1", "per_page": "10", "sort": "date:1"},
        headers=reader(app, "read:logs_users"),
    )
    paged = check_oas(r, "GET", "/logs")
    assert set(paged) == {"start", "limit", "length", "total", "logs"}
    assert (paged["start"], paged["limit"], paged["length"], paged["total"]) == (10, 10, 10, COUNT)
    assert [e["log_id"] for e in paged["logs"]] == events[10:20]
    r = await http.get(
        "/api/v2/logs", params={"fields": "log_id,type", "per_page": "2"}, headers=reader(app)
    )
    assert check_oas(r, "GET", "/logs") == [
        {"log_id": events[-1], "type": "seccft"}, {"log_id": events[-2], "type": "f"}
    ]  # fmt: skip
    r = await http.get(
        "/api/v2/logs", params={"page": "10", "per_page": "100"}, headers=reader(app)
    )
    check_error(
        r, 400,
        "You can only page through the first 1000 records. "
        "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.",
        "invalid_query_string",
    )  # fmt: skip
    for params in ({"sort": "type:1"}, {"per_page": "101"}, {"sort": "date"}):
        r = await http.get("/api/v2/logs", params=params, headers=reader(app))
        assert r.status_code == 400, params


async def test_search(http: Any, app: Any, events: list[str]) -> None:
    r = await http.get("/api/v2/logs", params={"q": "type:f"}, headers=reader(app))
    assert {e["type"] for e in check_oas(r, "GET", "/logs")} == {"f"}
    # auth0-python v6 sends `search`, not `q` (§13.2).
    r = await http.get(
        "/api/v2/logs",
        params={"search": f'user_id:"{ALICE}" AND type:s', "include_totals": "true"},
        headers=reader(app),
    )
    found = check_oas(r, "GET", "/logs")
    assert found["total"] == 5 and {(e["user_id"], e["type"]) for e in found["logs"]} == {
        (ALICE, "s")
    }
    # The full query language is tested in test_management_log_search.py.
    r = await http.get("/api/v2/logs", params={"q": "type:f OR type:s"}, headers=reader(app))
    assert {e["type"] for e in check_oas(r, "GET", "/logs")} == {"f", "s"}
    r = await http.get("/api/v2/logs", params={"q": 'user_id:"open'}, headers=reader(app))
    check_error(
        r, 400, "Query parse error at position 8: unterminated quoted phrase",
        "invalid_query_string",
    )  # fmt: skip


async def test_checkpoint_walks_every_event_oldest_first(
    http: Any, app: Any, events: list[str]
) -> None:
    seen: list[str] = []
    params: dict[str, str] = {"take": "7", "include_totals": "true", "q": "type:f"}  # ignored
    for _ in range(10):
        batch = check_oas(
            await http.get("/api/v2/logs", params=params, headers=reader(app)), "GET", "/logs"
        )
        assert isinstance(batch, list)  # §8.4: logs checkpoint answers a bare array
        if not batch:
            break
        seen += [e["log_id"] for e in batch]
        params = {"take": "7", "from": batch[-1]["log_id"]}
    assert seen == events
    r = await http.get("/api/v2/logs", params={"take": "101"}, headers=reader(app))
    assert r.status_code == 400


async def test_get_one(http: Any, app: Any, events: list[str]) -> None:
    r = await http.get(f"/api/v2/logs/{events[0]}", headers=reader(app))
    event = check_oas(r, "GET", "/logs/{id}")
    assert event["log_id"] == events[0] and event["type"] == "s"
    r = await http.get("/api/v2/logs/0000000000000nope", headers=reader(app))
    check_error(r, 404, "The log does not exist.", "inexistent_log")
    r = await http.get(f"/api/v2/logs/{events[0]}", headers=reader(app, "read:users"))
    check_error(
        r, 403, "Insufficient scope, expected any of: read:logs,read:logs_users",
        "insufficient_scope",
    )  # fmt: skip


async def test_user_logs(http: Any, app: Any, events: list[str]) -> None:
    url = "/api/v2/users/auth0%7Caaaaaaaaaaaaaaaaaaaaaaaa/logs"
    r = await http.get(url, headers=reader(app))
    listed = check_oas(r, "GET", "/users/{id}/logs")
    assert [e["log_id"] for e in listed] == events[::2][::-1]
    assert {e["user_id"] for e in listed} == {ALICE}
    r = await http.get(
        url,
        params={"include_totals": "true", "per_page": "4", "page": "1", "sort": "date:1"},
        headers=reader(app),
    )
    paged = check_oas(r, "GET", "/users/{id}/logs")
    assert (paged["start"], paged["limit"], paged["length"], paged["total"]) == (4, 4, 4, 15)
    assert [e["log_id"] for e in paged["logs"]] == events[::2][4:8]
    r = await http.get("/api/v2/users/auth0%7Cnobody/logs", headers=reader(app))
    assert check_oas(r, "GET", "/users/{id}/logs") == []


async def test_auth0_python_pages_through_logs(http: Any, app: Any, events: list[str]) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope="read:logs", gty="client-credentials")
    sdk = AsyncAuth0(base_url=ISSUER + "api/v2", token=token, httpx_client=http)
    pager = await sdk.logs.list(per_page=7, sort="date:1")  # pages until an empty page
    assert [e.log_id async for e in pager] == events
    found = [e async for e in await sdk.logs.list(search="type:seccft")]
    assert {e.type for e in found} == {"seccft"} and len(found) == COUNT // 3
    one = await sdk.logs.get(events[3])
    assert one.log_id == events[3] and one.details == {"n": 3}
    mine = [e.log_id async for e in await sdk.users.logs.list(BOB, per_page=4)]
    assert mine == events[1::2][::-1]
