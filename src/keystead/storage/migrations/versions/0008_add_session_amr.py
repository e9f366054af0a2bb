"""Login sessions remember the methods the login used beyond the password (`amr`, RFC 8176).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 04:00:00

Space-separated values ("mfa" after a second factor's code); NULL for a password or signup
alone, which is what every session started before this migration was.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("login_sessions", sa.Column("amr", sa.Text(), nullable=True))


def downgrade() -> None:
    # Batch mode: SQLite copies the table without the column; PostgreSQL drops it in place.
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("amr")
