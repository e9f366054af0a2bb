"""Apply a tenant file to the database: upserts in one transaction (core/tenant.py parses it).

    resourceServers → settings → clients → clientGrants → users → roles

Entries are matched by `client_id` (or, without one, by client name), API `identifier`, the
grant's (client_id, audience), user email and role name. Clients, APIs and grants take exactly
what the file says; users change only the fields the file states; role permissions are set to
the file's list and its `users` are added. Nothing is deleted. Any error raises ConfigError
naming file, entry and field, and the caller's transaction rolls everything back.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.passwords import hash_password, needs_rehash, verify_password
from keystead.core.sealing import Sealer
from keystead.core.tenant import (
    ClientSpec,
    ResourceServerSpec,
    RoleSpec,
    TenantSpec,
    UserSpec,
    missing_scopes,
    parse_tenant,
)
from keystead.core.users import DATABASE_CONNECTION
from keystead.deps import AppState
from keystead.errors import ConfigError
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
from keystead.storage.repositories.clients import secret_digest
from keystead.storage.repositories.ids import (
    new_client_grant_id,
    new_client_id,
    new_client_secret,
    new_resource_server_id,
    new_role_id,
    new_user_id,
)
from keystead.storage.seed import management_api_identifier

KINDS = ("settings", "resourceServers", "clients", "clientGrants", "users", "roles")
# Where storage/repositories/resource_servers.py keeps an HS256 API's sealed signing secret.
_SEALED, _ENCRYPTED = "signing_secret_sealed", "signing_secret_encrypted"


@dataclass(frozen=True)
class GeneratedCredential:
    """A client_id or secret the file did not give: printed once so the operator can use it."""

    name: str
    client_id: str
    client_id_generated: bool
    client_secret: str | None = field(default=None, repr=False)


@dataclass
class ApplySummary:
    source: str
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: {"created": 0, "updated": 0, "unchanged": 0} for k in KINDS}
    )
    generated: list[GeneratedCredential] = field(default_factory=list)

    def count(self, kind: str, outcome: str) -> None:
        self.counts[kind][outcome] += 1

    def lines(self) -> list[str]:
        parts = [
            f"{kind} {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
            for kind, c in self.counts.items()
            if any(c.values())
        ]
        out = [f"{self.source}: " + ("; ".join(parts) if parts else "nothing to apply")]
        for g in self.generated:
            if g.client_id_generated:
                out.append(f"  generated client_id for {g.name!r}: {g.client_id}")
            if g.client_secret is not None:
                out.append(f"  generated client_secret for {g.client_id}: {g.client_secret}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


async def apply_tenant_file(
    state: AppState, path: str | os.PathLike[str], environ: Mapping[str, str] = os.environ
) -> ApplySummary:
    """Read, parse and apply a tenant file in one transaction of `state`."""
    text = read_tenant_file(path)
    spec = parse_tenant(text, source=str(path), environ=environ)
    async with state.transaction() as session:
        return await apply_tenant(
            session,
            spec,
            issuer=state.settings.issuer,
            clock=state.clock,
            sealer=Sealer(state.settings.secret_key),
        )


def read_tenant_file(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: tenant file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a tenant file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: tenant file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read tenant file: {exc.strerror}") from None


async def apply_tenant(
    session: AsyncSession, spec: TenantSpec, *, issuer: str, clock: Clock, sealer: Sealer
) -> ApplySummary:
    """Upsert everything in `spec`; never commits (the caller's transaction decides)."""
    run = _Run(
        session,
        spec.with_issuer(issuer),
        management_api_identifier(issuer),
        clock.now(),
        sealer,
        ApplySummary(spec.source),
    )
    try:
        for step in (
            run.resource_servers,
            run.settings,
            run.clients,
            run.client_grants,
            run.users,
            run.roles,
        ):
            await step()
            await session.flush()
    except IntegrityError as exc:  # a concurrent writer; the checks above prevent the rest
        raise ConfigError(
            f"{spec.source}: conflicting change in the database: {exc.orig}"
        ) from None
    return run.summary


def _assign(row: Any, values: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; True when anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, copy.deepcopy(value))  # JSON columns must not alias the spec
            changed = True
    return changed


@dataclass
class _Run:
    session: AsyncSession
    spec: TenantSpec
    management_api: str
    now: float
    sealer: Sealer
    summary: ApplySummary

    def error(self, at: str, message: str) -> ConfigError:
        return self.spec.error(at, message)

    def _saved(self, kind: str, created: bool, changed: bool) -> None:
        self.summary.count(kind, "created" if created else "updated" if changed else "unchanged")

    async def _api(self, identifier: str) -> ResourceServerRow | None:
        return await self.session.scalar(
            select(ResourceServerRow).where(ResourceServerRow.identifier == identifier)
        )

    async def _user_by_email(self, email: str) -> UserRow | None:
        return await self.session.scalar(
            select(UserRow).where(UserRow.connection == DATABASE_CONNECTION, UserRow.email == email)
        )

    # 1. APIs first: settings, grants and roles refer to them.
    async def resource_servers(self) -> None:
        for rs in self.spec.resource_servers:
            if rs.identifier == self.management_api:
                raise self.error(
                    f"{rs.at}.identifier",
                    "the Management API is built in and "
                    "cannot be redefined (use clientGrants to give access)",
                )
            row = await self._api(rs.identifier)
            if row is not None and row.is_system:
                raise self.error(f"{rs.at}.identifier", "is a system API and cannot be changed")
            config = self._api_config(rs, row)
            if row is None:
                self.session.add(
                    ResourceServerRow(
                        id=new_resource_server_id(),
                        identifier=rs.identifier,
                        name=rs.name,
                        config=config,
                        created_at=self.now,
                        updated_at=self.now,
                    )
                )
                self._saved("resourceServers", True, False)
                continue
            changed = _assign(row, {"name": rs.name, "config": config})
            if changed:
                row.updated_at = self.now
            self._saved("resourceServers", False, changed)

    def _api_config(self, rs: ResourceServerSpec, row: ResourceServerRow | None) -> dict[str, Any]:
        config = rs.config()
        if rs.signing_secret is None:
            return config
        old = row.config if row is not None else {}
        if old.get(_SEALED) is not None and self._opens_to(old, rs.signing_secret):
            config[_SEALED], config[_ENCRYPTED] = old[_SEALED], old.get(_ENCRYPTED, False)
        else:
            config[_SEALED] = self.sealer.seal(rs.signing_secret.encode()).decode()
            config[_ENCRYPTED] = self.sealer.encrypts
        return config

    def _opens_to(self, old: Mapping[str, Any], secret: str) -> bool:
        try:
            stored = self.sealer.open(old[_SEALED].encode(), encrypted=old.get(_ENCRYPTED, False))
        except ConfigError:  # sealed under another key: seal again under the current one
            return False
        return hmac.compare_digest(stored, secret.encode())

    async def settings(self) -> None:
        audience = self.spec.settings.get("default_audience")
        if audience and await self._api(audience) is None:
            raise self.error("settings.default_audience", f"no API with identifier {audience}")
        for name, value in self.spec.settings.items():
            row = await self.session.get(TenantSettingRow, name)
            if row is None:
                # Stored as given: a mapping for most settings, a string for default_audience.
                self.session.add(TenantSettingRow(name=name, value=copy.deepcopy(value)))
                self._saved("settings", True, False)
            else:
                self._saved("settings", False, _assign(row, {"value": value}))

    # 2. Clients, with their secrets hashed for checks and sealed for `read:client_keys`.
    async def clients(self) -> None:
        for c in self.spec.clients:
            row = await self._client_row(c)
            if row is not None and row.is_system:
                raise self.error(f"{c.at}.client_id", "is a system client and cannot be changed")
            client_id = c.client_id or (row.client_id if row is not None else new_client_id())
            values = {
                "name": c.name,
                "app_type": c.app_type,
                "token_endpoint_auth_method": c.token_endpoint_auth_method,
                "config": c.config(),
            }
            created = row is None
            if row is None:
                row = ClientRow(
                    client_id=client_id,
                    is_system=False,
                    created_at=self.now,
                    updated_at=self.now,
                    **values,
                )
                self.session.add(row)
                changed = True
            else:
                changed = _assign(row, values)
            secret_changed, generated = self._store_secret(row, c)
            changed = changed or secret_changed
            if changed and not created:
                row.updated_at = self.now
            if generated is not None or (c.client_id is None and created):
                self.summary.generated.append(
                    GeneratedCredential(
                        c.name, client_id, c.client_id is None and created, generated
                    )
                )
            self._saved("clients", created, changed)

    async def _client_row(self, c: ClientSpec) -> ClientRow | None:
        if c.client_id is not None:
            return await self.session.get(ClientRow, c.client_id)
        rows = list(await self.session.scalars(select(ClientRow).where(ClientRow.name == c.name)))
        if len(rows) > 1:
            raise self.error(
                f"{c.at}.name",
                f"{len(rows)} clients are named {c.name!r}: give this entry a client_id",
            )
        row = rows[0] if rows else None
        claimed = {other.client_id: other.at for other in self.spec.clients}
        if row is not None and row.client_id in claimed:
            raise self.error(
                f"{c.at}.name",
                f"the client named {c.name!r} is {row.client_id}, which "
                f"{claimed[row.client_id]} defines: give this entry a client_id",
            )
        return row

    def _store_secret(self, row: ClientRow, c: ClientSpec) -> tuple[bool, str | None]:
        """Set the row's secret from the file, keep the stored one, or generate one.
        Returns (changed, the generated secret)."""
        if c.is_public:
            cleared = {"secret_digest": None, "secret_stored": None, "secret_encrypted": False}
            return _assign(row, cleared), None
        generated = None
        secret = c.client_secret
        if secret is None:
            if row.secret_digest is not None:
                return False, None
            secret = generated = new_client_secret()
        digest = secret_digest(secret)
        if row.secret_digest is not None and hmac.compare_digest(row.secret_digest, digest):
            return False, None
        row.secret_digest = digest
        row.secret_stored = self.sealer.seal(secret.encode())
        row.secret_encrypted = self.sealer.encrypts
        return True, generated

    # 3. Client grants: the client and the API must exist, the scopes must be the API's.
    async def client_grants(self) -> None:
        for g in self.spec.client_grants:
            client = await self.session.get(ClientRow, g.client_id)
            if client is None:
                raise self.error(
                    f"{g.at}.client_id", f"no client {g.client_id!r} in the file or the database"
                )
            if g.subject_type == "client" and client.token_endpoint_auth_method == "none":
                raise self.error(
                    f"{g.at}.client_id",
                    f"{g.client_id} is a public client and cannot use the client-credentials grant",
                )
            api = await self._api(g.audience)
            if api is None:
                raise self.error(f"{g.at}.audience", f"no API with identifier {g.audience}")
            missing = missing_scopes(g.scope, _scopes(api))
            if missing:
                raise self.error(
                    f"{g.at}.scope", f"not defined by {g.audience}: {', '.join(missing)}"
                )
            values = {
                "scope": list(g.scope),
                "allow_all_scopes": g.allow_all_scopes,
                "subject_type": g.subject_type,
            }
            row = await self.session.scalar(
                select(ClientGrantRow).where(
                    ClientGrantRow.client_id == g.client_id, ClientGrantRow.audience == g.audience
                )
            )
            if row is None:
                self.session.add(
                    ClientGrantRow(
                        id=new_client_grant_id(),
                        client_id=g.client_id,
                        audience=g.audience,
                        **values,
                    )
                )
                self._saved("clientGrants", True, False)
            else:
                self._saved("clientGrants", False, _assign(row, values))

    # 4. Users: matched by email in the database connection.
    async def users(self) -> None:
        for u in self.spec.users:
            row = await self._user_by_email(u.email)
            if u.user_id is not None:
                if row is not None and row.user_id != u.user_id:
                    raise self.error(
                        f"{u.at}.user_id",
                        f"{u.email} already exists as {row.user_id}; a user's id cannot change",
                    )
                if row is None and await self.session.get(UserRow, u.user_id) is not None:
                    raise self.error(f"{u.at}.user_id", f"{u.user_id} belongs to another user")
            values = u.given()
            password_hash = await _password_hash(u, row)
            if password_hash is not None:
                values["password_hash"] = password_hash
            if row is None:
                local = u.email.split("@")[0]
                defaults = {"name": u.email, "nickname": local, "email_verified": False}
                self.session.add(
                    UserRow(
                        user_id=u.user_id or new_user_id(),
                        connection=DATABASE_CONNECTION,
                        email=u.email,
                        created_at=self.now,
                        updated_at=self.now,
                        **{**defaults, **copy.deepcopy(values)},
                    )
                )
                self._saved("users", True, False)
                continue
            changed = _assign(row, values)
            if changed:
                row.updated_at = self.now
            self._saved("users", False, changed)

    # 5. Roles: permissions set to the file's list, listed users added.
    async def roles(self) -> None:
        for r in self.spec.roles:
            row = await self.session.scalar(select(RoleRow).where(RoleRow.name == r.name))
            created = row is None
            if row is None:
                row = RoleRow(id=new_role_id(), name=r.name, description=r.description)
                self.session.add(row)
                await self.session.flush()
                changed = False
            else:
                changed = _assign(row, {"description": r.description})
            changed = await self._set_permissions(r, row.id) or changed
            changed = await self._add_members(r, row.id) or changed
            self._saved("roles", created, changed)

    async def _set_permissions(self, r: RoleSpec, role_id: str) -> bool:
        wanted: set[tuple[str, str]] = set()
        for i, p in enumerate(r.permissions):
            at = f"{r.at}.permissions[{i}]"
            api = await self._api(p.resource_server_identifier)
            if api is None:
                raise self.error(
                    f"{at}.resource_server_identifier",
                    f"no API with identifier {p.resource_server_identifier}",
                )
            if p.permission_name not in _scopes(api):
                raise self.error(
                    f"{at}.permission_name",
                    f"{p.permission_name!r} is not a scope of {p.resource_server_identifier}",
                )
            wanted.add((p.resource_server_identifier, p.permission_name))
        rows = await self.session.scalars(
            select(RolePermissionRow).where(RolePermissionRow.role_id == role_id)
        )
        have = {(x.resource_server_identifier, x.permission_name): x for x in rows}
        for pair, extra in have.items():
            if pair not in wanted:
                await self.session.delete(extra)
        for identifier, name in sorted(wanted - have.keys()):
            self.session.add(
                RolePermissionRow(
                    role_id=role_id, resource_server_identifier=identifier, permission_name=name
                )
            )
        return wanted != have.keys()

    async def _add_members(self, r: RoleSpec, role_id: str) -> bool:
        added = False
        for i, member in enumerate(r.users):
            if "|" in member:
                user = await self.session.get(UserRow, member)
            else:
                user = await self._user_by_email(member)
            if user is None:
                raise self.error(
                    f"{r.at}.users[{i}]", f"no user {member} in the file or the database"
                )
            if await self.session.get(UserRoleRow, (user.user_id, role_id)) is None:
                self.session.add(UserRoleRow(user_id=user.user_id, role_id=role_id))
                added = True
        return added


def _scopes(api: ResourceServerRow) -> frozenset[str]:
    return frozenset(
        s["value"] if isinstance(s, dict) else str(s) for s in api.config.get("scopes") or ()
    )


async def _password_hash(u: UserSpec, row: UserRow | None) -> str | None:
    """The hash to store, or None to keep the stored one. Hashing takes tens of milliseconds, so
    it runs in a thread; an unchanged password keeps its hash (and its salt)."""
    if u.password_hash is not None:
        return u.password_hash
    if u.password is None:
        return None
    stored = row.password_hash if row is not None else None
    if (
        stored
        and not needs_rehash(stored)
        and await asyncio.to_thread(verify_password, stored, u.password)
    ):
        return None
    return await asyncio.to_thread(hash_password, u.password)
