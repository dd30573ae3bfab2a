"""status history: status_transitions

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "status_transitions",
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("to_category", sa.String(length=20), nullable=False),
        sa.Column("to_name", sa.String(length=200), nullable=False),
        sa.Column("from_category", sa.String(length=20), nullable=True),
        sa.Column("from_name", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_rank", sa.Integer(), nullable=False),
        sa.Column("native_id", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("item_id", "at", "to_category", "to_name", name=op.f("pk_status_transitions")),
    )
    op.create_index("ix_status_transitions_at", "status_transitions", ["at"])


def downgrade() -> None:
    op.drop_index("ix_status_transitions_at", table_name="status_transitions")
    op.drop_table("status_transitions")
