"""tombstones for items the hub has not seen

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Deletions of ids the hub has not stored yet (hub/db/tables.py item_tombstones).
    op.create_table(
        "item_tombstones",
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("native_id", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_item_tombstones")),
    )


def downgrade() -> None:
    op.drop_table("item_tombstones")
