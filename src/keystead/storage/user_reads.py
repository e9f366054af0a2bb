"""The user read on every `/userinfo` and `GET /api/v2/users/{id}`: one Core statement on a
pooled connection, without a session or a transaction around it.

The ORM path (`SqlUsers.find` inside `AppState.transaction()`) costs about twice as much for
the same indexed read: identity map, unit of work, BEGIN and COMMIT. A single SELECT needs none
of them; it sees the latest committed row, as the ORM read would.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keystead.core.users import User
from keystead.storage.models import UserRow
from keystead.storage.repositories.users import to_user

_USERS = cast(Table, UserRow.__table__)
_BY_ID = select(_USERS).where(_USERS.c.user_id == bindparam("user_id"))


async def find_user(engine: AsyncEngine, user_id: str) -> User | None:
    async with engine.connect() as conn:
        row = (await conn.execute(_BY_ID, {"user_id": user_id})).first()
    # A Core row has the ORM row's column attributes, which is all `to_user` reads.
    return to_user(cast(Any, row)) if row is not None else None
