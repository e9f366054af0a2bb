"""Authorization codes and refresh tokens at rest, on SQLite (statements on the driver itself,
storage/driver_sql.py) and PostgreSQL (the same statements through SQLAlchemy): single use,
compare-and-set rotation, family revocation, values round-tripped with their types."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.core.codes import AuthorizationCode
from keystead.core.refresh_tokens import NewRefreshToken
from keystead.core.sealing import Sealer
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.codes import SqlCodes
from keystead.storage.repositories.refresh_tokens import SqlRefreshTokens


async def _owner(repos: Repositories) -> tuple[str, str]:
    client = await repos.clients.create(Client(client_id="", name="app", app_type="spa"))
    user = await repos.users.create(
        User(user_id="", email="owner@example.com"), connection=DATABASE_CONNECTION
    )
    return client.client_id, user.user_id


async def test_a_code_is_redeemed_once(
    repos: Repositories, session: AsyncSession, clock: FixedClock
) -> None:
    client_id, user_id = await _owner(repos)
    codes = SqlCodes(session, clock)
    issued = AuthorizationCode(
        client_id=client_id, user_id=user_id, redirect_uri="https://app.example/cb",
        scope=("openid", "profile"), audience="https://api.example/", nonce="n-1",
        code_challenge="c" * 43, code_challenge_method="S256", auth_time=1_699_999_000,
        sid="sid-1", family_id="family-1", expires_at=clock.now() + 60,
    )  # fmt: skip
    value = await codes.create(issued)
    first = await codes.consume(value)
    assert first.code == issued and not first.replayed
    again = await codes.consume(value)
    assert again.code == issued and again.replayed
    assert (await codes.consume("no-such-code")).code is None
    stale = await codes.create(
        AuthorizationCode(**{**issued.__dict__, "expires_at": clock.now() - 1})
    )
    assert (await codes.consume(stale)).code is None  # expired, never used


async def test_refresh_tokens_rotate_once_and_die_with_their_family(
    repos: Repositories, session: AsyncSession, clock: FixedClock, sealer: Sealer
) -> None:
    client_id, user_id = await _owner(repos)
    store = SqlRefreshTokens(session, clock, sealer)
    new = NewRefreshToken(
        family_id="fam-1", client_id=client_id, user_id=user_id, scope=("openid", "offline_access"),
        audience="https://api.example/", auth_time=1_699_999_000.0, sid="sid-1",
        family_expires_at=clock.now() + 3600, idle_expires_at=clock.now() + 600,
        device_name="phone",
    )  # fmt: skip
    created = await store.create("token-1", new)
    found = await store.find("token-1")
    assert found == created
    assert found is not None and found.scope == ("openid", "offline_access")
    assert found.rotated_at is None and found.rotation_result is None

    assert await store.rotate("token-1", now=clock.now(), result=b"kept answer")
    assert not await store.rotate("token-1", now=clock.now(), result=b"second")  # lost the CAS
    rotated = await store.find("token-1")
    assert rotated is not None and rotated.rotated_at == clock.now()
    assert rotated.rotation_result == b"kept answer"  # sealed at rest, opened on the way out

    await store.touch("token-1", idle_expires_at=clock.now() + 900)
    touched = await store.find("token-1")
    assert touched is not None and touched.idle_expires_at == clock.now() + 900
    await store.clear_result(rotated.id)
    cleared = await store.find("token-1")
    assert cleared is not None and cleared.rotation_result is None

    child = await store.create(
        "token-2", NewRefreshToken(**{**new.__dict__, "parent_id": rotated.id})
    )
    assert child.parent_id == rotated.id
    assert await store.revoke_family("fam-1", now=clock.now()) == 2
    assert await store.revoke_family("fam-1", now=clock.now()) == 0
    dead = await store.find("token-2")
    assert dead is not None and dead.revoked_at == clock.now()
    assert await store.find("no-such-token") is None
