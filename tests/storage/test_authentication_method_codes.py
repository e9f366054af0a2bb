"""storage/repositories/authentication_methods: the factor a login asks for, and one-time codes
spent by compare-and-set, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import FixedClock
from keystead.core.mfa import TOTP_TYPE
from keystead.core.sealing import Sealer
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.authentication_methods import SqlAuthenticationMethods


async def _user(repos: Repositories) -> str:
    user = await repos.users.create(
        User(user_id="", email="mfa@example.com"), connection=DATABASE_CONNECTION
    )
    return user.user_id


async def test_the_oldest_confirmed_method_of_the_type_is_the_one_asked_for(
    repos: Repositories, session: AsyncSession, clock: FixedClock, sealer: Sealer
) -> None:
    methods = SqlAuthenticationMethods(session, clock, sealer)
    user_id = await _user(repos)
    assert await methods.first_confirmed(user_id, TOTP_TYPE) is None
    await methods.create(user_id, TOTP_TYPE, confirmed=False, secrets={"totp_secret": "A" * 32})
    await methods.create(user_id, "email", properties={"email": "mfa@example.com"})
    assert await methods.first_confirmed(user_id, TOTP_TYPE) is None  # unconfirmed, other type
    first = await methods.create(user_id, TOTP_TYPE, secrets={"totp_secret": "B" * 32})
    clock.advance(5)
    await methods.create(user_id, TOTP_TYPE, secrets={"totp_secret": "C" * 32})
    found = await methods.first_confirmed(user_id, TOTP_TYPE)
    assert found is not None and found.id == first.id
    assert await methods.first_confirmed("auth0|someone-else", TOTP_TYPE) is None


async def test_a_code_is_spent_once_and_earlier_ones_with_it(
    repos: Repositories, session: AsyncSession, clock: FixedClock, sealer: Sealer
) -> None:
    methods = SqlAuthenticationMethods(session, clock, sealer)
    user_id = await _user(repos)
    method = await methods.create(user_id, TOTP_TYPE, secrets={"totp_secret": "B" * 32})
    assert await methods.spend(user_id, method.id, fresh_before=300.0, mark=310.0)
    assert not await methods.spend(user_id, method.id, fresh_before=300.0, mark=311.0)
    assert not await methods.spend(user_id, method.id, fresh_before=270.0, mark=312.0)
    assert await methods.spend(user_id, method.id, fresh_before=330.0, mark=335.0)
    found = await methods.find(user_id, method.id)
    assert found is not None and found.last_auth_at == 335.0
    # another user's id, or a method that is not there, spends nothing
    assert not await methods.spend("auth0|other", method.id, fresh_before=900.0, mark=900.0)
    assert not await methods.spend(user_id, "totp|dev_missing", fresh_before=900.0, mark=900.0)
