"""Targeted writes a successful login makes on a users row (core/login_success.LoginRecords).

Each statement names only the columns it changes: a login never rewrites a user's metadata, so
a PATCH running at the same moment is not undone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.storage.models import UserRow


@dataclass
class SqlLoginRecords:
    session: AsyncSession

    async def record_login(self, user_id: str, *, at: float, ip: str | None) -> None:
        await self.session.execute(
            update(UserRow)
            .where(UserRow.user_id == user_id)
            .values(
                last_login=at,
                last_ip=ip[:64] if ip else None,  # the column's size
                logins_count=UserRow.logins_count + 1,
                updated_at=at,
            )
        )

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.session.execute(
            update(UserRow).where(UserRow.user_id == user_id).values(password_hash=password_hash)
        )
