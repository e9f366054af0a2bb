"""The direct user read (storage/user_reads.py) gives what the ORM repository gives, on SQLite
and PostgreSQL: every column type (booleans, times, JSON documents, linked identities)."""

from __future__ import annotations

from keystead.core import linking
from keystead.core.clock import FixedClock
from keystead.core.sealing import Sealer
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.storage.db import create_engine, session_factory
from keystead.storage.migrate import upgrade_to_head
from keystead.storage.repositories import Repositories
from keystead.storage.seed import seed
from keystead.storage.user_reads import find_user
from tests.conftest import ISSUER
from tests.storage.conftest import SECRET_KEY


async def test_the_direct_read_equals_the_repository_read(
    fresh_url: str, clock: FixedClock
) -> None:
    engine = create_engine(fresh_url)
    try:
        await upgrade_to_head(engine)
        sessions = session_factory(engine)
        async with sessions() as session, session.begin():
            await seed(session, ISSUER, clock)
            users = Repositories.over(session, clock, Sealer(SECRET_KEY)).users
            primary = await users.create(
                User(
                    user_id="",
                    email="Reader@Example.com",
                    email_verified=True,
                    blocked=True,
                    name="Ré Ader",
                    user_metadata={"theme": "dark", "nested": {"n": [1, 2.5, None, True]}},
                    app_metadata={"plan": "pro"},
                    password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
                ),
                connection=DATABASE_CONNECTION,
            )
            secondary = await users.create(
                User(user_id="", email="second@example.com"), connection=DATABASE_CONNECTION
            )
            await users.delete(secondary.user_id)
            await users.update(linking.link(primary, secondary))
        async with sessions() as session:
            users = Repositories.over(session, clock, Sealer(SECRET_KEY)).users
            expected = await users.find(primary.user_id)
        found = await find_user(engine, primary.user_id)
        assert expected is not None and found == expected
        assert found.blocked is True and found.email_verified is True
        assert len(found.identities) == 2
        assert await find_user(engine, "auth0|nobody") is None
        assert await find_user(engine, "x" * 5000) is None
    finally:
        await engine.dispose()
