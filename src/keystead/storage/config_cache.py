"""A per-process copy of the tenant's configuration: clients, APIs, client grants, connections and
tenant settings, read on every token request and changed rarely.

    a write to any of them      →  config_version.version + 1, in the same flush (any process)
    commit of that write        →  this process's copy is dropped at once
    another process's write     →  seen when this process next compares the counter, at most
                                   `max_age` seconds later (one indexed read per window)

Repositories consult the copy through `cached_config(session)`: a session that has itself written
configuration reads the database instead, so it sees its own uncommitted changes. The copy's
objects are shared between requests: core dataclasses are frozen, and settings documents are
handed out as copies.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from keystead.core.apis import ClientGrant, ResourceServer
from keystead.core.clients import Client
from keystead.core.ports import Connection
from keystead.storage.models import (
    ClientGrantRow,
    ClientRow,
    ConfigVersionRow,
    ConnectionRow,
    ResourceServerRow,
    TenantSettingRow,
)

CACHE_KEY = "keystead.config_cache"  # Session.info: the process's cache (session_factory)
_WROTE_KEY = "keystead.config_written"  # Session.info: this session changed configuration
_CONFIG_ROWS = (ClientRow, ResourceServerRow, ClientGrantRow, ConnectionRow, TenantSettingRow)
_VERSION = cast(Table, ConfigVersionRow.__table__)


@dataclass(frozen=True)
class ConfigSnapshot:
    """The configuration as of one `version` of the counter."""

    version: int
    clients: Mapping[str, Client] = field(default_factory=dict)
    secret_digests: Mapping[str, bytes | None] = field(default_factory=dict)
    apis: Mapping[str, ResourceServer] = field(default_factory=dict)  # by identifier
    grants: Mapping[tuple[str, str], ClientGrant] = field(default_factory=dict)
    connections: Mapping[str, Connection] = field(default_factory=dict)  # by name
    settings: Mapping[str, dict[str, Any]] = field(default_factory=dict)


Loader = Callable[[AsyncSession, int], Awaitable[ConfigSnapshot]]


class ConfigCache:
    """One per process (AppState); `snapshot` is what repositories read through."""

    def __init__(
        self,
        load: Loader,
        *,
        max_age: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age = max_age
        self._monotonic = monotonic
        self._snapshot: ConfigSnapshot | None = None
        self._checked_at = float("-inf")
        self._generation = 0  # moves on every local invalidation

    def invalidate(self) -> None:
        self._snapshot = None
        self._generation += 1

    async def snapshot(self, session: AsyncSession) -> ConfigSnapshot:
        current = self._snapshot
        now = self._monotonic()
        if current is not None and now - self._checked_at < self._max_age:
            return current
        generation = self._generation
        version = await read_version(session)
        if current is None or current.version != version:
            current = await self._load(session, version)
        if generation == self._generation:  # no local write committed while we read
            self._snapshot, self._checked_at = current, now
        return current


async def read_version(session: AsyncSession) -> int:
    return int(await session.scalar(select(_VERSION.c.version).where(_VERSION.c.id == 1)) or 0)


async def cached_config(session: AsyncSession) -> ConfigSnapshot | None:
    """The process's copy for this session's reads, or None: no cache configured, or the
    session has written configuration and must read its own changes from the database."""
    cache = session.info.get(CACHE_KEY)
    if cache is None or session.info.get(_WROTE_KEY):
        return None
    snapshot: ConfigSnapshot = await cache.snapshot(session)
    return snapshot


def _wrote_config(session: Session) -> bool:
    return any(
        isinstance(obj, _CONFIG_ROWS) for obj in (*session.new, *session.deleted, *session.dirty)
    )


@event.listens_for(Session, "after_flush")
def _bump_version(session: Session, _context: Any) -> None:
    # After the flush's own statements, in the same transaction: a reader that sees the new
    # counter sees the change. Plain Core on the connection, so no autoflush recursion.
    if _wrote_config(session):
        session.connection().execute(
            _VERSION.update().where(_VERSION.c.id == 1).values(version=_VERSION.c.version + 1)
        )
        session.info[_WROTE_KEY] = True


@event.listens_for(Session, "after_commit")
def _drop_local_copy(session: Session) -> None:
    if session.info.pop(_WROTE_KEY, False):
        cache = session.info.get(CACHE_KEY)
        if cache is not None:
            cache.invalidate()


@event.listens_for(Session, "after_rollback")
def _forget_write(session: Session) -> None:
    session.info.pop(_WROTE_KEY, None)
