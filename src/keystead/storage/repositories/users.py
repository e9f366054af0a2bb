"""Users (contract §9.1): rows ↔ core `User`. User search lives elsewhere; the search terms
of each user (storage/user_search_terms.py) follow every write to a users row in the same flush.

The primary identity is not stored: it is derived from `user_id` ("{provider}|{id}") and the
`connection` column. `linked_identities` holds the secondary ones, as [{connection, provider,
user_id, isSocial, profileData}] (Auth0's spelling, so the API can show them as stored).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.users import Identity, User
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage import user_search_terms  # noqa: F401  (its flush hooks keep terms current)
from keystead.storage.models import UserRow
from keystead.storage.repositories._common import delete_row, doc, flush
from keystead.storage.repositories.ids import new_user_id

NOT_FOUND = "The user does not exist."
CONFLICT = "The user already exists."
# Providers whose users sign in with Keystead itself rather than with another identity provider.
_NOT_SOCIAL = frozenset({"auth0", "email", "sms"})
# Profile columns copied one to one between row and dataclass.
_PROFILE = (
    "email_verified",
    "username",
    "phone_number",
    "phone_verified",
    "name",
    "nickname",
    "given_name",
    "family_name",
    "picture",
    "password_hash",
    "blocked",
    "last_login",
    "last_ip",
    "logins_count",
    "last_password_reset",
)


def normal_email(email: str | None) -> str | None:
    return email.strip().lower() if email is not None else None


def primary_identity(user_id: str, connection: str) -> Identity:
    provider, _, local_id = user_id.partition("|")
    return Identity(
        connection=connection,
        provider=provider,
        user_id=local_id,
        is_social=provider not in _NOT_SOCIAL,
    )


def _identity_doc(identity: Identity) -> dict[str, Any]:
    out: dict[str, Any] = {
        "connection": identity.connection,
        "provider": identity.provider,
        "user_id": identity.user_id,
        "isSocial": identity.is_social,
    }
    if identity.profile_data is not None:
        out["profileData"] = doc(identity.profile_data)
    if identity.password_hash is not None:  # a linked database identity's own (core/users.py)
        out["password_hash"] = identity.password_hash
    return out


def _identity(item: dict[str, Any]) -> Identity:
    return Identity(
        connection=item["connection"],
        provider=item["provider"],
        user_id=str(item["user_id"]),
        is_social=bool(item.get("isSocial", False)),
        profile_data=doc(item.get("profileData")),
        password_hash=item.get("password_hash"),
    )


def _as_is(value: Any) -> Any:
    return value


def to_user(row: UserRow, *, fresh: bool = False) -> User:
    """The core User of a row; `fresh`: its documents were just parsed and belong to no one
    else, so they are used as they are instead of copied."""
    copy: Callable[[Any], Any] = _as_is if fresh else doc
    linked = tuple(_identity(item) for item in row.linked_identities)
    return User(
        user_id=row.user_id,
        email=row.email,
        user_metadata=copy(row.user_metadata),
        app_metadata=copy(row.app_metadata),
        identities=(primary_identity(row.user_id, row.connection), *linked),
        created_at=row.created_at,
        updated_at=row.updated_at,
        **{name: getattr(row, name) for name in _PROFILE},
    )


def _write(row: UserRow, user: User) -> None:
    row.email = normal_email(user.email)
    row.user_metadata = doc(user.user_metadata)
    row.app_metadata = doc(user.app_metadata)
    row.linked_identities = [_identity_doc(i) for i in user.identities[1:]]
    for name in _PROFILE:
        setattr(row, name, getattr(user, name))


@dataclass
class SqlUsers:
    session: AsyncSession
    clock: Clock

    async def _row(self, user_id: str) -> UserRow:
        row = await self.session.get(UserRow, user_id)
        if row is None:
            raise RecordNotFound(NOT_FOUND)
        return row

    async def get(self, user_id: str) -> User:
        return to_user(await self._row(user_id))

    async def username_taken(self, connection: str, username: str) -> bool:
        """Usernames are unique per connection, compared lower-cased (as they are stored)."""
        found = await self.session.scalar(
            select(UserRow.user_id).where(
                UserRow.connection == connection, UserRow.username == username.lower()
            )
        )
        return found is not None

    async def find(self, user_id: str) -> User | None:
        row = await self.session.get(UserRow, user_id)
        return to_user(row) if row else None

    async def _by_email(self, connection: str, email: str | None) -> UserRow | None:
        if email is None:
            return None
        return await self.session.scalar(
            select(UserRow).where(
                UserRow.connection == connection, UserRow.email == normal_email(email)
            )
        )

    async def by_email(self, connection: str, email: str) -> User | None:
        row = await self._by_email(connection, email)
        return to_user(row) if row else None

    async def all_with_email(self, email: str) -> list[User]:
        """Every user with this (normalised) address, across connections, oldest first."""
        rows = await self.session.scalars(
            select(UserRow)
            .where(UserRow.email == normal_email(email))
            .order_by(UserRow.created_at, UserRow.user_id)
        )
        return [to_user(row) for row in rows]

    async def create(self, user: User, *, connection: str) -> User:
        user_id = user.user_id or new_user_id()
        if await self.session.get(UserRow, user_id) is not None:
            raise AlreadyExists(CONFLICT)
        if await self._by_email(connection, user.email) is not None:
            raise AlreadyExists(CONFLICT)
        now = self.clock.now()
        row = UserRow(
            user_id=user_id,
            connection=connection,
            created_at=user.created_at or now,
            updated_at=user.updated_at or now,
        )
        _write(row, user)
        self.session.add(row)
        await flush(self.session, CONFLICT)
        return to_user(row)

    async def update(self, user: User) -> User:
        row = await self._row(user.user_id)
        existing = await self._by_email(row.connection, user.email)
        if existing is not None and existing.user_id != row.user_id:
            raise AlreadyExists("The specified new email already exists")
        _write(row, user)
        row.updated_at = self.clock.now()
        await flush(self.session, CONFLICT)
        return to_user(row)

    async def delete(self, user_id: str) -> None:
        await delete_row(self.session, await self._row(user_id))

    async def count(self) -> int:
        return await self.session.scalar(select(func.count()).select_from(UserRow)) or 0

    async def count_logged_in_since(self, since: float) -> int:
        """How many users last logged in at or after `since` (epoch seconds): one COUNT that
        reads ix_users_last_login alone. Users who never logged in (NULL) are not counted."""
        stmt = select(func.count()).select_from(UserRow).where(UserRow.last_login >= since)
        return await self.session.scalar(stmt) or 0

    async def many(self, user_ids: Sequence[str]) -> Sequence[User]:
        """The users among `user_ids` that exist, in the order given."""
        rows = await self.session.scalars(select(UserRow).where(UserRow.user_id.in_(user_ids)))
        found = {row.user_id: row for row in rows}
        return [to_user(found[uid]) for uid in user_ids if uid in found]
