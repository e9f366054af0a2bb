"""What a password login reads and writes on users rows (core/login_success.LoginRecords).

Each write names only the columns it changes: a login never rewrites a user's metadata, so a
PATCH running at the same moment is not undone. `linked_login` finds a linked database identity
by its email: on PostgreSQL through the GIN index on linked_identities (`@>`), on SQLite among
the rows that have linked identities (the partial index ix_users_linked_identities).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, select, text, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.users import Identity, User
from keystead.storage.models import UserRow
from keystead.storage.repositories.users import normal_email, to_user

# Primaries looked at for one address: more than one is a conflict nobody should create
# (linking refuses nothing on that ground yet), so the first by user_id wins.
_CANDIDATES: Final = 5


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

    async def set_identity_password_hash(
        self, user_id: str, identity: Identity, password_hash: str
    ) -> None:
        stored = await self.session.scalar(
            select(UserRow.linked_identities).where(UserRow.user_id == user_id).with_for_update()
        )
        if stored is None:
            return
        changed = [
            {**item, "password_hash": password_hash}
            if (item.get("provider"), str(item.get("user_id")))
            == (identity.provider, identity.user_id)
            else item
            for item in stored
        ]
        await self.session.execute(
            update(UserRow).where(UserRow.user_id == user_id).values(linked_identities=changed)
        )

    async def linked_login(self, connection: str, email: str) -> tuple[User, Identity] | None:
        address = normal_email(email)
        rows = await self.session.scalars(
            select(UserRow)
            .where(self._holds_linked_email(connection, address))
            .order_by(UserRow.user_id)
            .limit(_CANDIDATES)
        )
        for row in rows:
            user = to_user(row)
            for identity in user.identities[1:]:
                profile = identity.profile_data or {}
                if (
                    identity.connection == connection
                    and identity.password_hash
                    and normal_email(_text(profile.get("email"))) == address
                ):
                    return user, identity
        return None

    def _holds_linked_email(self, connection: str, address: str | None) -> ColumnElement[bool]:
        if self.session.get_bind().dialect.name == "postgresql":
            wanted = [{"connection": connection, "profileData": {"email": address}}]
            return type_coerce(UserRow.linked_identities, JSONB).contains(wanted)
        sql = (
            "(users.linked_identities > '[]' AND EXISTS (SELECT 1 FROM "
            "json_each(users.linked_identities) AS li WHERE "
            "json_extract(li.value, '$.connection') = :linked_connection AND "
            "json_extract(li.value, '$.profileData.email') = :linked_email))"
        )
        clause = text(sql).bindparams(linked_connection=connection, linked_email=address)
        return clause  # type: ignore[return-value]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
