"""Drop the user indexes no query uses since user_search_terms (0004), and widen created_at's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 02:30:00

The e-mail domain and identity user_id expression indexes and the GIN indexes over app_metadata
and user_metadata served searches that now read user_search_terms; each cost every write to
users. The GIN index over linked_identities stays (a linked identity's login by e-mail uses it).
ix_users_created_at gains user_id, so a walk in date order reads the index alone.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOMAIN_CHARS = "'abcdefghijklmnopqrstuvwxyz0123456789.-'"
PROVIDER_CHARS = "'abcdefghijklmnopqrstuvwxyz0123456789-_'"

# name: (PostgreSQL index body, SQLite index body) as migration 0002 created them
DROPPED: dict[str, tuple[str, str]] = {
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
}


def upgrade() -> None:
    for name in DROPPED:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_index("ix_users_created_at", table_name="users")
    op.create_index("ix_users_created_at", "users", ["created_at", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_users_created_at", table_name="users")
    op.create_index("ix_users_created_at", "users", ["created_at"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, (pg, sqlite) in DROPPED.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON users {pg if postgresql else sqlite}")
