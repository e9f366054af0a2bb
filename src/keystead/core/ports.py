"""The repository Protocols core needs; `storage/repositories/` implements them over SQL.

Conventions, for every port:
- `get(...)` raises RecordNotFound; `find(...)` and `by_*(...)` return None instead.
- `create` raises AlreadyExists on a duplicate and fills an empty id; it returns what was stored.
- `update` and `delete` raise RecordNotFound for a missing record and ProtectedRecord for a
  system one (the Management API, the default database connection).
- Lists are ordered stably, so `offset`/`limit` pages (and checkpoint cursors built on them)
  never skip or repeat a record.
- Nothing commits: the caller owns the transaction (deps.py, one per request).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from keystead.core.apis import ClientGrant, ResourceServer
from keystead.core.clients import Client
from keystead.core.users import User
from keystead.errors import ProtectedRecord

__all__ = ["ProtectedRecord"]  # re-exported: repositories raise it from here


@dataclass(frozen=True)
class Connection:
    """An identity source (contract §10.6). `extra`: display_name, enabled_clients, realms, …"""

    id: str  # con_ + 16 alphanumerics
    name: str
    strategy: str
    options: dict[str, Any] = field(default_factory=dict)
    is_system: bool = False
    created_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Role:
    id: str  # rol_ + 16 alphanumerics
    name: str
    description: str = ""


class PermissionRef(Protocol):
    """A permission named by its API and value (anything with these two attributes)."""

    @property
    def resource_server_identifier(self) -> str: ...
    @property
    def permission_name(self) -> str: ...


@dataclass(frozen=True)
class AssignedPermission:
    """A permission held by a role or a user, as GET /roles/{id}/permissions shows it."""

    resource_server_identifier: str
    permission_name: str
    resource_server_name: str = ""
    description: str = ""


class Clients(Protocol):
    async def get(self, client_id: str, *, reveal_secret: bool = False) -> Client:
        """`reveal_secret`: open the stored secret (for `read:client_keys`)."""

    async def find(self, client_id: str) -> Client | None: ...

    async def list(
        self,
        *,
        app_types: Iterable[str] | None = None,
        is_first_party: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[Client]: ...

    async def create(self, client: Client) -> Client:
        """Generates client_id when empty, and a secret when None for a confidential client;
        returns the client with its secret in clear (shown once)."""

    async def update(self, client: Client) -> Client:
        """Replaces every field but the secret (see rotate_secret)."""

    async def rotate_secret(self, client_id: str, secret: str | None = None) -> Client: ...

    async def delete(self, client_id: str) -> None: ...

    async def verify_secret(self, client_id: str, secret: str) -> bool:
        """Constant-time check; False for an unknown client or one without a secret."""


class ResourceServers(Protocol):
    async def by_identifier(self, identifier: str) -> ResourceServer | None: ...

    async def by_id(self, id: str) -> ResourceServer | None: ...

    async def get(self, id_or_identifier: str) -> ResourceServer:
        """GET /resource-servers/{id} takes either (contract §10.3)."""

    async def list(
        self,
        *,
        identifiers: Iterable[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[ResourceServer]: ...

    async def create(self, api: ResourceServer) -> ResourceServer: ...

    async def update(self, api: ResourceServer) -> ResourceServer:
        """Found by id; the identifier is immutable and kept."""

    async def delete(self, id: str) -> None: ...


class ClientGrants(Protocol):
    async def get(self, id: str) -> ClientGrant: ...

    async def for_client_audience(self, client_id: str, audience: str) -> ClientGrant | None: ...

    async def list(
        self,
        *,
        client_id: str | None = None,
        audience: str | None = None,
        subject_type: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[ClientGrant]: ...

    async def create(self, grant: ClientGrant) -> ClientGrant:
        """RecordNotFound for an unknown client or audience; AlreadyExists for the pair."""

    async def update(self, grant: ClientGrant) -> ClientGrant:
        """Changes scope, allow_all_scopes and subject_type; client and audience are kept."""

    async def delete(self, id: str) -> None: ...


class Connections(Protocol):
    async def get(self, id: str) -> Connection: ...

    async def by_name(self, name: str) -> Connection | None: ...

    async def list(
        self,
        *,
        strategies: Iterable[str] | None = None,
        name: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[Connection]: ...

    async def create(self, connection: Connection) -> Connection: ...

    async def update(self, connection: Connection) -> Connection:
        """Changes options and extra; name and strategy are immutable."""

    async def delete(self, id: str) -> None:
        """Deletes the connection's users too, as Auth0 does."""


class Users(Protocol):
    async def get(self, user_id: str) -> User: ...

    async def find(self, user_id: str) -> User | None: ...

    async def by_email(self, connection: str, email: str) -> User | None:
        """Emails are stored and compared lower-cased."""

    async def create(self, user: User, *, connection: str) -> User:
        """Generates `auth0|<24 hex>` when user_id is empty. identities[0] is the primary
        identity (derived from user_id and connection); the rest are stored as linked."""

    async def update(self, user: User) -> User:
        """Replaces every field (merge first, in core); updated_at is set from the clock."""

    async def delete(self, user_id: str) -> None: ...

    async def count(self) -> int: ...

    async def count_logged_in_since(self, since: float) -> int:
        """Users whose last login is at or after `since` (GET /stats/active-users)."""


class Roles(Protocol):
    async def get(self, id: str) -> Role: ...

    async def by_name(self, name: str) -> Role | None: ...

    async def list(
        self, *, name_filter: str | None = None, offset: int = 0, limit: int | None = None
    ) -> Sequence[Role]:
        """`name_filter`: case-insensitive substring, as GET /roles?name_filter=."""

    async def create(self, role: Role) -> Role: ...

    async def update(self, role: Role) -> Role: ...

    async def delete(self, id: str) -> None: ...

    async def permissions(self, role_id: str) -> Sequence[AssignedPermission]: ...

    async def add_permissions(self, role_id: str, permissions: Iterable[PermissionRef]) -> None:
        """Idempotent; RecordNotFound for an unknown role or API."""

    async def remove_permissions(
        self, role_id: str, permissions: Iterable[PermissionRef]
    ) -> None: ...

    async def members(
        self, role_id: str, *, offset: int = 0, limit: int | None = None
    ) -> Sequence[User]: ...

    async def add_members(self, role_id: str, user_ids: Iterable[str]) -> None:
        """Idempotent; RecordNotFound for an unknown role or user."""

    async def remove_members(self, role_id: str, user_ids: Iterable[str]) -> None: ...

    async def roles_of(self, user_id: str) -> Sequence[Role]: ...

    async def user_permissions(self, user_id: str) -> Sequence[AssignedPermission]:
        """Permissions given to the user directly (not through roles)."""

    async def add_user_permissions(
        self, user_id: str, permissions: Iterable[PermissionRef]
    ) -> None: ...

    async def remove_user_permissions(
        self, user_id: str, permissions: Iterable[PermissionRef]
    ) -> None: ...

    async def effective_permissions(self, user_id: str, audience: str) -> frozenset[str]:
        """Direct and role permissions on one API: what RBAC intersects with (§3.8, §10.5)."""


class TenantSettings(Protocol):
    async def get(self, name: str) -> dict[str, Any] | None: ...

    async def set(self, name: str, value: dict[str, Any]) -> None: ...

    async def all(self) -> dict[str, dict[str, Any]]: ...
