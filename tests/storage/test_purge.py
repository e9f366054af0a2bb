"""storage/purge: which expired rows go and which stay, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.bruteforce import BruteForcePolicy
from keystead.core.clients import Client
from keystead.core.ratelimit import parse_spec
from keystead.core.sessions import IDLE_TIMEOUT
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.storage.models import (
    AuthorizationCodeRow,
    JobRow,
    LoginSessionRow,
    RefreshTokenRow,
    UserBlockRow,
)
from keystead.storage.purge import purge_expired
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.jobs import Job, SqlJobs
from keystead.storage.repositories.used_assertions import use_assertion

NOW = 2_000_000_000.0
GRACE = 3600.0


class Rows:
    """Rows written straight into the tables, named by a label kept in a column."""

    def __init__(self, session: AsyncSession, user_id: str, client_id: str) -> None:
        self.session, self.user_id, self.client_id = session, user_id, client_id
        self.counter = 0

    def _key(self, label: str) -> bytes:
        return label.encode().ljust(32, b".")

    def code(self, label: str, expires_at: float, used_at: float | None = None) -> None:
        self.session.add(
            AuthorizationCodeRow(
                code_digest=self._key(label), client_id=self.client_id, user_id=self.user_id,
                params={}, expires_at=expires_at, used_at=used_at,
            )
        )  # fmt: skip

    def login_session(self, label: str, expires_at: float, last_seen_at: float) -> None:
        self.session.add(
            LoginSessionRow(
                id_digest=self._key(label), sid=label, user_id=self.user_id,
                authenticated_at=last_seen_at, created_at=last_seen_at,
                last_seen_at=last_seen_at, expires_at=expires_at,
            )
        )  # fmt: skip

    def token(self, family: str, label: str, **fields: Any) -> None:
        self.session.add(
            RefreshTokenRow(
                token_digest=self._key(label), id=label, family_id=family,
                client_id=self.client_id, user_id=self.user_id, params={},
                created_at=NOW - 10 * GRACE, **fields,
            )
        )  # fmt: skip

    def block(self, identifier: str, ip: str, failures: int, updated_at: float, **fields: Any):
        self.session.add(
            UserBlockRow(
                identifier=identifier, ip=ip, connection=DATABASE_CONNECTION,
                failures=failures, updated_at=updated_at, **fields,
            )
        )  # fmt: skip


@pytest.fixture
async def rows(repos: Repositories, session: AsyncSession) -> Rows:
    user = await repos.users.create(User(user_id="", email="p@example.com"), connection="db")
    client = await repos.clients.create(Client(client_id="", name="App"))
    return Rows(session, user.user_id, client.client_id)


def transactions(session: AsyncSession) -> Any:
    """Each purge batch in the test's own (rolled back) transaction."""

    @asynccontextmanager
    async def transaction() -> AsyncIterator[AsyncSession]:
        yield session
        await session.flush()

    return transaction


async def labels(session: AsyncSession, column: Any) -> set[str]:
    found = await session.scalars(select(column))
    return {v.decode().rstrip(".") if isinstance(v, bytes) else str(v) for v in found}


POLICY = BruteForcePolicy(max_attempts=10, block_seconds=600, login_ip=parse_spec("100/day"))


async def purge(session: AsyncSession, **over: Any) -> dict[str, int]:
    options: dict[str, Any] = {"now": NOW, "policy": POLICY, "grace": GRACE, "batch": 2, **over}
    return await purge_expired(transactions(session), **options)


async def test_codes_and_sessions(rows: Rows, session: AsyncSession) -> None:
    rows.code("live", NOW + 60)
    rows.code("just-expired-used", NOW - 60, used_at=NOW - 90)  # kept: replays still revoke
    for n in range(5):  # more than one batch
        rows.code(f"old-{n}", NOW - GRACE - 1)
    rows.login_session("live", NOW + 86_400, NOW - 60)
    rows.login_session("past-lifetime", NOW - 1, NOW - 60)
    rows.login_session("idle", NOW + 86_400, NOW - IDLE_TIMEOUT - 1)
    await session.flush()
    counts = await purge(session)
    assert counts["authorization_codes"] == 5 and counts["login_sessions"] == 2
    assert await labels(session, AuthorizationCodeRow.code_digest) == {
        "live", "just-expired-used"
    }  # fmt: skip
    assert await labels(session, LoginSessionRow.sid) == {"live"}


async def test_refresh_token_families_go_whole_once_dead(rows: Rows, session: AsyncSession) -> None:
    old = NOW - GRACE - 1
    # A live family: an old rotated token must stay, or its reuse would go unnoticed.
    rows.token("live", "live-1", rotated_at=old, idle_expires_at=NOW + 60)
    rows.token("live", "live-2", idle_expires_at=NOW + 86_400)
    rows.token("forever", "forever-1")  # no expiry at all
    # Dead long enough: idle-expired, absolutely expired, revoked.
    rows.token("idle", "idle-1", rotated_at=old - 10, idle_expires_at=old)
    rows.token("idle", "idle-2", idle_expires_at=old)
    rows.token("absolute", "absolute-1", family_expires_at=old)
    rows.token("revoked", "revoked-1", rotated_at=old - 5, revoked_at=old)
    rows.token("revoked", "revoked-2", revoked_at=old)
    # Dead, but within the grace: kept for replay detection and its log.
    rows.token("recent", "recent-1", revoked_at=NOW - 60)
    rows.token("just-idle", "just-idle-1", idle_expires_at=NOW - 60)
    # Rotation results: cleared once the longest leeway has passed.
    rows.token("leeway", "leeway-1", rotated_at=NOW - 5, rotation_result=b"sealed")
    rows.token("leeway", "leeway-2", rotated_at=NOW - 120, rotation_result=b"sealed")
    rows.token("leeway", "leeway-3", idle_expires_at=NOW + 600)
    await session.flush()
    counts = await purge(session)
    assert counts["refresh_tokens"] == 5
    assert counts["refresh_token_results"] == 1
    assert await labels(session, RefreshTokenRow.family_id) == {
        "live", "forever", "recent", "just-idle", "leeway"
    }  # fmt: skip
    results = dict(
        (await session.execute(select(RefreshTokenRow.id, RefreshTokenRow.rotation_result))).all()
    )
    assert results["leeway-1"] == b"sealed" and results["leeway-2"] is None


async def test_user_blocks(rows: Rows, session: AsyncSession) -> None:
    rows.block("blocked@example.com", "10.0.0.1", 10, NOW - 60, blocked_at=NOW - 60)
    rows.block("expired@example.com", "10.0.0.1", 10, NOW - 601, blocked_at=NOW - 601)
    rows.block("counting@example.com", "10.0.0.1", 3, NOW - 86_400)
    rows.block("stale@example.com", "10.0.0.1", 3, NOW - 31 * 86_400)
    rows.block("", "10.0.0.2", 5, NOW - 3600)  # 100/day: 5 leak in 4320 s, not yet
    rows.block("", "10.0.0.3", 5, NOW - 4400)  # leaked away
    await session.flush()
    assert (await purge(session))["user_blocks"] == 3
    left = set((await session.execute(select(UserBlockRow.identifier, UserBlockRow.ip))).all())
    assert left == {
        ("blocked@example.com", "10.0.0.1"),
        ("counting@example.com", "10.0.0.1"),
        ("", "10.0.0.2"),
    }
    # Blocks that last until unblocked stay however old they are.
    forever = BruteForcePolicy(max_attempts=10, block_seconds=0, login_ip=None)
    assert (await purge(session, now=NOW + 10**8, policy=forever))["user_blocks"] == 2
    left = set((await session.execute(select(UserBlockRow.identifier))).scalars())
    assert left == {"blocked@example.com"}


async def test_nothing_to_purge(rows: Rows, session: AsyncSession) -> None:
    assert await purge(session) == {
        "authorization_codes": 0,
        "login_sessions": 0,
        "refresh_tokens": 0,
        "refresh_token_results": 0,
        "user_blocks": 0,
        "used_client_assertions": 0,
        "jobs": 0,
    }
    assert await session.scalar(select(func.count()).select_from(RefreshTokenRow)) == 0


async def test_bad_arguments(session: AsyncSession) -> None:
    with pytest.raises(ValueError):
        await purge(session, batch=0)


async def test_used_client_assertions_go_once_expired(rows: Rows, session: AsyncSession) -> None:
    assert await use_assertion(session, "c1", "live", expires_at=NOW + 10, now=NOW)
    assert await use_assertion(session, "c1", "dead", expires_at=NOW - 10, now=NOW - 60)
    assert (await purge(session))["used_client_assertions"] == 1
    assert not await use_assertion(session, "c1", "live", expires_at=NOW + 10, now=NOW)
    assert await use_assertion(session, "c1", "dead", expires_at=NOW + 10, now=NOW)


async def test_jobs_go_once_expired(rows: Rows, session: AsyncSession) -> None:
    jobs = SqlJobs(session)
    await jobs.add(Job("job_live", "verification_email", "completed", NOW - 60, NOW + 10))
    for n in range(3):  # more than one batch
        await jobs.add(Job(f"job_dead{n}", "verification_email", "completed", NOW - 99, NOW))
    assert (await purge(session))["jobs"] == 3
    assert await labels(session, JobRow.id) == {"job_live"}
    assert await jobs.get("job_live", now=NOW) is not None
