"""Indexes for user search (storage/user_search.py, docs/search.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:00:00

PostgreSQL gets what storage/models.py declares: text_pattern_ops B-trees (equality, prefix and
byte-order ranges under any collation), lower() for the case-insensitive fields, two
expressions (the e-mail domain; the primary identity's user_id) and GIN jsonb_path_ops for the
JSON documents. SQLite uses NOCASE columns where PostgreSQL uses lower(), a partial index over
the users with linked identities, and an empty placeholder (`WHERE 0`) where it can use no
index (GIN, expressions): SQLAlchemy cannot reflect SQLite expression indexes, and a
same-named index on the same columns keeps `migrate.check()` comparing models and schema.
The PK index already serves user_id prefixes on SQLite (binary collation).

On a large PostgreSQL table these builds lock writes to `users` while they run; create them
by hand with CREATE INDEX CONCURRENTLY first if that matters (this migration then skips them).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOMAIN_CHARS = "'abcdefghijklmnopqrstuvwxyz0123456789.-'"
PROVIDER_CHARS = "'abcdefghijklmnopqrstuvwxyz0123456789-_'"
LOWERED = ("name", "nickname", "given_name", "family_name")

# name: (PostgreSQL index body, SQLite index body)
INDEXES: dict[str, tuple[str, str]] = {
    "ix_users_updated_at": ("(updated_at)", "(updated_at)"),
    "ix_users_logins_count": ("(logins_count, user_id)", "(logins_count, user_id)"),
    "ix_users_blocked": ("(user_id) WHERE blocked", "(user_id) WHERE blocked = 1"),
    "ix_users_user_id_pattern": ("(user_id text_pattern_ops)", "(user_id) WHERE 0"),
    "ix_users_email_pattern": ("(email text_pattern_ops, user_id)", "(email, user_id)"),
    "ix_users_username_pattern": ("(username text_pattern_ops, user_id)", "(username, user_id)"),
    "ix_users_phone_number_pattern": (
        "(phone_number text_pattern_ops, user_id)",
        "(phone_number, user_id)",
    ),
    "ix_users_last_ip_pattern": ("(last_ip text_pattern_ops)", "(last_ip)"),
    **{
        f"ix_users_{f}_lower": (
            f"(lower({f}) text_pattern_ops, user_id)",
            f"({f} COLLATE NOCASE, user_id)",
        )
        for f in LOWERED
    },
    "ix_users_email_domain": (
        f"(substr(email, length(rtrim(email, {DOMAIN_CHARS})) + 1) text_pattern_ops)",
        "(email) WHERE 0",
    ),
    "ix_users_identity_user_id": (
        f"(substr(ltrim(user_id, {PROVIDER_CHARS}), 2) text_pattern_ops)",
        "(user_id) WHERE 0",
    ),
    "ix_users_app_metadata": ("USING gin (app_metadata jsonb_path_ops)", "(app_metadata) WHERE 0"),
    "ix_users_user_metadata": (
        "USING gin (user_metadata jsonb_path_ops)",
        "(user_metadata) WHERE 0",
    ),
    "ix_users_linked_identities": (
        "USING gin (linked_identities jsonb_path_ops)",
        "(linked_identities) WHERE linked_identities > '[]'",
    ),
}


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, (pg, sqlite) in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON users {pg if postgresql else sqlite}")


def downgrade() -> None:
    for name in reversed(INDEXES):
        op.execute(f"DROP INDEX IF EXISTS {name}")
