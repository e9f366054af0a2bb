"""Log event codes up to 64 characters: Auth0's longer ones (`gd_enrollment_complete`, 22) did
not fit the 16 the column had.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 04:30:00

PostgreSQL widens the column in place (no rewrite for a longer varchar). SQLite does not enforce
varchar lengths, so only its recorded schema changes: batch mode copies the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("logs") as batch:
        batch.alter_column("type", type_=sa.String(64), existing_type=sa.String(16))


def downgrade() -> None:
    with op.batch_alter_table("logs") as batch:
        batch.alter_column("type", type_=sa.String(16), existing_type=sa.String(64))
