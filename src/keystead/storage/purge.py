"""Housekeeping: delete rows nothing will read again, in small batches (`keystead db purge`).

    authorization_codes     past expiry + grace (a used code is kept that long so a replay
                            still revokes the family it issued)
    login_sessions          past their absolute lifetime or idle too long (core/sessions.py)
    refresh_tokens          whole families only, once none of their tokens is usable and
                            nothing happened in them (rotation, revocation) for `grace` seconds:
                            a rotated token must stay while its family lives, or presenting it
                            again would no longer be detected as reuse
    refresh_token_results   the sealed answers kept for the reuse leeway, cleared once the
                            longest leeway has passed (they hold live tokens)
    user_blocks             expired blocks (a block time is set), fully leaked IP counts, and
                            unblocked failure counts untouched for `stale_counts_after`
    used_client_assertions  private_key_jwt jtis whose assertion has expired (a replay of it
                            is refused by its exp anyway)
    jobs                    Management API jobs past their lifetime (management/jobs.py: GET
                            answers 404 for them already)

Password-reset tickets have no table (core/tickets.py: signed, fingerprinted JWTs): nothing to
purge. Each batch is its own short transaction, so a purge never holds a lock for long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, delete, exists, false, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from keystead.core.bruteforce import IP_ROW, BruteForcePolicy
from keystead.core.sessions import IDLE_TIMEOUT
from keystead.storage.models import (
    AuthorizationCodeRow,
    JobRow,
    LoginSessionRow,
    RefreshTokenRow,
    UsedClientAssertionRow,
    UserBlockRow,
)

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]

BATCH: Final = 500  # rows (or refresh-token families) per transaction
GRACE: Final = 86_400  # seconds a dead code or refresh-token family is kept for replay detection
STALE_COUNTS: Final = 30 * 86_400  # seconds an unblocked failure count is remembered
# The longest refresh-token reuse leeway a client may have (management/schemas/clients.py).
MAX_LEEWAY: Final = 60


async def purge_expired(
    transaction: Transaction,
    *,
    now: float,
    policy: BruteForcePolicy,
    grace: float = GRACE,
    stale_counts_after: float = STALE_COUNTS,
    batch: int = BATCH,
) -> dict[str, int]:
    """Delete what has expired as of `now`; rows deleted (results cleared) per table."""
    if batch < 1 or grace < 0 or stale_counts_after < 0:
        raise ValueError("batch must be positive, grace and stale_counts_after not negative")
    cutoff = now - grace
    counts = {
        "authorization_codes": await _in_batches(
            transaction, batch, lambda s: _codes(s, cutoff, batch)
        ),
        "login_sessions": await _in_batches(transaction, batch, lambda s: _sessions(s, now, batch)),
        "refresh_tokens": await _in_batches(
            transaction, batch, lambda s: _refresh_families(s, cutoff, batch)
        ),
        "refresh_token_results": await _in_batches(
            transaction, batch, lambda s: _rotation_results(s, now - MAX_LEEWAY, batch)
        ),
        "user_blocks": await _in_batches(
            transaction, batch, lambda s: _user_blocks(s, now, policy, stale_counts_after, batch)
        ),
        "used_client_assertions": await _in_batches(
            transaction, batch, lambda s: _used_assertions(s, now, batch)
        ),
        "jobs": await _in_batches(transaction, batch, lambda s: _jobs(s, now, batch)),
    }
    return counts


async def _in_batches(
    transaction: Transaction, batch: int, step: Callable[[AsyncSession], Awaitable[tuple[int, int]]]
) -> int:
    """Run `step` (→ items handled, rows affected) in fresh transactions until a short batch."""
    total = 0
    while True:
        async with transaction() as session:
            handled, affected = await step(session)
        total += affected
        if handled < batch:
            return total


async def _delete_keys(
    session: AsyncSession, table: type[Any], column: Any, keys: list[Any]
) -> tuple[int, int]:
    """DELETE the rows whose `column` is in `keys`: (keys handled, rows deleted)."""
    if not keys:
        return 0, 0
    result = await session.execute(
        delete(table).where(column.in_(keys)).execution_options(synchronize_session=False)
    )
    return len(keys), _rowcount(result)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# --- one table each -----------------------------------------------------------------------------


async def _codes(session: AsyncSession, cutoff: float, batch: int) -> tuple[int, int]:
    keys = await session.scalars(
        select(AuthorizationCodeRow.code_digest)
        .where(AuthorizationCodeRow.expires_at <= cutoff)
        .limit(batch)
    )
    return await _delete_keys(
        session, AuthorizationCodeRow, AuthorizationCodeRow.code_digest, list(keys)
    )


async def _used_assertions(session: AsyncSession, now: float, batch: int) -> tuple[int, int]:
    row = UsedClientAssertionRow
    keys = await session.scalars(select(row.key).where(row.expires_at <= now).limit(batch))
    return await _delete_keys(session, row, row.key, list(keys))


async def _jobs(session: AsyncSession, now: float, batch: int) -> tuple[int, int]:
    keys = await session.scalars(select(JobRow.id).where(JobRow.expires_at <= now).limit(batch))
    return await _delete_keys(session, JobRow, JobRow.id, list(keys))


async def _sessions(session: AsyncSession, now: float, batch: int) -> tuple[int, int]:
    dead = or_(
        LoginSessionRow.expires_at <= now, LoginSessionRow.last_seen_at <= now - IDLE_TIMEOUT
    )
    keys = await session.scalars(select(LoginSessionRow.id_digest).where(dead).limit(batch))
    return await _delete_keys(session, LoginSessionRow, LoginSessionRow.id_digest, list(keys))


def _keeps_family(row: Any, cutoff: float) -> ColumnElement[bool]:
    """This token keeps its family: still usable after `cutoff`, or touched since."""
    usable = and_(
        row.revoked_at.is_(None),
        row.rotated_at.is_(None),
        or_(row.family_expires_at.is_(None), row.family_expires_at > cutoff),
        or_(row.idle_expires_at.is_(None), row.idle_expires_at > cutoff),
    )
    # NULL-safe (`IS NOT NULL AND`): the negation of an unknown would select nothing.
    revoked_lately = and_(row.revoked_at.is_not(None), row.revoked_at > cutoff)
    rotated_lately = and_(row.rotated_at.is_not(None), row.rotated_at > cutoff)
    return or_(usable, revoked_lately, rotated_lately)


async def _refresh_families(session: AsyncSession, cutoff: float, batch: int) -> tuple[int, int]:
    member = aliased(RefreshTokenRow)
    kept = exists().where(
        member.family_id == RefreshTokenRow.family_id, _keeps_family(member, cutoff)
    )
    families = list(
        await session.scalars(
            select(RefreshTokenRow.family_id)
            .where(~_keeps_family(RefreshTokenRow, cutoff), ~kept)
            .distinct()
            .limit(batch)
        )
    )
    return await _delete_keys(session, RefreshTokenRow, RefreshTokenRow.family_id, families)


async def _rotation_results(session: AsyncSession, before: float, batch: int) -> tuple[int, int]:
    keys = list(
        await session.scalars(
            select(RefreshTokenRow.token_digest)
            .where(
                RefreshTokenRow.rotation_result.is_not(None), RefreshTokenRow.rotated_at <= before
            )
            .limit(batch)
        )
    )
    if not keys:
        return 0, 0
    result = await session.execute(
        update(RefreshTokenRow)
        .where(RefreshTokenRow.token_digest.in_(keys))
        .values(rotation_result=None)
        .execution_options(synchronize_session=False)
    )
    return len(keys), _rowcount(result)


def _expired_blocks(
    now: float, policy: BruteForcePolicy, stale_counts_after: float
) -> ColumnElement[bool]:
    pair = UserBlockRow.identifier != IP_ROW
    if policy.max_attempts == 0:
        pairs: ColumnElement[bool] = pair  # blocks are off: counts mean nothing
    else:
        blocked = UserBlockRow.blocked_at.is_not(None)
        block_over = (
            UserBlockRow.blocked_at + policy.block_seconds <= now
            if policy.block_seconds > 0
            else false()
        )
        stale = UserBlockRow.updated_at <= now - stale_counts_after
        pairs = and_(pair, or_(and_(blocked, block_over), and_(~blocked, stale)))
    spec = policy.login_ip
    # An IP's count has leaked away once stamp + failures / rate has passed (core/bruteforce).
    leaked = (
        UserBlockRow.updated_at + UserBlockRow.failures * (1.0 / spec.rate) <= now
        if spec is not None
        else true()
    )
    return or_(pairs, and_(UserBlockRow.identifier == IP_ROW, leaked))


async def _user_blocks(
    session: AsyncSession,
    now: float,
    policy: BruteForcePolicy,
    stale_counts_after: float,
    batch: int,
) -> tuple[int, int]:
    keys = await session.scalars(
        select(UserBlockRow.id).where(_expired_blocks(now, policy, stale_counts_after)).limit(batch)
    )
    return await _delete_keys(session, UserBlockRow, UserBlockRow.id, list(keys))
