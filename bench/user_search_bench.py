"""User search at scale: p50/p95/p99 per query on SQLite and PostgreSQL, and the plans (not a test).

    .venv/bin/python bench/user_search_bench.py [--users 1000000] [--runs 30]
        [--dialects sqlite,postgresql] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Loads N synthetic users into a scratch database (SQLite: /tmp/keystead_user_search_bench.db;
PostgreSQL: database keystead_bench, created here and dropped after): migrated to 0001, bulk
loaded (executemany / COPY), then migrated to head (0002 builds the search indexes, 0004 fills
the search terms of every user, as on an upgrade), then ANALYZE, as a deployment that has run
for a while would have statistics. Each query runs through
storage.user_search.search_users (a page of 50 with include_totals, rows turned into users);
its SQL is captured once and EXPLAINed: a plan line that reads the whole `users` table without
an index is flagged FULL SCAN. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from keystead.storage.db import create_engine
from keystead.storage.migrate import alembic_config, locked_connection
from keystead.storage.user_search import search_users

SQLITE_FILE = Path("/tmp/keystead_user_search_bench.db")
PG_DATABASE = "keystead_bench"
DB = "Username-Password-Authentication"
START, END = 1_546_300_800.0, 1_767_225_600.0  # 2019-01-01 .. 2026-01-01
FIRST = ["james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
         "elizabeth", "william", "barbara", "joseph", "susan", "thomas", "jessica", "charles",
         "sarah", "jane", "joanna", "jorge", "amelie", "lucas", "chloe", "noah", "emma", "liam",
         "olivia", "mateo", "sofia", "yuki", "haruto", "wei", "li", "arjun", "priya", "omar",
         "fatima", "ivan", "olga"] * 5  # fmt: skip
LAST = [f"{s}{t}" for s in ("smith", "garcia", "mueller", "rossi", "dubois", "tanaka", "kim",
        "nguyen", "silva", "kowalski") for t in ("", "son", "berg", "ini", "ez", "ova", "er",
        "man", "ley", "ford")] * 5  # fmt: skip
LANGS = ["en", "en", "en", "fr", "de", "es", "pt", "ja", "zh", "it"]
COLUMNS = ["user_id", "connection", "email", "email_verified", "username", "phone_number",
           "phone_verified", "name", "nickname", "given_name", "family_name", "picture",
           "password_hash", "user_metadata", "app_metadata", "linked_identities", "blocked",
           "created_at", "updated_at", "last_login", "last_ip", "logins_count",
           "last_password_reset"]  # fmt: skip


# 1. synthetic users


def domain(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.30:
        return "gmail.com"
    if r < 0.40:
        return "yahoo.com"
    if r < 0.50:
        return "outlook.com"
    return f"company{rng.randrange(5000)}.com"  # ~100 users each


def user(i: int, rng: random.Random) -> tuple[Any, ...]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    created = rng.uniform(START, END)
    social = i % 10 == 0
    user_id = f"google-oauth2|{10**20 + i}" if social else f"auth0|{i:024x}"
    logins = min(int(rng.expovariate(1 / 40)), 5000) if rng.random() < 0.8 else 0
    plan = rng.choices(["free", "pro", "enterprise"], [70, 25, 5])[0]
    roles = rng.sample(["admin", "dev", "ops", "viewer"], rng.randrange(3))
    app = {"plan": plan, "tenant_id": f"t{i % 20000}", "roles": roles}
    meta = {"lang": rng.choice(LANGS), "theme": rng.choice(["dark", "light"]),
            "prefs": {"newsletter": rng.random() < 0.3}}  # fmt: skip
    linked = []
    if i % 100 == 7:
        github = {"connection": "github", "provider": "github", "user_id": str(i)}
        linked = [github | {"isSocial": True}]
    return (
        user_id, "google-oauth2" if social else DB, f"{first}.{last}{i}@{domain(rng)}",
        rng.random() < 0.7, f"user{i}" if rng.random() < 0.3 else None,
        f"+1555{i:07}" if rng.random() < 0.2 else None, False,
        f"{first.title()} {last.title()}", first, first.title(), last.title(),
        None, None, meta, app, linked, rng.random() < 0.005, created,
        created + rng.uniform(0, 86400 * 30),
        rng.uniform(created, END) if logins else None,
        f"10.{i % 256}.{(i >> 8) % 256}.{(i >> 16) % 256}" if logins else None, logins, None,
    )  # fmt: skip


def batches(n: int, size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
    rng = random.Random(20_260_101)
    for start in range(0, n, size):
        yield [user(i, rng) for i in range(start, min(n, start + size))]


# 2. databases


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def migrate(engine: AsyncEngine, revision: str) -> None:
    async with locked_connection(engine) as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET maintenance_work_mem = '1GB'")
        await conn.run_sync(_upgrade, revision)


async def load_sqlite(n: int) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{SQLITE_FILE}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{SQLITE_FILE}"
    engine = create_engine(url)
    await migrate(engine, "0001")
    marks = ", ".join("?" * len(COLUMNS))
    insert = f"INSERT INTO users ({', '.join(COLUMNS)}) VALUES ({marks})"
    async with engine.begin() as conn:
        for rows in batches(n):
            await conn.exec_driver_sql(insert, [_sqlite_row(r) for r in rows])
    await migrate(engine, "head")
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")
    await engine.dispose()
    return url


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(json.dumps(v) if isinstance(v, dict | list) else v for v in row)


async def load_postgresql(n: int, admin_url: str) -> str:
    base = make_url(admin_url)
    admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username,
                                  password=base.password, database=base.database)  # fmt: skip
    await admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    await admin.close()
    url = base.set(drivername="postgresql", database=PG_DATABASE).render_as_string(False)
    engine = create_engine(url)
    await migrate(engine, "0001")
    con = await asyncpg.connect(host=base.host, port=base.port, user=base.username,
                                password=base.password, database=PG_DATABASE)  # fmt: skip
    for rows in batches(n):
        records = [_sqlite_row(r) for r in rows]  # asyncpg takes jsonb as text
        await con.copy_records_to_table("users", records=records, columns=COLUMNS)
    await con.close()
    await migrate(engine, "head")
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("VACUUM ANALYZE")
    await engine.dispose()
    return url


async def drop_postgresql(admin_url: str) -> None:
    base = make_url(admin_url)
    admin = await asyncpg.connect(host=base.host, port=base.port, user=base.username,
                                  password=base.password, database=base.database)  # fmt: skip
    await admin.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    await admin.close()


# 3. the queries: (label, q per run, sort)


Query = tuple[str, Callable[[int], str | None], str | None]


def queries(samples: dict[str, list[str]]) -> list[Query]:
    def pick(kind: str, fmt: str) -> Callable[[int], str]:
        return lambda run: fmt.format(samples[kind][run % len(samples[kind])])

    def fixed(q: str | None) -> Callable[[int], str | None]:
        return lambda run: q

    return [
        ("email exact", pick("email", 'email:"{}"'), None),
        ("user_id exact", pick("user_id", 'user_id:"{}"'), None),
        ("email.domain common", fixed('email.domain:"gmail.com"'), None),
        ("email.domain rare (~100)", pick("domain", 'email.domain:"{}"'), None),
        ("email prefix", pick("email_prefix", "email:{}*"), None),
        ("name prefix", pick("name_prefix", "name:{}*"), None),
        ("name exact", pick("name", 'name:"{}"'), None),
        ("bare term", pick("first", "{}"), None),
        ('app_metadata.plan:"pro"', fixed('app_metadata.plan:"pro"'), None),
        ('app_metadata.plan:"enterprise"', fixed('app_metadata.plan:"enterprise"'), None),
        ("app_metadata.tenant_id (~50)", pick("tenant", 'app_metadata.tenant_id:"{}"'), None),
        ('user_metadata.lang:"fr"', fixed('user_metadata.lang:"fr"'), None),
        ("user_metadata.prefs.newsletter", fixed("user_metadata.prefs.newsletter:true"), None),
        ("created_at range (1 quarter)", fixed("created_at:[2024-01-01 TO 2024-03-31]"), None),
        ("created_at range (1 day)", fixed("created_at:2025-06-15"), None),
        ("logins_count range", fixed("logins_count:[100 TO 200]"), None),
        ("logins_count high", fixed("logins_count:[2000 TO *]"), None),
        (
            "AND plan + created_at",
            fixed('app_metadata.plan:"pro" AND created_at:[2025-01-01 TO *]'),
            None,
        ),
        (
            "AND domain + logins",
            fixed('email.domain:"gmail.com" AND logins_count:[500 TO *]'),
            None,
        ),
        (
            "OR names AND verified",
            fixed("(name:jo* OR name:ja*) AND email_verified:true"),
            None,
        ),
        ("OR tenants", pick("tenant_pair", "{}"), None),
        (
            "NOT blocked AND plan",
            fixed('app_metadata.plan:"enterprise" AND NOT blocked:true'),
            None,
        ),
        ("blocked:true", fixed("blocked:true"), None),
        ('identities.connection:"github"', fixed('identities.connection:"github"'), None),
        ("identities.provider:google-oauth2", fixed("identities.provider:google-oauth2"), None),
        ("identities.user_id exact", pick("identity", 'identities.user_id:"{}"'), None),
        ("app_metadata.plan prefix", fixed("app_metadata.plan:ent*"), None),
        ("_exists_:app_metadata.roles", fixed("_exists_:app_metadata.roles"), None),
        ("name suffix (no index)", fixed("name:*berg"), None),
        ("all, sort created_at:-1", fixed(None), "created_at:-1"),
        ("all, sort name:1", fixed(None), "name:1"),
        ("all, sort last_login:-1", fixed(None), "last_login:-1"),
        ("plan pro, sort created_at:-1", fixed('app_metadata.plan:"pro"'), "created_at:-1"),
        ("domain rare, sort logins:-1", pick("domain", 'email.domain:"{}"'), "logins_count:-1"),
    ]


def sample_values(n: int) -> dict[str, list[str]]:
    rows = [r for batch in batches(min(n, 50_000)) for r in batch]
    rng = random.Random(7)
    picks = rng.sample(rows, min(200, len(rows)))
    return {
        "email": [r[2] for r in picks],
        "user_id": [r[0] for r in picks],
        "identity": [r[0].partition("|")[2] for r in picks],
        "domain": [f"company{rng.randrange(5000)}.com" for _ in range(200)],
        "email_prefix": [r[2][:6] for r in picks],
        "name_prefix": [r[8][:3] for r in picks],
        "name": [r[7] for r in picks],
        "first": [r[8] for r in picks],
        "tenant": [f"t{rng.randrange(20000)}" for _ in range(200)],
        "tenant_pair": [
            " OR ".join(f'app_metadata.tenant_id:"t{rng.randrange(20000)}"' for _ in range(2))
            for _ in range(200)
        ],
    }


# 4. measuring


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


async def run_one(session: AsyncSession, q: str | None, sort: str | None) -> float:
    start = time.perf_counter()
    await search_users(session, q, sort=sort, offset=0, limit=50, include_total=True)
    return (time.perf_counter() - start) * 1000


async def explain(
    engine: AsyncEngine, session: AsyncSession, q: str | None, sort: str | None
) -> list[str]:
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.startswith("EXPLAIN"):  # SQLite's probe asks for a plan itself
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await search_users(session, q, sort=sort, offset=0, limit=50, include_total=True)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    pg = engine.dialect.name == "postgresql"
    lines: list[str] = []
    conn = await session.connection()
    for statement, parameters in captured:
        prefix = "EXPLAIN " if pg else "EXPLAIN QUERY PLAN "
        rows = (await conn.exec_driver_sql(prefix + statement, parameters)).all()
        plan = [r[0] if pg else "  " * _depth(rows, r) + str(r[-1]) for r in rows]
        full = [i for i, line in enumerate(plan) if _full_scan(line, pg)]
        # A scan right under a Limit stops there: the bounded count of a dense query.
        bounded = all(i > 0 and "Limit" in plan[i - 1] for i in full)
        mark = "FULL SCAN" if full and not bounded else "seq scan, stops at LIMIT" if full else ""
        lines.append(f"  -- {mark} --" if mark else "  --")
        lines.extend("    " + line for line in plan)
    return lines


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _depth(rows: list[Any], row: Any) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


def _full_scan(line: str, pg: bool) -> bool:
    if pg:
        return "Seq Scan on users" in line
    line = line.strip()
    return line.startswith("SCAN users") and "INDEX" not in line


async def bench(name: str, url: str, runs: int, samples: dict[str, list[str]]) -> None:
    engine = create_engine(url)
    print(f"\n=== {name}: p50 / p95 / p99 ms over {runs} runs (page of 50, include_totals)")
    print(f"load average {_load()} on {os.cpu_count()} cores")
    plans: list[str] = []
    summary: list[tuple[str, float, float, float]] = []
    async with AsyncSession(engine) as session:
        for label, make_q, sort in queries(samples):
            for run in range(3):  # warm-up: caches, prepared statements
                await run_one(session, make_q(run), sort)
            times = [await run_one(session, make_q(run), sort) for run in range(runs)]
            row = (label, percentile(times, 0.5), percentile(times, 0.95), percentile(times, 0.99))
            summary.append(row)
            print(f"{label:<36} {row[1]:8.2f} {row[2]:8.2f} {row[3]:8.2f}", flush=True)
            q = make_q(0)
            plans.append(f"\n{label}: q={q!r} sort={sort!r}")
            plans.extend(await explain(engine, session, q, sort))
        lookups = [await run_one(session, f'email:"{e}"', None) for e in samples["email"]]
        lookups += [await run_one(session, f'user_id:"{u}"', None) for u in samples["user_id"]]
        p99 = percentile(lookups, 0.99)
        print(f"{'exact email/id lookups, p99':<36} {p99:8.2f}  ({len(lookups)} lookups)")
        worst = max(summary, key=lambda r: r[2])
        print(f"{'worst p95':<36} {worst[2]:8.2f}  ({worst[0]})")
        print(f"load average {_load()}")
    await engine.dispose()
    print(f"\n--- {name} query plans")
    print("\n".join(plans))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--dialects", default="sqlite,postgresql")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--reuse", action="store_true", help="use what a --keep run left")
    parser.add_argument("--keep", action="store_true", help="leave the databases for --reuse")
    args = parser.parse_args()
    samples = sample_values(args.users)
    for dialect in args.dialects.split(","):
        start = time.perf_counter()
        pg_url = make_url(args.postgres).set(drivername="postgresql", database=PG_DATABASE)
        if args.reuse:
            url = pg_url.render_as_string(False)
            if dialect == "sqlite":
                url = f"sqlite:///{SQLITE_FILE}"
        elif dialect == "sqlite":
            url = await load_sqlite(args.users)
        else:
            url = await load_postgresql(args.users, args.postgres)
        took = time.perf_counter() - start
        done = "reused" if args.reuse else f"loaded and indexed in {took:.0f} s"
        print(f"\n{dialect}: {args.users:,} users {done}")
        try:
            await bench(dialect, url, args.runs, samples)
        finally:
            if dialect == "postgresql" and not args.keep:
                await drop_postgresql(args.postgres)


if __name__ == "__main__":
    asyncio.run(main())
