"""The tenant configuration's version counter (storage/config_cache.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 01:00:00

Every write to clients, resource servers, client grants, connections or tenant settings bumps
it in the same transaction; each worker keeps a copy of that configuration and re-reads it
when the counter has moved.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "config_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_version")),
    )
    op.bulk_insert(table, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("config_version")
