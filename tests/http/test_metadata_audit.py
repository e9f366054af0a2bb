"""Every accepted user_metadata write is audited with keys and sizes, never values (issue 6)."""

from __future__ import annotations

from typing import Any

from tests.http.helpers import m2m, make_spa, state_of


async def _events(app: Any, type_: str) -> list[Any]:
    state = state_of(app)
    async with state.transaction() as session:
        return [e for e in await state.logs(session).list(limit=None) if e.type == type_]


async def test_admin_create_audits_metadata_keys(app, http):
    r = await http.post(
        "/api/v2/users",
        json={
            "connection": "Username-Password-Authentication",
            "email": "audit@example.com",
            "password": "Audited-passw0rd",
            "user_metadata": {"theme": "dark-secret-value"},
        },
        headers=m2m(app),
    )
    assert r.status_code == 201, r.text
    (event,) = [e for e in await _events(app, "sapi") if e.description == "Create a User"]
    audit = event.data["details"]["user_metadata"]
    assert "theme" in str(audit)
    assert "dark-secret-value" not in str(event.data)


async def test_signup_audits_metadata_keys(app, http):
    client = await make_spa(app)
    r = await http.post(
        "/dbconnections/signup",
        json={
            "client_id": client.client_id,
            "connection": "Username-Password-Authentication",
            "email": "new@example.com",
            "password": "Signup-passw0rd-1",
            "user_metadata": {"lang": "fr-secret-value"},
        },
    )
    assert r.status_code == 200, r.text
    (event,) = await _events(app, "ss")
    assert "lang" in str(event.data["details"]["user_metadata"])
    assert "fr-secret-value" not in str(event.data)
