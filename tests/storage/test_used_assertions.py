"""private_key_jwt jti replay protection shared through the database (RFC 7523 §3)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from keystead.storage.repositories.used_assertions import use_assertion

NOW = 2_000_000_000.0


async def test_a_jti_is_used_once_until_its_assertion_expires(session: AsyncSession) -> None:
    assert await use_assertion(session, "client-a", "jti-1", expires_at=NOW + 60, now=NOW)
    assert not await use_assertion(session, "client-a", "jti-1", expires_at=NOW + 90, now=NOW)
    # another client may use the same jti; the first client may again once it has expired
    assert await use_assertion(session, "client-b", "jti-1", expires_at=NOW + 60, now=NOW)
    assert await use_assertion(session, "client-a", "jti-1", expires_at=NOW + 300, now=NOW + 61)
    assert not await use_assertion(
        session, "client-a", "jti-1", expires_at=NOW + 300, now=NOW + 120
    )
