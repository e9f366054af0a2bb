"""GET /api/v2/users?q=… through the HTTP layer (contract §9.3); the query language itself is
covered by tests/unit/test_search.py and tests/storage/test_user_search.py."""

from __future__ import annotations

from tests.http.helpers import check_oas, m2m, make_user


async def test_search_finds_by_email_and_metadata(app, http):
    ada = await make_user(app, email="ada@example.com", app_metadata={"plan": "pro"})
    await make_user(app, email="bob@example.com", app_metadata={"plan": "free"})
    r = await http.get(
        "/api/v2/users",
        params={"q": 'app_metadata.plan:"pro"', "include_totals": "true"},
        headers=m2m(app),
    )
    assert r.status_code == 200, r.text
    body = check_oas(r, "GET", "/users")
    assert [u["user_id"] for u in body["users"]] == [ada.user_id]
    assert body["total"] == 1
    r = await http.get("/api/v2/users", params={"q": "email:bob*"}, headers=m2m(app))
    assert [u["email"] for u in r.json()] == ["bob@example.com"]


async def test_a_query_that_does_not_parse_is_a_400_with_its_position(app, http):
    r = await http.get("/api/v2/users", params={"q": 'email:"x" AND ('}, headers=m2m(app))
    assert r.status_code == 400
    body = r.json()
    assert body["errorCode"] == "invalid_query_string"
    assert "position" in body["message"]
