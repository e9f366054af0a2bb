"""Users repository: count_logged_in_since, the COUNT behind GET /api/v2/stats/active-users.

On SQLite and PostgreSQL: the boundary is inclusive, users who never logged in are not counted,
and the count reads ix_users_last_login instead of the whole users table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text

from keystead.core.users import DATABASE_CONNECTION, User
from keystead.storage.repositories import Repositories

DAY = 24 * 60 * 60
NOW = 1_700_000_000.0
SINCE = NOW - 30 * DAY


async def test_counts_logins_at_or_after_since(repos: Repositories) -> None:
    assert await repos.users.count_logged_in_since(SINCE) == 0
    logins = {
        "one-day": NOW - DAY,
        "29-days": NOW - 29 * DAY,
        "boundary": SINCE,
        "31-days": NOW - 31 * DAY,
        "never": None,
    }
    for name, last_login in logins.items():
        user = User(user_id="", email=f"{name}@example.com", last_login=last_login)
        await repos.users.create(user, connection=DATABASE_CONNECTION)
    assert await repos.users.count_logged_in_since(SINCE) == 3
    assert await repos.users.count_logged_in_since(SINCE + 0.001) == 2
    assert await repos.users.count_logged_in_since(NOW - 40 * DAY) == 4
    assert await repos.users.count_logged_in_since(NOW) == 0


async def test_the_count_reads_the_last_login_index(repos: Repositories) -> None:
    session = repos.users.session
    conn = await session.connection()
    pg = conn.dialect.name == "postgresql"
    if pg:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    sync_engine = conn.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", capture)
    try:
        await repos.users.count_logged_in_since(SINCE)
    finally:
        event.remove(sync_engine, "before_cursor_execute", capture)
    (statement, parameters), *_ = statements
    explain = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
    rows = (await conn.exec_driver_sql(explain + statement, parameters)).all()
    plan = "\n".join(str(r[0] if pg else r[-1]) for r in rows)
    assert "ix_users_last_login" in plan, plan
    assert "Seq Scan" not in plan and "SCAN users\n" not in plan + "\n", plan
