"""Database rows. Repositories turn them into core dataclasses; nothing above storage sees them.

Times are epoch seconds (float) everywhere: one representation across SQLite and PostgreSQL,
cheap to compare in search ranges, and converted to ISO strings only at the API edge.
Secrets, codes and opaque tokens are stored as SHA-256 digests and looked up by digest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from keystead.storage.db import Base


def _api_identifier_fk() -> ForeignKey:
    # ON UPDATE CASCADE: the system API's identifier follows the issuer setting (storage/seed.py).
    return ForeignKey("resource_servers.identifier", ondelete="CASCADE", onupdate="CASCADE")


class TenantSettingRow(Base):
    """Tenant-wide settings as named JSON documents (e.g. `self_service`, `rate_limits`)."""

    __tablename__ = "tenant_settings"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ConfigVersionRow(Base):
    """One row whose counter moves with every change to clients, APIs, grants, connections or
    tenant settings, in the same transaction: workers compare it to drop their cached copy."""

    __tablename__ = "config_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), default="RS256")
    # next | current | previous | retired
    state: Mapped[str] = mapped_column(String(10), index=True)
    private_pem: Mapped[bytes] = mapped_column(LargeBinary)  # encrypted when a secret key is set
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    cert_der: Mapped[bytes] = mapped_column(LargeBinary)  # self-signed, published as x5c
    created_at: Mapped[float] = mapped_column(Float)
    rotated_at: Mapped[float | None] = mapped_column(Float, default=None)


class ClientRow(Base):
    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    app_type: Mapped[str] = mapped_column(String(32))
    # SHA-256 of the secret for constant-time checks, and the secret encrypted (or clear when no
    # secret key is configured) so that `read:client_keys` can return it, as Auth0 does.
    secret_digest: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    secret_stored: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    secret_encrypted: Mapped[bool] = mapped_column(Boolean, default=False)  # sealed by a key?
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    # Every other Auth0 client field (callbacks, grant_types, refresh_token, …) as given.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ResourceServerRow(Base):
    __tablename__ = "resource_servers"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    identifier: Mapped[str] = mapped_column(String(600), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # scopes, signing_alg, …
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ClientGrantRow(Base):
    __tablename__ = "client_grants"
    __table_args__ = (
        Index("ix_client_grants_client_audience", "client_id", "audience", unique=True),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    audience: Mapped[str] = mapped_column(_api_identifier_fk())
    scope: Mapped[list[Any]] = mapped_column(default=list)
    allow_all_scopes: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_type: Mapped[str] = mapped_column(String(16), default="client")


class ConnectionRow(Base):
    __tablename__ = "connections"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # con_ + 16 alphanumerics
    name: Mapped[str] = mapped_column(String(128), unique=True)
    strategy: Mapped[str] = mapped_column(String(64))
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Every other Auth0 connection field (display_name, enabled_clients, realms, metadata, …).
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[float] = mapped_column(Float)


class UserRow(Base):
    __tablename__ = "users"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Index, ...]:
        # User search (storage/user_search.py, docs/search.md). PostgreSQL gets these as
        # declared; migration 0002 gives SQLite a same-named index on the same columns that it
        # can use (NOCASE instead of lower(), a partial index), or an empty placeholder where
        # it can use none (GIN), since SQLite cannot reflect expression indexes. Metadata, the
        # e-mail domain and identities are searched through user_search_terms (migration 0006
        # dropped the expression and metadata indexes that served them before).

        def pattern(name: str, expr: Any, *more: str, **kw: Any) -> Index:
            # text_pattern_ops: =, prefix LIKE and byte-order ranges whatever the collation.
            if isinstance(expr, str):  # a plain column, named
                return Index(name, expr, *more, postgresql_ops={expr: "text_pattern_ops"}, **kw)
            label = f"{name}_key"
            ops = {label: "text_pattern_ops"}
            return Index(name, expr.label(label), *more, postgresql_ops=ops, **kw)

        def gin(name: str, column: str) -> Index:
            ops = {column: "jsonb_path_ops"}
            return Index(name, column, postgresql_using="gin", postgresql_ops=ops)

        return (
            Index("ix_users_connection_email", "connection", "email", unique=True),
            # With user_id: a sorted walk reads the index alone (no table row per entry).
            Index("ix_users_created_at", "created_at", "user_id"),
            Index("ix_users_last_login", "last_login"),
            Index("ix_users_updated_at", "updated_at"),
            Index("ix_users_logins_count", "logins_count", "user_id"),
            # Blocked users are few: a partial index finds them (`blocked:true`).
            Index("ix_users_blocked", "user_id",
                  postgresql_where=text("blocked"), sqlite_where=text("blocked = 1")),
            pattern("ix_users_user_id_pattern", "user_id"),
            pattern("ix_users_email_pattern", "email", "user_id"),
            pattern("ix_users_username_pattern", "username", "user_id"),
            pattern("ix_users_phone_number_pattern", "phone_number", "user_id"),
            pattern("ix_users_last_ip_pattern", "last_ip"),
            *(pattern(f"ix_users_{f}_lower", func.lower(getattr(cls, f)), "user_id")
              for f in ("name", "nickname", "given_name", "family_name")),
            # A linked identity's login by e-mail (storage/login_records.py: `@>`).
            gin("ix_users_linked_identities", "linked_identities"),
        )  # fmt: skip

    user_id: Mapped[str] = mapped_column(String(300), primary_key=True)  # "auth0|<24 hex>"
    connection: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(320), default=None, index=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    username: Mapped[str | None] = mapped_column(String(128), default=None, index=True)
    phone_number: Mapped[str | None] = mapped_column(String(20), default=None)
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(300), default=None)
    nickname: Mapped[str | None] = mapped_column(String(300), default=None)
    given_name: Mapped[str | None] = mapped_column(String(150), default=None)
    family_name: Mapped[str | None] = mapped_column(String(150), default=None)
    picture: Mapped[str | None] = mapped_column(Text, default=None)
    password_hash: Mapped[str | None] = mapped_column(Text, default=None)
    user_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    app_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Linked secondary identities (the primary identity is derived from user_id/connection).
    linked_identities: Mapped[list[Any]] = mapped_column(default=list)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    last_login: Mapped[float | None] = mapped_column(Float, default=None)
    last_ip: Mapped[str | None] = mapped_column(String(64), default=None)
    logins_count: Mapped[int] = mapped_column(Integer, default=0)
    last_password_reset: Mapped[float | None] = mapped_column(Float, default=None)


class RoleRow(Base):
    __tablename__ = "roles"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # rol_…
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class RolePermissionRow(Base):
    __tablename__ = "role_permissions"
    role_id: Mapped[str] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    resource_server_identifier: Mapped[str] = mapped_column(_api_identifier_fk(), primary_key=True)
    permission_name: Mapped[str] = mapped_column(String(280), primary_key=True)


class UserRoleRow(Base):
    __tablename__ = "user_roles"
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    role_id: Mapped[str] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class UserPermissionRow(Base):
    __tablename__ = "user_permissions"
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    resource_server_identifier: Mapped[str] = mapped_column(_api_identifier_fk(), primary_key=True)
    permission_name: Mapped[str] = mapped_column(String(280), primary_key=True)


class LoginSessionRow(Base):
    """Server-side SSO session behind the login cookie (the cookie holds a random id)."""

    __tablename__ = "login_sessions"
    id_digest: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)  # public id, the `sid` claim
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )
    authenticated_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    user_agent: Mapped[str | None] = mapped_column(Text, default=None)
    amr: Mapped[str | None] = mapped_column(Text, default=None)  # space-separated; None: none


class AuthorizationCodeRow(Base):
    __tablename__ = "authorization_codes"
    code_digest: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.user_id", ondelete="CASCADE"))
    # redirect_uri, scope, audience, nonce, code_challenge(+method), auth_time, sid
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    used_at: Mapped[float | None] = mapped_column(Float, default=None)
    # Refresh-token family issued from this code, revoked if the code is replayed.
    family_id: Mapped[str | None] = mapped_column(String(64), default=None)


class RefreshTokenRow(Base):
    """One row per issued refresh token; a family shares `family_id` (one original grant)."""

    __tablename__ = "refresh_tokens"
    token_digest: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)  # public id (device credentials)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)  # scope, audience, sid, …
    created_at: Mapped[float] = mapped_column(Float)
    family_expires_at: Mapped[float | None] = mapped_column(Float, default=None)  # absolute
    idle_expires_at: Mapped[float | None] = mapped_column(Float, default=None)
    rotated_at: Mapped[float | None] = mapped_column(Float, default=None)
    # The response given when this token was rotated, replayed within the leeway (encrypted).
    rotation_result: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    revoked_at: Mapped[float | None] = mapped_column(Float, default=None)
    device_name: Mapped[str | None] = mapped_column(Text, default=None)


class DeviceCredentialRow(Base):
    __tablename__ = "device_credentials"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # dcr_…
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    device_name: Mapped[str] = mapped_column(Text)
    device_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class AuthenticationMethodRow(Base):
    """MFA factors and other authentication methods (Guardian enrollments are a view of these)."""

    __tablename__ = "authentication_methods"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str | None] = mapped_column(String(255), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # secrets encrypted, never returned
    created_at: Mapped[float] = mapped_column(Float)
    last_auth_at: Mapped[float | None] = mapped_column(Float, default=None)


class LogEventRow(Base):
    __tablename__ = "logs"
    __table_args__ = (Index("ix_logs_user_date", "user_id", "date"),)
    log_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    date: Mapped[float] = mapped_column(Float, index=True)
    type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(300), default=None)
    client_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # description, ip, user_agent, connection, audience, scope, details … (never secrets)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class UserBlockRow(Base):
    """Brute-force block of one (identifier, ip) pair (contract §10.9 /user-blocks)."""

    __tablename__ = "user_blocks"
    __table_args__ = (Index("ix_user_blocks_identifier_ip", "identifier", "ip", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    identifier: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    connection: Mapped[str] = mapped_column(String(128))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    blocked_at: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[float] = mapped_column(Float)


class UserSearchTermRow(Base):
    """One searchable value of a user: a metadata leaf, the e-mail domain, an identity's field
    (core/search_terms.py encodes them; storage/user_search_terms.py keeps them current).

    The key (user_id, path, value) replaces a user's terms; the index (path, value, user_id)
    answers a search term with one range of entries, on SQLite as on PostgreSQL.
    """

    __tablename__ = "user_search_terms"
    __table_args__ = (
        Index(
            "ix_user_search_terms_path_value", "path", "value", "user_id",
            postgresql_ops={"path": "text_pattern_ops", "value": "text_pattern_ops"},
        ),
        {"sqlite_with_rowid": False},
    )  # fmt: skip
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(260), primary_key=True)  # a type letter + text


# One public key per user, client and device: the database settles two concurrent requests.
Index(
    "ix_device_credentials_user_client_device",
    DeviceCredentialRow.user_id,
    DeviceCredentialRow.client_id,
    DeviceCredentialRow.device_id,
    DeviceCredentialRow.type,
    unique=True,
)


class UsedClientAssertionRow(Base):
    """private_key_jwt assertions already used (RFC 7523 §3 jti), shared by every worker and
    replica, kept until they expire (storage/purge.py removes them after)."""

    __tablename__ = "used_client_assertions"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(client_id, jti)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class JobRow(Base):
    """Management API jobs (`/api/v2/jobs`), shared by every worker and replica so a job made
    on one is read on another; kept until they expire (storage/purge.py removes them after)."""

    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # job_ + 16 hex characters
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    # The job's other fields as GET /jobs/{id} returns them.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
