"""User search terms, filled from the existing users; one public key per device credential.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 02:00:00

`user_search_terms` holds each user's metadata leaves, e-mail domain and identity fields as
(path, value) rows (core/search_terms.py, storage/user_search_terms.py), so that those searches
are index lookups on SQLite as on PostgreSQL. The upgrade derives them for every existing user,
in batches, with the same function the application uses (a second copy here could drift from
it and leave users unfindable); the index is built after the load. PostgreSQL also gets
statistics on (path, value) together.

Device credentials get a unique index on (user_id, client_id, device_id, type): the read
before an insert cannot stop two concurrent requests. Duplicates such a race already left are
deleted first, keeping the oldest of each.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from keystead.core.search_terms import user_terms

# JSONB on PostgreSQL, JSON text elsewhere (storage/db.py JsonDoc, frozen here).
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
USERS = sa.table(
    "users",
    sa.column("user_id", sa.String()),
    sa.column("connection", sa.String()),
    sa.column("email", sa.String()),
    sa.column("app_metadata", JSON_DOC),
    sa.column("user_metadata", JSON_DOC),
    sa.column("linked_identities", JSON_DOC),
)
TERMS = sa.table(
    "user_search_terms",
    sa.column("user_id", sa.String()),
    sa.column("path", sa.String()),
    sa.column("value", sa.String()),
)


def upgrade() -> None:
    op.create_table(
        "user_search_terms",
        sa.Column("user_id", sa.String(length=300), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=260), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.user_id"],
            name=op.f("fk_user_search_terms_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "path", "value", name=op.f("pk_user_search_terms")),
        sqlite_with_rowid=False,
    )
    _fill_terms()
    op.create_index(
        "ix_user_search_terms_path_value",
        "user_search_terms",
        ["path", "value", "user_id"],
        postgresql_ops={"path": "text_pattern_ops", "value": "text_pattern_ops"},
    )
    if op.get_bind().dialect.name == "postgresql":
        # A path and its values go together (`senterprise` is only ever a plan): without
        # statistics on the pair the planner multiplies their frequencies and misjudges by 10x.
        op.execute(
            "CREATE STATISTICS user_search_terms_path_value (mcv, ndistinct)"
            " ON path, value FROM user_search_terms"
        )
    op.execute("ANALYZE user_search_terms")  # the planner's first figures, not its defaults
    _delete_duplicate_public_keys()
    op.create_index(
        "ix_device_credentials_user_client_device",
        "device_credentials",
        ["user_id", "client_id", "device_id", "type"],
        unique=True,
    )


def _fill_terms() -> None:
    """Every user's terms, BATCH users at a time in user_id order (keyset paging)."""
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.select(USERS).where(USERS.c.user_id > after).order_by(USERS.c.user_id).limit(BATCH)
        ).all()
        if not rows:
            return
        terms = [
            {"user_id": row.user_id, "path": path, "value": value}
            for row in rows
            for path, value in user_terms(
                email=row.email,
                app_metadata=row.app_metadata,
                user_metadata=row.user_metadata,
                identities=[_primary(row), *(row.linked_identities or ())],
            )
        ]
        if terms:
            bind.execute(TERMS.insert(), terms)
        after = rows[-1].user_id


def _primary(row: sa.Row[Any]) -> dict[str, str]:
    """The primary identity, as storage/user_search_terms.py derives it from the row."""
    provider, _, local_id = row.user_id.partition("|")
    return {"connection": row.connection, "provider": provider, "user_id": local_id}


def _delete_duplicate_public_keys() -> None:
    op.execute(
        """
        DELETE FROM device_credentials WHERE id IN (
            SELECT id FROM (
                SELECT id, row_number() OVER (
                    PARTITION BY user_id, client_id, device_id, type ORDER BY created_at, id
                ) AS n
                FROM device_credentials
            ) AS ranked WHERE n > 1
        )
        """
    )


def downgrade() -> None:
    op.drop_index("ix_device_credentials_user_client_device", table_name="device_credentials")
    op.drop_index("ix_user_search_terms_path_value", table_name="user_search_terms")
    op.drop_table("user_search_terms")
