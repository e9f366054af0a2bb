"""GET /api/v2/logs?q= (contract §10.7): the Lucene subset over log fields through HTTP, sorted
by date either way, each answer checked against the OpenAPI schema; bad queries are 400s that
name the position."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from auth0.management import AsyncAuth0

from keystead.core.clock import FixedClock
from keystead.storage.models import LogEventRow
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    check_error,
    check_oas,
    m2m,
    mint,
    module_app,
    module_http,
    state_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

DB = "Username-Password-Authentication"
START = 1_704_067_200.0  # 2024-01-01T00:00:00Z
# fmt: off
EVENTS: list[dict[str, Any]] = [  # one a day from START, oldest first
    dict(type="s", user_id="auth0|a1", client_id="spa",
         data=dict(ip="203.0.113.7", connection=DB, user_name="ann@example.com")),
    dict(type="fp", user_id="auth0|a1", client_id="spa",
         data=dict(ip="203.0.113.7", connection=DB, user_name="ann@example.com",
                   description="Wrong email or password.")),
    dict(type="fu", client_id="spa",
         data=dict(ip="198.51.100.4", connection=DB, user_name="ghost@example.com",
                   description="Wrong email or password.")),
    dict(type="seccft", client_id=M2M, data=dict(audience=ISSUER + "api/v2/")),
    dict(type="s", user_id="google-oauth2|9", client_id="spa",
         data=dict(ip="2001:db8::5", connection="google-oauth2", user_name="Bob@Example.com")),
]
# fmt: on


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ids(app: Any) -> list[str]:
    clock = FixedClock(START)
    out = []
    async with state_of(app).transaction() as session:
        for n, event in enumerate(EVENTS):
            data = {"description": event["type"], **event["data"]}
            log_id = f"{int(clock.now() * 1000):013d}{n:016x}"
            fields = {k: v for k, v in event.items() if k != "data"}
            session.add(LogEventRow(log_id=log_id, date=clock.now(), data=data, **fields))
            out.append(log_id)
            clock.advance(86_400)
    return out


async def search(http: Any, app: Any, q: str, **params: str) -> list[int]:
    """The indexes in EVENTS of what `q` finds, in the order of the answer."""
    r = await http.get("/api/v2/logs", params={"q": q, **params}, headers=m2m(app, "read:logs"))
    found = check_oas(r, "GET", "/logs")
    events = found["logs"] if isinstance(found, dict) else found
    return [int(e["log_id"][13:], 16) for e in events]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("type:s", [4, 0]),
        ("ip:203.0.113.7", [1, 0]),
        ("ip:203.0.113.*", [1, 0]),
        (f'connection:"{DB}" AND NOT type:s', [2, 1]),
        ("user_name:bob@example.com", [4]),
        ('description:"wrong email or password."', [2, 1]),
        ("client_id:spa AND (type:fu OR user_id:google*)", [4, 2]),
        ("date:[2024-01-02 TO 2024-01-04}", [2, 1]),
        ("date:2024-01-05", [4]),
        ('date:["2024-01-03T00:00:00Z" TO *]', [4, 3, 2]),
        ("ghost", [2]),  # a bare term: a prefix of user_name, connection or client_name
        ("NOT _exists_:ip", [3]),
        (f'audience:"{ISSUER}api/v2/"', [3]),
    ],
)
async def test_query(http: Any, app: Any, ids: list[str], q: str, expected: list[int]) -> None:
    assert await search(http, app, q) == expected


async def test_sort_paging_and_totals(http: Any, app: Any, ids: list[str]) -> None:
    assert await search(http, app, "client_id:spa", sort="date:1") == [0, 1, 2, 4]
    assert await search(http, app, "client_id:spa", sort="date:-1") == [4, 2, 1, 0]
    r = await http.get(
        "/api/v2/logs",
        params={"search": "client_id:spa", "sort": "date:1", "per_page": "3", "page": "1",
                "include_totals": "true"},
        headers=m2m(app, "read:logs"),
    )  # fmt: skip
    paged = check_oas(r, "GET", "/logs")
    assert (paged["start"], paged["limit"], paged["length"], paged["total"]) == (3, 3, 1, 4)
    assert [e["log_id"] for e in paged["logs"]] == [ids[4]]
    r = await http.get(
        "/api/v2/logs", params={"q": "type:fp", "fields": "type,ip"}, headers=m2m(app, "read:logs")
    )
    assert check_oas(r, "GET", "/logs") == [{"type": "fp", "ip": "203.0.113.7"}]


@pytest.mark.parametrize(
    ("q", "message"),
    [
        ("password:x", "Query parse error at position 0: field 'password' is not searchable"),
        ("type:s AND", "Query parse error at position 10: expected a search term after AND"),
        ("date:[2024-01-01 TO", "Query parse error at position 19: expected a range bound"),
        ("date:soon", "Query parse error at position 5: expected a date (YYYY-MM-DD or ISO "
                      "8601), got 'soon'"),
        ("ip:(1 OR", "Query parse error at position 8: expected a search term after OR"),
        ("type:a*b", "Query parse error at position 5: '*' is only allowed at the end of "
                        "a term"),
        ("(" * 50, "Query parse error at position 10: query nests deeper than 10 levels"),
    ],
)  # fmt: skip
async def test_bad_query_is_400_with_position(http: Any, app: Any, q: str, message: str) -> None:
    r = await http.get("/api/v2/logs", params={"q": q}, headers=m2m(app, "read:logs"))
    check_error(r, 400, message, "invalid_query_string")


async def test_auth0_python_searches(http: Any, app: Any, ids: list[str]) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope="read:logs", gty="client-credentials")
    sdk = AsyncAuth0(base_url=ISSUER + "api/v2", token=token, httpx_client=http)
    pager = await sdk.logs.list(search="type:s OR type:fu", sort="date:1", per_page=2)
    assert [e.log_id async for e in pager] == [ids[0], ids[2], ids[4]]
