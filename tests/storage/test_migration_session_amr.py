"""Migration 0008 (login_sessions.amr): one head, and an upgrade/downgrade round trip that keeps
the sessions (on SQLite the downgrade copies the table)."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from keystead.core.clock import FixedClock
from keystead.core.sealing import Sealer
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.storage.db import create_engine
from keystead.storage.migrate import alembic_config, differences, locked_connection
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.sessions import SqlLoginSessions
from keystead.storage.seed import seed
from tests.conftest import ISSUER
from tests.storage.conftest import SECRET_KEY


def _migrate(connection: Connection, step: str, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    getattr(command, step)(cfg, revision)


async def _to(engine: AsyncEngine, step: str, revision: str) -> None:
    async with locked_connection(engine) as conn:
        await conn.run_sync(_migrate, step, revision)


async def _columns(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("login_sessions")}
        )


def test_one_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config()).get_heads()) == 1


async def test_session_amr_round_trip(fresh_url: str) -> None:
    clock = FixedClock(1_800_000_000.0)
    engine = create_engine(fresh_url)
    try:
        await _to(engine, "upgrade", "head")
        assert "amr" in await _columns(engine)
        async with AsyncSession(engine, expire_on_commit=False) as session:
            await seed(session, ISSUER, clock)
            repos = Repositories.over(session, clock, Sealer(SECRET_KEY))
            user = await repos.users.create(
                User(user_id="", email="ada@example.com"), connection=DATABASE_CONNECTION
            )
            sessions = SqlLoginSessions(session, clock)
            with_code = await sessions.create(user.user_id, amr=("mfa",))
            plain = await sessions.create(user.user_id)
            await session.commit()
            assert with_code.session.amr == ("mfa",) and plain.session.amr == ()
            session.expire_all()
            found = await sessions.get_by_cookie(with_code.cookie)
            assert found is not None and found.amr == ("mfa",)

        await _to(engine, "downgrade", "0007")
        assert "amr" not in await _columns(engine)
        async with engine.connect() as conn:
            kept = (await conn.execute(text("SELECT count(*) FROM login_sessions"))).scalar()
        assert kept == 2

        await _to(engine, "upgrade", "head")
        async with AsyncSession(engine) as session:
            again = await SqlLoginSessions(session, clock).get_by_cookie(with_code.cookie)
            assert again is not None and again.amr == ()  # what older sessions were
        assert await differences(engine) == []
    finally:
        await engine.dispose()
