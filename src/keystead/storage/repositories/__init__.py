"""SQL implementations of the core/ports.py Protocols, one module per resource.

Each takes the request's AsyncSession (and the clock and sealer where it needs them), returns
core dataclasses, never commits, and raises RecordNotFound / AlreadyExists / ProtectedRecord
rather than driver errors. `Repositories.over(session, …)` builds them all for one request.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.sealing import Sealer
from keystead.storage.repositories.client_grants import SqlClientGrants
from keystead.storage.repositories.clients import SqlClients
from keystead.storage.repositories.connections import SqlConnections
from keystead.storage.repositories.resource_servers import SqlResourceServers
from keystead.storage.repositories.roles import SqlRoles
from keystead.storage.repositories.tenant_settings import SqlTenantSettings
from keystead.storage.repositories.users import SqlUsers

__all__ = [
    "Repositories",
    "SqlClientGrants",
    "SqlClients",
    "SqlConnections",
    "SqlResourceServers",
    "SqlRoles",
    "SqlTenantSettings",
    "SqlUsers",
]


@dataclass(frozen=True)
class Repositories:
    clients: SqlClients
    resource_servers: SqlResourceServers
    client_grants: SqlClientGrants
    connections: SqlConnections
    users: SqlUsers
    roles: SqlRoles
    tenant_settings: SqlTenantSettings

    @classmethod
    def over(cls, session: AsyncSession, clock: Clock, sealer: Sealer) -> Repositories:
        return cls(
            clients=SqlClients(session, clock, sealer),
            resource_servers=SqlResourceServers(session, clock, sealer),
            client_grants=SqlClientGrants(session),
            connections=SqlConnections(session, clock),
            users=SqlUsers(session, clock),
            roles=SqlRoles(session),
            tenant_settings=SqlTenantSettings(session),
        )
