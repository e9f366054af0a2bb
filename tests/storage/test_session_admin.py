"""The administrators' view of sessions and refresh tokens, on SQLite and PostgreSQL: families
found by any of their ids, the `sid` read from the JSON params, revocations that mark whole
families and nobody else's."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import FixedClock
from keystead.core.refresh_tokens import NewRefreshToken
from keystead.core.sealing import Sealer
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.storage.models import ClientRow, RefreshTokenRow
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.refresh_tokens import SqlRefreshTokens
from keystead.storage.repositories.session_admin import SqlSessionAdmin
from keystead.storage.repositories.sessions import SqlLoginSessions


async def _setup(repos: Repositories, session: AsyncSession, clock: FixedClock) -> str:
    now = clock.now()
    session.add(
        ClientRow(client_id="app1", name="App", app_type="spa",
                  token_endpoint_auth_method="none", config={}, created_at=now, updated_at=now)
    )  # fmt: skip
    user = await repos.users.create(
        User(user_id="", email=f"{secrets.token_hex(4)}@example.com"),
        connection=DATABASE_CONNECTION,
    )
    await session.flush()
    return user.user_id


async def _family(
    session: AsyncSession, clock: FixedClock, user_id: str, sid: str | None, rotations: int = 0
) -> list[str]:
    store = SqlRefreshTokens(session, clock, Sealer())
    family = secrets.token_hex(16)
    ids: list[str] = []
    previous = ""
    for _ in range(rotations + 1):
        token = secrets.token_urlsafe(32)
        new = NewRefreshToken(
            family_id=family, client_id="app1", user_id=user_id, scope=("openid",),
            audience=None, auth_time=clock.now(), sid=sid, parent_id=ids[-1] if ids else None,
        )  # fmt: skip
        ids.append((await store.create(token, new)).id)
        if previous:
            await store.rotate(previous, now=clock.now(), result=None)
        previous = token
        clock.advance(1)
    return ids


async def _revoked(session: AsyncSession, ids: list[str]) -> list[bool]:
    rows = (await session.execute(select(RefreshTokenRow.id, RefreshTokenRow.revoked_at))).all()
    by_id = {row.id: row.revoked_at is not None for row in rows}
    return [by_id[i] for i in ids]


async def test_families_sessions_and_revocation(
    repos: Repositories, session: AsyncSession, clock: FixedClock
) -> None:
    user_id = await _setup(repos, session, clock)
    started = await SqlLoginSessions(session, clock).create(user_id, ip="198.51.100.1")
    sid = started.session.sid
    admin = SqlSessionAdmin(session, clock)
    under = await _family(session, clock, user_id, sid, rotations=2)
    other = await _family(session, clock, user_id, None)

    found = await admin.find_token_family(under[0])
    assert found is not None and found.id == under[-1] and found.sid == sid
    assert found.last_exchanged_at is not None and found.created_at < found.last_exchanged_at
    assert [f.id for f in await admin.user_token_families(user_id)] == [under[-1], other[0]]
    assert await admin.session_clients(user_id) == {sid: ["app1"]}
    assert [s.sid for s in await admin.user_sessions(user_id)] == [sid]

    families = await admin.session_token_families(user_id, sid)
    assert await admin.revoke_families([f.family_id for f in families]) == 3
    assert await _revoked(session, under + other) == [True, True, True, False]
    assert await admin.find_token_family(under[-1]) is None
    assert await admin.delete_session(sid) == user_id
    assert await admin.find_session(sid) is None
    assert await admin.delete_session(sid) is None

    assert await admin.revoke_user_tokens(user_id) == 1
    assert await admin.user_token_families(user_id) == []
