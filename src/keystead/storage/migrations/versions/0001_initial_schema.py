"""Initial schema: every table of storage/models.py.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-28 21:40:30.995704
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL, JSON text elsewhere (storage/db.py JsonDoc, frozen here).
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("app_type", sa.String(length=32), nullable=False),
        sa.Column("secret_digest", sa.LargeBinary(), nullable=True),
        sa.Column("secret_stored", sa.LargeBinary(), nullable=True),
        sa.Column("secret_encrypted", sa.Boolean(), nullable=False),
        sa.Column("token_endpoint_auth_method", sa.String(length=32), nullable=False),
        sa.Column("is_system", sa.Boolean(), nullable=False),
        sa.Column("config", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_clients")),
    )
    op.create_table(
        "connections",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("is_system", sa.Boolean(), nullable=False),
        sa.Column("options", JSON_DOC, nullable=False),
        sa.Column("config", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint("name", name=op.f("uq_connections_name")),
    )
    op.create_table(
        "logs",
        sa.Column("log_id", sa.String(length=64), nullable=False),
        sa.Column("date", sa.Float(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=300), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("data", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("log_id", name=op.f("pk_logs")),
    )
    op.create_index("ix_logs_date", "logs", ["date"])
    op.create_index("ix_logs_user_date", "logs", ["user_id", "date"])

    op.create_table(
        "resource_servers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("identifier", sa.String(length=600), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("is_system", sa.Boolean(), nullable=False),
        sa.Column("config", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_servers")),
        sa.UniqueConstraint("identifier", name=op.f("uq_resource_servers_identifier")),
    )
    op.create_table(
        "roles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("name", name=op.f("uq_roles_name")),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("private_pem", sa.LargeBinary(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("rotated_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    op.create_index("ix_signing_keys_state", "signing_keys", ["state"])

    op.create_table(
        "tenant_settings",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tenant_settings")),
    )
    op.create_table(
        "user_blocks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("identifier", sa.String(length=320), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("connection", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_blocks")),
    )
    op.create_index(
        "ix_user_blocks_identifier_ip", "user_blocks", ["identifier", "ip"], unique=True
    )

    op.create_table(
        "users",
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("connection", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=True),
        sa.Column("phone_number", sa.String(length=20), nullable=True),
        sa.Column("phone_verified", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=True),
        sa.Column("nickname", sa.String(length=300), nullable=True),
        sa.Column("given_name", sa.String(length=150), nullable=True),
        sa.Column("family_name", sa.String(length=150), nullable=True),
        sa.Column("picture", sa.Text(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("user_metadata", JSON_DOC, nullable=False),
        sa.Column("app_metadata", JSON_DOC, nullable=False),
        sa.Column("linked_identities", JSON_DOC, nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_login", sa.Float(), nullable=True),
        sa.Column("last_ip", sa.String(length=64), nullable=True),
        sa.Column("logins_count", sa.Integer(), nullable=False),
        sa.Column("last_password_reset", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_users")),
    )
    op.create_index("ix_users_connection_email", "users", ["connection", "email"], unique=True)
    op.create_index("ix_users_created_at", "users", ["created_at"])
    op.create_index("ix_users_email", "users", ["email"])
    op.create_index("ix_users_last_login", "users", ["last_login"])
    op.create_index("ix_users_username", "users", ["username"])

    op.create_table(
        "authentication_methods",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("data", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_auth_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_authentication_methods_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authentication_methods")),
    )
    op.create_index("ix_authentication_methods_user_id", "authentication_methods", ["user_id"])

    op.create_table(
        "authorization_codes",
        sa.Column("code_digest", sa.LargeBinary(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("params", JSON_DOC, nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.Column("family_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_authorization_codes_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_authorization_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_digest", name=op.f("pk_authorization_codes")),
    )
    op.create_index("ix_authorization_codes_expires_at", "authorization_codes", ["expires_at"])

    op.create_table(
        "client_grants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("audience", sa.String(length=600), nullable=False),
        sa.Column("scope", JSON_DOC, nullable=False),
        sa.Column("allow_all_scopes", sa.Boolean(), nullable=False),
        sa.Column("subject_type", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["audience"],
            ["resource_servers.identifier"],
            name=op.f("fk_client_grants_audience_resource_servers"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_client_grants_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_grants")),
    )
    op.create_index(
        "ix_client_grants_client_audience", "client_grants", ["client_id", "audience"], unique=True
    )

    op.create_table(
        "device_credentials",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("device_name", sa.Text(), nullable=False),
        sa.Column("device_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_device_credentials_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_device_credentials_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_credentials")),
    )
    op.create_index("ix_device_credentials_user_id", "device_credentials", ["user_id"])

    op.create_table(
        "login_sessions",
        sa.Column("id_digest", sa.LargeBinary(), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("authenticated_at", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_login_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_digest", name=op.f("pk_login_sessions")),
        sa.UniqueConstraint("sid", name=op.f("uq_login_sessions_sid")),
    )
    op.create_index("ix_login_sessions_expires_at", "login_sessions", ["expires_at"])
    op.create_index("ix_login_sessions_user_id", "login_sessions", ["user_id"])

    op.create_table(
        "refresh_tokens",
        sa.Column("token_digest", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("params", JSON_DOC, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("family_expires_at", sa.Float(), nullable=True),
        sa.Column("idle_expires_at", sa.Float(), nullable=True),
        sa.Column("rotated_at", sa.Float(), nullable=True),
        sa.Column("rotation_result", sa.LargeBinary(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.Column("device_name", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_refresh_tokens_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_refresh_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_digest", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("id", name=op.f("uq_refresh_tokens_id")),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])

    op.create_table(
        "role_permissions",
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("resource_server_identifier", sa.String(length=600), nullable=False),
        sa.Column("permission_name", sa.String(length=280), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_server_identifier"],
            ["resource_servers.identifier"],
            name=op.f("fk_role_permissions_resource_server_identifier_resource_servers"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("fk_role_permissions_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "role_id",
            "resource_server_identifier",
            "permission_name",
            name=op.f("pk_role_permissions"),
        ),
    )
    op.create_table(
        "user_permissions",
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("resource_server_identifier", sa.String(length=600), nullable=False),
        sa.Column("permission_name", sa.String(length=280), nullable=False),
        sa.ForeignKeyConstraint(
            ["resource_server_identifier"],
            ["resource_servers.identifier"],
            name=op.f("fk_user_permissions_resource_server_identifier_resource_servers"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_user_permissions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id",
            "resource_server_identifier",
            "permission_name",
            name=op.f("pk_user_permissions"),
        ),
    )
    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_user_roles_role_id_roles"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_user_roles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "role_id", name=op.f("pk_user_roles")),
    )
    op.create_index("ix_user_roles_role_id", "user_roles", ["role_id"])


def downgrade() -> None:
    # Reverse order of creation: children before the tables they reference.
    op.drop_table("user_roles")
    op.drop_table("user_permissions")
    op.drop_table("role_permissions")
    op.drop_table("refresh_tokens")
    op.drop_table("login_sessions")
    op.drop_table("device_credentials")
    op.drop_table("client_grants")
    op.drop_table("authorization_codes")
    op.drop_table("authentication_methods")
    op.drop_table("users")
    op.drop_table("user_blocks")
    op.drop_table("tenant_settings")
    op.drop_table("signing_keys")
    op.drop_table("roles")
    op.drop_table("resource_servers")
    op.drop_table("logs")
    op.drop_table("connections")
    op.drop_table("clients")
