"""Helpers shared by the repositories: paging, flushing without driver errors, JSON copies."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.errors import AlreadyExists

S = TypeVar("S", bound=Select[Any])


def paged(stmt: S, offset: int, limit: int | None) -> S:
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt


async def flush(session: AsyncSession, conflict: str) -> None:
    """Flush pending writes; a constraint violation becomes AlreadyExists(conflict).

    Repositories check for duplicates first, so this only catches a concurrent insert. The
    transaction is then unusable on PostgreSQL, but the request fails anyway.
    """
    try:
        await session.flush()
    except IntegrityError:
        raise AlreadyExists(conflict) from None


def doc(value: Any) -> Any:
    """A deep copy for a JSON column: SQLAlchemy does not see in-place changes, and a caller's
    dict must not alias the stored one."""
    return copy.deepcopy(value)


async def delete_row(session: AsyncSession, row: Any) -> None:
    """Delete and flush. The database cascades to child rows behind the ORM's back, so every
    loaded row is expired: a later `session.get` re-reads instead of returning a ghost."""
    await session.delete(row)
    await session.flush()
    session.expire_all()
