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
from keystead.core.users import User

PASSWORD = "correct horse battery staple"
CURRENT = hash_password(PASSWORD)


@dataclass
class FakeRecords:
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def record_login(self, user_id: str, *, at: float, ip: str | None) -> None:
        self.calls.append(("login", user_id, at, ip))

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        self.calls.append(("hash", user_id, password_hash))


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
