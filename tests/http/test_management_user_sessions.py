"""Blocking a user or setting a new password through the Management API ends their sessions."""

from __future__ import annotations

from typing import Any

import pytest

from keystead.storage.repositories.sessions import SqlLoginSessions
from tests.http.helpers import m2m, make_user, state_of


async def _open_session(app: Any, user_id: str) -> str:
    state = state_of(app)
    async with state.transaction() as session:
        started = await SqlLoginSessions(session, state.clock).create(user_id)
    return started.cookie


async def _live(app: Any, cookie: str) -> bool:
    state = state_of(app)
    async with state.transaction() as session:
        return await SqlLoginSessions(session, state.clock).get_by_cookie(cookie) is not None


@pytest.mark.parametrize(
    ("body", "ends"),
    [
        ({"blocked": True}, True),
        ({"password": "A-new-passw0rd-for-you"}, True),
        ({"name": "Just a rename"}, False),
        ({"user_metadata": {"theme": "dark"}}, False),
    ],
)
async def test_block_or_password_change_ends_sessions(app, http, body, ends):
    user = await make_user(app)
    cookie = await _open_session(app, user.user_id)
    r = await http.patch(f"/api/v2/users/{user.user_id}", json=body, headers=m2m(app))
    assert r.status_code == 200, r.text
    assert await _live(app, cookie) is not ends
