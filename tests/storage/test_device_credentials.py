"""Device credentials repository: one public key per user, client and device, even when two
requests race past the read that checks for one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import FixedClock
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.errors import AlreadyExists
from keystead.storage.models import ClientRow
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.device_credentials import DUPLICATE, SqlDeviceCredentials

KEY: dict[str, Any] = {"device_name": "phone", "device_id": "dev-1", "value": "cHVibGljIGtleQ"}


@pytest.fixture
async def owner(repos: Repositories, session: AsyncSession, clock: FixedClock) -> tuple[str, str]:
    user = await repos.users.create(
        User(user_id="", email="d@example.com"), connection=DATABASE_CONNECTION
    )
    now = clock.now()
    session.add(
        ClientRow(client_id="app1", name="App", app_type="native",
                  token_endpoint_auth_method="none", config={}, created_at=now, updated_at=now)
    )  # fmt: skip
    await session.flush()
    return user.user_id, "app1"


async def test_a_second_key_for_the_device_is_refused(
    session: AsyncSession, clock: FixedClock, owner: tuple[str, str]
) -> None:
    store = SqlDeviceCredentials(session, clock)
    user_id, client_id = owner
    first = await store.create_public_key(user_id=user_id, client_id=client_id, **KEY)
    assert first.device_id == "dev-1"
    with pytest.raises(AlreadyExists, match=DUPLICATE):
        await store.create_public_key(user_id=user_id, client_id=client_id, **KEY)
    other = await store.create_public_key(user_id=user_id, client_id=client_id,
                                          **KEY | {"device_id": "dev-2"})  # fmt: skip
    assert other.id != first.id


async def test_the_index_catches_a_duplicate_the_read_missed(
    session: AsyncSession,
    clock: FixedClock,
    owner: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two requests both read "no key yet": the second insert is still AlreadyExists (409)."""
    store = SqlDeviceCredentials(session, clock)
    user_id, client_id = owner
    await store.create_public_key(user_id=user_id, client_id=client_id, **KEY)

    async def not_seen_yet(*_: Any) -> None:
        return None

    monkeypatch.setattr(store, "_public_key_id", not_seen_yet)
    with pytest.raises(AlreadyExists, match=DUPLICATE):
        await store.create_public_key(user_id=user_id, client_id=client_id, **KEY)
