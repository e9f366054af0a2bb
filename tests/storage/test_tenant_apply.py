"""Applying tenant files: idempotent upserts, secrets, and all-or-nothing on errors.

Runs on SQLite and on PostgreSQL (the `backend` fixture of tests/storage/conftest.py); the schema
comes from the models (created once per backend), and each test starts from an emptied database
with only the seeded system records.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from sqlalchemy import func, select

from keystead.core.clock import FixedClock
from keystead.core.passwords import verify_password
from keystead.core.sealing import Sealer
from keystead.core.tenant import parse_tenant
from keystead.deps import AppState
from keystead.errors import ConfigError
from keystead.settings import Settings
from keystead.storage.db import Base, create_engine, session_factory
from keystead.storage.models import (
    ClientGrantRow,
    ClientRow,
    ResourceServerRow,
    RolePermissionRow,
    RoleRow,
    TenantSettingRow,
    UserRoleRow,
    UserRow,
)
from keystead.storage.seed import seed
from keystead.storage.tenant import apply_tenant, apply_tenant_file
from keystead.storage.tenant_run import ApplySummary
from tests.conftest import ISSUER

DEMO = Path(__file__).parents[2] / "examples" / "demo-tenant.yaml"
SECRET_KEY = "tenant-apply-tests-secret-key"
SPA_ID = "KeysteadDemoSpa00000000000000001"
M2M_ID = "KeysteadDemoM2M00000000000000001"
MANAGEMENT_API = ISSUER + "api/v2/"


@pytest.fixture(scope="session")
def tenant_databases() -> dict[str, str]:
    """One database per backend for this module, schema created once (tests empty it)."""
    return {}


@pytest.fixture
def tenant_url(
    backend: str, tenant_databases: dict[str, str], request: pytest.FixtureRequest
) -> str:
    if backend not in tenant_databases:
        if backend == "sqlite":
            tmp = request.getfixturevalue("tmp_path_factory").mktemp("tenant")
            url = f"sqlite:///{tmp / 'tenant.db'}"
        else:
            url = request.getfixturevalue("scratch").create()
        asyncio.run(_create_schema(url))
        tenant_databases[backend] = url
    return tenant_databases[backend]


async def _create_schema(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await engine.dispose()


@pytest.fixture
async def state(tenant_url: str, clock: FixedClock) -> AsyncIterator[AppState]:
    url = tenant_url
    settings = Settings(issuer=ISSUER, database_url=url, secret_key=SECRET_KEY)
    engine = create_engine(url)
    app_state = AppState(
        settings=settings.with_defaults(),
        engine=engine,
        sessions=session_factory(engine),
        clock=clock,
    )
    async with app_state.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(table.delete())
        await seed(session, ISSUER, clock)
    try:
        yield app_state
    finally:
        await engine.dispose()


async def snapshot(state: AppState) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with state.sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


async def count(state: AppState, row_type: Any) -> int:
    async with state.sessions() as session:
        return await session.scalar(select(func.count()).select_from(row_type)) or 0


async def one(state: AppState, stmt: Any) -> Any:
    async with state.sessions() as session:
        return (await session.scalars(stmt)).one()


def write(tmp_path: Path, doc: dict[str, Any], name: str = "tenant.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def outcome(summary: ApplySummary, kind: str) -> tuple[int, int, int]:
    c = summary.counts[kind]
    return c["created"], c["updated"], c["unchanged"]


# --- the demo tenant ---------------------------------------------------------------------------


async def test_demo_tenant_applies_and_reapplies_without_changes(state: AppState) -> None:
    first = await apply_tenant_file(state, DEMO, environ={})
    assert outcome(first, "clients") == (2, 0, 0)
    assert outcome(first, "resourceServers") == (1, 0, 0)
    assert outcome(first, "clientGrants") == (2, 0, 0)
    assert outcome(first, "users") == (2, 0, 0)
    assert outcome(first, "roles") == (1, 0, 0)
    assert first.generated == []
    before = await snapshot(state)

    second = await apply_tenant_file(state, DEMO, environ={})
    for kind in ("clients", "resourceServers", "clientGrants", "users", "roles"):
        assert outcome(second, kind)[:2] == (0, 0), kind
    assert await snapshot(state) == before  # not one byte changed, password hashes included


async def test_demo_rows_hold_what_the_server_needs(state: AppState) -> None:
    await apply_tenant_file(state, DEMO, environ={})
    spa = await one(state, select(ClientRow).where(ClientRow.client_id == SPA_ID))
    assert spa.app_type == "spa" and spa.token_endpoint_auth_method == "none"
    assert spa.secret_digest is None and spa.secret_stored is None
    assert spa.config["callbacks"][0] == "http://localhost:3000"
    assert spa.config["refresh_token"]["rotation_type"] == "rotating"
    assert spa.config["refresh_token"]["leeway"] == 10

    m2m = await one(state, select(ClientRow).where(ClientRow.client_id == M2M_ID))
    assert m2m.secret_digest == hashlib.sha256(b"demo-m2m-secret").digest()
    assert m2m.secret_encrypted is True
    assert b"demo-m2m-secret" not in m2m.secret_stored
    assert Sealer(SECRET_KEY).open(m2m.secret_stored) == b"demo-m2m-secret"

    grant = await one(
        state, select(ClientGrantRow).where(ClientGrantRow.audience == MANAGEMENT_API)
    )
    assert grant.client_id == M2M_ID and "read:users" in grant.scope
    assert grant.id.startswith("cgr_")

    alice = await one(state, select(UserRow).where(UserRow.email == "alice@example.com"))
    assert alice.user_id.startswith("auth0|") and len(alice.user_id) == len("auth0|") + 24
    assert alice.connection == "Username-Password-Authentication"
    assert alice.password_hash.startswith("$argon2id$")
    assert verify_password(alice.password_hash, "alice-demo-password")
    assert alice.user_metadata == {"theme": "dark"} and alice.app_metadata == {"plan": "pro"}
    assert alice.nickname == "alice" and alice.email_verified is True

    role = await one(state, select(RoleRow))
    assert role.id.startswith("rol_")
    assert await count(state, RolePermissionRow) == 2
    member = await one(state, select(UserRoleRow))
    assert (member.user_id, member.role_id) == (alice.user_id, role.id)


async def test_changed_secret_from_the_environment_is_stored(state: AppState) -> None:
    await apply_tenant_file(state, DEMO, environ={})
    summary = await apply_tenant_file(state, DEMO, environ={"KEYSTEAD_DEMO_M2M_SECRET": "rotated"})
    assert outcome(summary, "clients") == (0, 1, 1)
    m2m = await one(state, select(ClientRow).where(ClientRow.client_id == M2M_ID))
    assert m2m.secret_digest == hashlib.sha256(b"rotated").digest()
    assert Sealer(SECRET_KEY).open(m2m.secret_stored) == b"rotated"
    assert await count(state, ClientRow) == 2


# --- all or nothing ----------------------------------------------------------------------------


async def test_error_found_while_applying_changes_nothing(state: AppState, tmp_path: Path) -> None:
    await apply_tenant_file(state, DEMO, environ={})
    before = await snapshot(state)
    doc = yaml.safe_load(DEMO.read_text())
    doc["clients"][0]["name"] = "Renamed SPA"  # would be updated…
    doc["users"].append({"email": "carol@example.com", "password": "carol-demo-password"})
    doc["roles"][0]["users"].append("nobody@example.com")  # …but this user does not exist
    with pytest.raises(ConfigError) as info:
        await apply_tenant_file(state, write(tmp_path, doc), environ={})
    assert str(info.value) == (
        f"{tmp_path / 'tenant.yaml'}: roles[0].users[1]: no user nobody@example.com in the file "
        "or the database"
    )
    assert await snapshot(state) == before


async def test_parse_error_changes_nothing(state: AppState, tmp_path: Path) -> None:
    before = await snapshot(state)
    doc = yaml.safe_load(DEMO.read_text())
    doc["clients"][0]["callbacks"] = ["https://app.example/cb#token"]
    with pytest.raises(ConfigError, match=r"clients\[0\]\.callbacks\[0\]: .* fragment"):
        await apply_tenant_file(state, write(tmp_path, doc), environ={})
    assert await snapshot(state) == before


# Files that parse but name what neither they nor the database define (demo tenant applied).
BAD_REFERENCES = [
    (
        {"resourceServers": [{"identifier": MANAGEMENT_API}]},
        "resourceServers[0].identifier: the Management API is built in",
    ),
    (
        {"clientGrants": [{"client_id": "ghost", "audience": MANAGEMENT_API}]},
        "clientGrants[0].client_id: no client 'ghost' in the file or the database",
    ),
    (
        {"clientGrants": [{"client_id": SPA_ID, "audience": MANAGEMENT_API}]},
        f"clientGrants[0].client_id: {SPA_ID} is a public client",
    ),
    (
        {"clientGrants": [{"client_id": M2M_ID, "audience": "https://nope.example/"}]},
        "clientGrants[0].audience: no API with identifier https://nope.example/",
    ),
    (
        {"clientGrants": [{"client_id": M2M_ID, "audience": "{issuer}api/v2/",
                           "scope": ["read:users", "read:everything"]}]},
        f"clientGrants[0].scope: not defined by {MANAGEMENT_API}: read:everything",
    ),
    (
        {"roles": [{"name": "r", "permissions": [{
            "resource_server_identifier": MANAGEMENT_API, "permission_name": "rule:all"}]}]},
        f"roles[0].permissions[0].permission_name: 'rule:all' is not a scope of "
        f"{MANAGEMENT_API}",
    ),
    (
        {"users": [{"email": "alice@example.com", "password": "another-password",
                    "user_id": "auth0|0123456789abcdef01234567"}]},
        "users[0].user_id: alice@example.com already exists as auth0|",
    ),
    (
        {"clients": [{"name": "Demo SPA", "app_type": "spa"},
                     {"client_id": SPA_ID, "name": "SPA renamed", "app_type": "spa"}]},
        f"clients[0].name: the client named 'Demo SPA' is {SPA_ID}, which clients[1] defines",
    ),
    (
        {"settings": {"default_audience": "https://unknown.example/"}},
        "settings.default_audience: no API with identifier https://unknown.example/",
    ),
]  # fmt: skip


async def test_references_are_checked_against_the_database(state: AppState, tmp_path: Path) -> None:
    # One demo apply for every case: each failed apply must leave the database as it was.
    await apply_tenant_file(state, DEMO, environ={})
    before = await snapshot(state)
    for change, message in BAD_REFERENCES:
        with pytest.raises(ConfigError) as info:
            await apply_tenant_file(state, write(tmp_path, change), environ={})
        assert str(info.value).startswith(f"{tmp_path / 'tenant.yaml'}: ")
        assert message in str(info.value)
    assert await snapshot(state) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.yaml", "missing.yaml: tenant file not found"),
        (lambda p: p, ": is a directory, not a tenant file"),
        (lambda p: (p / "latin1.yaml", (p / "latin1.yaml").write_bytes(b"\xff\xfe"))[0],
         "latin1.yaml: tenant file is not UTF-8 text"),
    ],
)  # fmt: skip
async def test_unreadable_files_give_one_clear_line(
    state: AppState, tmp_path: Path, make: Any, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        await apply_tenant_file(state, make(tmp_path), environ={})
    assert str(info.value).endswith(message)
    assert "\n" not in str(info.value)


# --- generated ids and secrets, users, settings ------------------------------------------------


async def test_missing_client_id_and_secret_are_generated_once(
    state: AppState, tmp_path: Path
) -> None:
    client = {"name": "Reports", "app_type": "regular_web", "callbacks": ["https://r.example/"]}
    path = write(tmp_path, {"clients": [client]})
    first = await apply_tenant_file(state, path, environ={})
    [generated] = first.generated
    assert generated.client_id_generated and len(generated.client_id) == 32
    assert generated.client_secret is not None and len(generated.client_secret) == 64
    text = str(first)
    assert f"generated client_id for 'Reports': {generated.client_id}" in text
    assert f"generated client_secret for {generated.client_id}: {generated.client_secret}" in text

    second = await apply_tenant_file(state, path, environ={})
    assert second.generated == []  # the client is found by name; its secret is kept
    assert outcome(second, "clients") == (0, 0, 1)
    row = await one(state, select(ClientRow).where(ClientRow.name == "Reports"))
    assert row.client_id == generated.client_id
    assert row.secret_digest == hashlib.sha256(generated.client_secret.encode()).digest()


async def test_users_change_only_the_fields_the_file_states(
    state: AppState, tmp_path: Path
) -> None:
    await apply_tenant_file(state, DEMO, environ={})
    async with state.transaction() as session:
        alice = (
            await session.scalars(select(UserRow).where(UserRow.name == "Alice Example"))
        ).one()
        alice.user_metadata = {"theme": "light", "set_by": "alice"}
        alice.logins_count = 3
        old_hash = alice.password_hash
    bob_hash = bcrypt.hashpw(b"bob-imported-pw", bcrypt.gensalt(rounds=4)).decode()
    doc = {
        "users": [
            {"email": "ALICE@example.com", "password": "alice-new-password", "family_name": "E"},
            {"email": "bob@example.com", "password_hash": bob_hash},
        ]
    }
    summary = await apply_tenant_file(state, write(tmp_path, doc), environ={})
    assert outcome(summary, "users") == (0, 2, 0)
    alice = await one(state, select(UserRow).where(UserRow.email == "alice@example.com"))
    assert alice.user_metadata == {"theme": "light", "set_by": "alice"}  # not in the file: kept
    assert alice.logins_count == 3 and alice.family_name == "E" and alice.name == "Alice Example"
    assert alice.password_hash != old_hash
    assert verify_password(alice.password_hash, "alice-new-password")
    bob = await one(state, select(UserRow).where(UserRow.email == "bob@example.com"))
    assert bob.password_hash == bob_hash  # imported as is, upgraded at the next login
    assert verify_password(bob.password_hash, "bob-imported-pw")


async def test_settings_are_stored_one_row_per_key(state: AppState, tmp_path: Path) -> None:
    doc = {
        "settings": {
            "default_audience": "{issuer}api/v2/",
            "self_service": {"user_metadata": {"writable": ["theme"]}},
            "rateLimits": {"preset": "auth0-free"},
        }
    }
    summary = await apply_tenant_file(state, write(tmp_path, doc), environ={})
    assert outcome(summary, "settings") == (3, 0, 0)
    async with state.sessions() as session:
        rows = {r.name: r.value for r in await session.scalars(select(TenantSettingRow))}
    assert rows["default_audience"] == MANAGEMENT_API
    assert rows["self_service"] == {"user_metadata": {"writable": ["theme"]}}
    assert rows["rateLimits"] == {"preset": "auth0-free"}
    doc["settings"]["rateLimits"] = {"preset": "self-hosted"}
    summary = await apply_tenant_file(state, write(tmp_path, doc), environ={})
    assert outcome(summary, "settings") == (0, 1, 2)


async def test_hs256_signing_secret_is_sealed_and_kept(state: AppState, tmp_path: Path) -> None:
    api = {"identifier": "https://hs.example/", "signing_alg": "HS256",
           "signing_secret": "${HS_SECRET}", "scopes": [{"value": "read:x"}]}  # fmt: skip
    path = write(tmp_path, {"resourceServers": [api]})
    env = {"HS_SECRET": "a-long-enough-hs256-secret"}
    await apply_tenant_file(state, path, environ=env)
    row = await one(state, select(ResourceServerRow).where(ResourceServerRow.is_system.is_(False)))
    sealed = row.config["signing_secret_sealed"]
    assert row.config["signing_secret_encrypted"] is True
    assert Sealer(SECRET_KEY).open(sealed.encode()) == b"a-long-enough-hs256-secret"
    assert "signing_secret" not in row.config
    summary = await apply_tenant_file(state, path, environ=env)
    assert outcome(summary, "resourceServers") == (0, 0, 1)


async def test_apply_tenant_works_on_a_callers_session(state: AppState) -> None:
    spec = parse_tenant(DEMO.read_text(), source="demo.yaml", environ={})
    async with state.sessions() as session:
        summary = await apply_tenant(
            session, spec, issuer=ISSUER, clock=state.clock, sealer=Sealer(SECRET_KEY)
        )
        assert outcome(summary, "users") == (2, 0, 0)
        await session.rollback()  # apply_tenant never commits: the caller decides
    assert await count(state, UserRow) == 0
    assert await count(state, ResourceServerRow) == 1  # only the seeded Management API
