"""private_key_jwt replay protection across workers and replicas: a used (client, jti) is a row
until its assertion expires.

One statement decides: INSERT, or on a key that exists UPDATE only if the old assertion has
expired. One row changed: first use. None: the jti is live, a replay. Both databases settle two
concurrent uses of one jti the same way (a unique key, a row lock on PostgreSQL).
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.storage.models import UsedClientAssertionRow

_TABLE = cast(Table, UsedClientAssertionRow.__table__)


def assertion_key(client_id: str, jti: str) -> str:
    return hashlib.sha256(f"{client_id}\0{jti}".encode()).hexdigest()


async def use_assertion(
    session: AsyncSession, client_id: str, jti: str, *, expires_at: float, now: float
) -> bool:
    """Record the jti; False when it is already used and its assertion has not expired."""
    conn = await session.connection()
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_TABLE).values(
        key=assertion_key(client_id, jti), expires_at=expires_at
    )
    statement = statement.on_conflict_do_update(
        index_elements=[_TABLE.c.key],
        set_={"expires_at": statement.excluded.expires_at},
        where=_TABLE.c.expires_at < now,
    )
    result = await conn.execute(statement)
    return bool(result.rowcount == 1)
