"""A password login, found and recorded the same way by /u/login and the password grants.

find_credential   the stored hash that an (connection, email) pair logs in with: the
                  user's own, else a linked identity's (contract §9.6: a login with a
                  linked secondary authenticates as the primary user)
check_password    verify it off the event loop; no credential still costs one hash
password_login_succeeded
                  last_login, last_ip, logins_count + 1, and the hash replaced by argon2id
                  when it was imported (bcrypt) or outdated, through targeted updates
                  (a whole-row write could undo a concurrent metadata change)
password_checked  only the hash replacement, when a second factor is still owed (the login
                  is recorded once the code is accepted)
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from keystead.core.passwords import hash_password, needs_rehash, verify_dummy, verify_password
from keystead.core.users import Identity, User


class LoginRecords(Protocol):
    """Targeted writes on one user row (storage/login_records.py)."""

    async def record_login(self, user_id: str, *, at: float, ip: str | None) -> None:
        """last_login, last_ip and logins_count + 1; nothing else of the row changes."""

    async def set_password_hash(self, user_id: str, password_hash: str) -> None: ...

    async def set_identity_password_hash(
        self, user_id: str, identity: Identity, password_hash: str
    ) -> None:
        """The hash kept by the linked identity (provider, user_id) of `user_id`."""

    async def linked_login(self, connection: str, email: str) -> tuple[User, Identity] | None:
        """The primary user holding a linked identity of `connection` with this email and a
        password hash, and that identity."""


class UserLookup(Protocol):
    async def by_email(self, connection: str, email: str) -> User | None: ...


@dataclass(frozen=True)
class Credential:
    """Who logs in, and the hash that proves it."""

    user: User  # the user the session and tokens are for (the primary, for a linked identity)
    password_hash: str | None
    identity: Identity | None = None  # the linked identity whose hash this is, if not the user's


async def find_credential(
    users: UserLookup, records: LoginRecords, connection: str, email: str
) -> Credential | None:
    """The user's own row first; a linked identity only when no user has the address."""
    user = await users.by_email(connection, email)
    if user is not None:
        return Credential(user, user.password_hash)
    linked = await records.linked_login(connection, email)
    if linked is None:
        return None
    primary, identity = linked
    return Credential(primary, identity.password_hash, identity)


async def check_password(credential: Credential | None, password: str) -> bool:
    """argon2/bcrypt in a worker thread; an unknown user or a user without a password pays
    for one dummy verification, so timing tells nothing."""
    if credential is None or not credential.password_hash:
        return await asyncio.to_thread(verify_dummy, password)
    return await asyncio.to_thread(verify_password, credential.password_hash, password)


async def password_login_succeeded(
    records: LoginRecords, credential: Credential, password: str, *, at: float, ip: str | None
) -> None:
    """Record the login; replace an imported or outdated hash now that the password is known.
    The new hash is computed before any write, so no row lock waits on argon2."""
    upgraded = await _upgraded_hash(credential, password)
    await records.record_login(credential.user.user_id, at=at, ip=ip)
    await _store_hash(records, credential, upgraded)


async def password_checked(records: LoginRecords, credential: Credential, password: str) -> None:
    """The password was right but the login is not over (a second factor is owed): replace an
    imported or outdated hash while the password is known; the login is recorded later."""
    await _store_hash(records, credential, await _upgraded_hash(credential, password))


async def _upgraded_hash(credential: Credential, password: str) -> str | None:
    stored = credential.password_hash
    if stored and needs_rehash(stored):
        return await asyncio.to_thread(hash_password, password)
    return None


async def _store_hash(records: LoginRecords, credential: Credential, upgraded: str | None) -> None:
    if upgraded is None:
        return
    if credential.identity is None:
        await records.set_password_hash(credential.user.user_id, upgraded)
    else:
        await records.set_identity_password_hash(
            credential.user.user_id, credential.identity, upgraded
        )
