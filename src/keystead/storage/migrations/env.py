"""Alembic environment: migrations run on the connection `keystead.storage.migrate` hands over.

`migrate.py` opens it from the async engine (`AsyncConnection.run_sync`), inside a transaction
that holds the database-wide migration lock, and passes it as `config.attributes["connection"]`.
Run by hand without one (plain `alembic` with `sqlalchemy.url` set), env.py opens its own async
engine but takes no lock.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import keystead.storage.models  # noqa: F401  (fills Base.metadata)
from keystead.storage.db import Base, create_engine

config = context.config
target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite can alter little in place: batch mode copies the table (same names, see
        # NAMING_CONVENTION), so one migration serves both databases.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_on)
            await connection.commit()
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


given = config.attributes.get("connection")
if context.is_offline_mode():
    run_offline(config.get_main_option("sqlalchemy.url") or "sqlite://")
elif given is not None:
    run_on(given)
else:
    asyncio.run(run_with_own_engine(config.get_main_option("sqlalchemy.url") or ""))
