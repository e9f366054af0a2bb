"""Applying a tenant file (tenant.py), steps 1-3: APIs, tenant settings, clients, client grants.

Clients, APIs and grants take exactly what the file says. A client's secret is hashed for checks
and sealed for `read:client_keys`; an HS256 API's signing secret is sealed. A client_id or secret
the file leaves out is generated and reported in the summary.
"""

from __future__ import annotations

import copy
import hmac
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from keystead.core.tenant import ClientSpec, ResourceServerSpec, missing_scopes
from keystead.errors import ConfigError
from keystead.storage.models import ClientGrantRow, ClientRow, ResourceServerRow, TenantSettingRow
from keystead.storage.repositories.clients import secret_digest
from keystead.storage.repositories.ids import (
    new_client_grant_id,
    new_client_id,
    new_client_secret,
    new_resource_server_id,
)
from keystead.storage.tenant_run import GeneratedCredential, TenantRun, api_scopes, assign

# Where storage/repositories/resource_servers.py keeps an HS256 API's sealed signing secret.
_SEALED, _ENCRYPTED = "signing_secret_sealed", "signing_secret_encrypted"


class ClientSteps(TenantRun):
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
            changed = assign(row, {"name": rs.name, "config": config})
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
                self._saved("settings", False, assign(row, {"value": value}))

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
                changed = assign(row, values)
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
            return assign(row, cleared), None
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
            missing = missing_scopes(g.scope, api_scopes(api))
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
                self._saved("clientGrants", False, assign(row, values))
