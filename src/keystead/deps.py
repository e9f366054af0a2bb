"""Per-process state and per-request dependencies: settings, database sessions, keys, clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request

from keystead.core.clock import Clock, SystemClock
from keystead.core.sealing import Sealer
from keystead.settings import Settings
from keystead.storage.config_cache import ConfigCache
from keystead.storage.log_writer import LogWriter
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.logs import SqlLogs


@dataclass
class AppState:
    """What every request may use; built once in `create_app`'s lifespan."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock = field(default_factory=SystemClock)
    keys: Any = None  # keystead.core.keys.KeyRing, loaded at start-up
    config: ConfigCache | None = None  # the copy of clients, APIs, grants… (session_factory)
    log_writer: LogWriter | None = None  # batches log events off the request (session_factory)
    extras: dict[str, Any] = field(default_factory=dict)  # rate limiter, template env, …

    @property
    def sealer(self) -> Sealer:
        return Sealer(self.settings.secret_key)

    def repos(self, session: AsyncSession) -> Repositories:
        """Every repository over one session (one request's unit of work)."""
        return Repositories.over(session, self.clock, self.sealer)

    def logs(self, session: AsyncSession) -> SqlLogs:
        return SqlLogs(session, self.clock)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed when the block succeeds, rolled back when it raises.

        Nothing is begun before the first statement (the session's autobegin), so a block served
        entirely from the configuration cache costs no BEGIN, COMMIT or pooled connection."""
        async with self.sessions() as session:
            yield session
            if session.in_transaction():
                await session.commit()


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.keystead
    return state
