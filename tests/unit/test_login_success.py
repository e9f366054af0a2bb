"""core/login_success: what a password login records, on a fake LoginRecords."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bcrypt
import pytest

from keystead.core.login_success import (
    Credential,
    check_password,
    find_credential,
    password_login_succeeded,
)
from keystead.core.passwords import hash_password, verify_password
from keystead.core.users import Identity, User

PASSWORD = "correct horse battery staple"
CURRENT = hash_password(PASSWORD)


@dataclass
class FakeRecords:
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    linked: dict[str, tuple[User, Identity]] = field(default_factory=dict)

    async def record_login(self, user_id: str, *, at: float, ip: str | None) -> None:
        self.calls.append(("login", user_id, at, ip))

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.calls.append(("hash", user_id, password_hash))

    async def set_identity_password_hash(
        self, user_id: str, identity: Identity, password_hash: str
    ) -> None:
        self.calls.append(("identity hash", user_id, identity.user_id, password_hash))

    async def linked_login(self, connection: str, email: str) -> tuple[User, Identity] | None:
        return self.linked.get(email.lower())


@dataclass
class FakeUsers:
    users: dict[str, User]

    async def by_email(self, connection: str, email: str) -> User | None:
        return self.users.get(email.lower())


async def test_a_current_hash_is_kept() -> None:
    records = FakeRecords()
    user = User(user_id="auth0|a", password_hash=CURRENT)
    await password_login_succeeded(records, Credential(user, CURRENT), PASSWORD, at=5.0, ip="ip")
    assert records.calls == [("login", "auth0|a", 5.0, "ip")]


async def test_a_bcrypt_hash_is_replaced_by_argon2id() -> None:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    records = FakeRecords()
    user = User(user_id="auth0|a", password_hash=legacy)
    await password_login_succeeded(records, Credential(user, legacy), PASSWORD, at=5.0, ip=None)
    assert records.calls[0] == ("login", "auth0|a", 5.0, None)
    (_, user_id, upgraded) = records.calls[1]
    assert user_id == "auth0|a" and upgraded.startswith("$argon2id$")
    assert verify_password(upgraded, PASSWORD)


@pytest.mark.parametrize(
    ("email", "password", "matches"),
    [
        ("A@example.com", PASSWORD, True),
        ("a@example.com", "wrong", False),
        ("nobody@example.com", PASSWORD, False),
        ("nohash@example.com", PASSWORD, False),
    ],
)
async def test_find_and_check(email: str, password: str, matches: bool) -> None:
    users = FakeUsers(
        {
            "a@example.com": User(user_id="auth0|a", password_hash=CURRENT),
            "nohash@example.com": User(user_id="auth0|n"),
        }
    )
    credential = await find_credential(users, FakeRecords(), "db", email)
    assert await check_password(credential, password) is matches


async def test_a_linked_identity_logs_in_as_the_primary_and_keeps_its_hash() -> None:
    legacy = bcrypt.hashpw(b"second", bcrypt.gensalt(rounds=4)).decode()
    primary = User(user_id="auth0|p", password_hash=CURRENT)
    identity = Identity("db", "auth0", "s", password_hash=legacy)
    records = FakeRecords(linked={"s@example.com": (primary, identity)})
    credential = await find_credential(FakeUsers({}), records, "db", "S@example.com")
    assert credential == Credential(primary, legacy, identity)
    assert await check_password(credential, "second")
    assert not await check_password(credential, PASSWORD)  # the primary's own does not open it
    await password_login_succeeded(records, credential, "second", at=1.0, ip=None)
    assert records.calls[0] == ("login", "auth0|p", 1.0, None)
    (kind, user_id, local_id, upgraded) = records.calls[1]
    assert (kind, user_id, local_id) == ("identity hash", "auth0|p", "s")
    assert verify_password(upgraded, "second") and upgraded.startswith("$argon2id$")
