"""user_blocks repository (attack protection counts) on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.bruteforce import IpCount, PairCount
from keystead.storage.repositories.user_blocks import SqlUserBlocks

T0 = 1_700_000_000.0


async def test_pairs_are_created_locked_and_saved(session: AsyncSession) -> None:
    blocks = SqlUserBlocks(session)
    assert await blocks.pair("ada@example.com", "198.51.100.7") is None
    locked = await blocks.locked_pair("ada@example.com", "198.51.100.7", "db", T0)
    assert locked == PairCount(0, None)
    await blocks.save_pair("ada@example.com", "198.51.100.7", PairCount(10, T0), T0)
    again = await blocks.locked_pair("ada@example.com", "198.51.100.7", "other", T0 + 1)
    assert again == PairCount(10, T0)  # ON CONFLICT DO NOTHING: the row is kept as it was
    assert await blocks.blocks(["ada@example.com", "x"]) == [
        ("ada@example.com", "198.51.100.7", "db", PairCount(10, T0))
    ]


async def test_ip_rows_are_not_identifiers(session: AsyncSession) -> None:
    blocks = SqlUserBlocks(session)
    await blocks.locked_ip("2001:db8::1", T0)
    await blocks.save_ip("2001:db8::1", IpCount(3, T0 + 5, T0 + 5))
    assert await blocks.ip("2001:db8::1") == IpCount(3, T0 + 5, T0 + 5)
    assert await blocks.ip(None) is None
    assert await blocks.blocks([""]) == [("", "2001:db8::1", "", PairCount(3, T0 + 5))]
    assert await blocks.clear([""]) == 0  # an unblock never lifts an IP's throttling


async def test_forget_and_clear(session: AsyncSession) -> None:
    blocks = SqlUserBlocks(session)
    for ip in ("198.51.100.7", "198.51.100.8"):
        await blocks.locked_pair("ada@example.com", ip, "db", T0)
    await blocks.locked_pair("bob@example.com", "198.51.100.7", "db", T0)
    await blocks.forget_pair("ada@example.com", "198.51.100.7", "other-db")  # another account's
    assert len(await blocks.blocks(["ada@example.com"])) == 2
    await blocks.forget_pair("ada@example.com", "198.51.100.7", "db")
    await blocks.forget_pair("nobody@example.com", "198.51.100.7", "db")  # nothing to forget
    assert [b[1] for b in await blocks.blocks(["ada@example.com"])] == ["198.51.100.8"]
    assert await blocks.clear(["ada@example.com", "bob@example.com"]) == 2
    assert await blocks.blocks(["ada@example.com", "bob@example.com"]) == []
    assert await blocks.clear([]) == 0


async def test_long_ips_are_cut_to_the_column(session: AsyncSession) -> None:
    blocks = SqlUserBlocks(session)
    long_ip = "fe80::1%" + "x" * 100  # a zone id makes an address longer than any column
    await blocks.locked_pair("ada@example.com", long_ip, "db", T0)
    assert await blocks.pair("ada@example.com", long_ip) == PairCount(0, None)
