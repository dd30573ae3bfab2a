"""flow facts: per-item derived history facts (issue 9 speed)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # hub/db/tables.py flow_facts and flow_days; what the columns mean: hub/store/flow_facts.py.
    op.create_table(
        "flow_facts",
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("has_history", sa.Boolean(), nullable=False),
        sa.Column("start", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_entries", sa.Text(), nullable=True),
        sa.Column("last_done_entry", sa.DateTime(timezone=True), nullable=True),
        sa.Column("final_category", sa.String(length=20), nullable=True),
        sa.Column("born_day", sa.Integer(), nullable=True),
        sa.Column("known_from_day", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("tool", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("container_id", sa.String(length=200), nullable=True),
        sa.Column("container_key", sa.String(length=200), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_flow_facts")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_flow_facts_completed_at", "flow_facts", ["completed_at"])
    op.create_index("ix_flow_facts_cancelled_at", "flow_facts", ["cancelled_at"])
    op.create_index("ix_flow_facts_last_done_entry", "flow_facts", ["last_done_entry"])
    op.create_index("ix_flow_facts_known_from_day", "flow_facts", ["known_from_day"])
    op.create_index("ix_flow_facts_category", "flow_facts", ["category", "completed_at"])
    op.create_index("ix_flow_facts_counts", "flow_facts", ["kind", "deleted", "final_category", "born_day"])
    op.create_index("ix_flow_facts_container_id", "flow_facts", ["container_id"])
    op.create_index("ix_flow_facts_container_key", "flow_facts", ["container_key"])
    op.create_table(
        "flow_days",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=320), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=True),
        sa.Column("prev_category", sa.String(length=20), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("tool", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("container_id", sa.String(length=200), nullable=True),
        sa.Column("container_key", sa.String(length=200), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("day", "item_id", name=op.f("pk_flow_days")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_flow_days_item", "flow_days", ["item_id"])
    # The facts of everything stored before this revision, derived exactly as the store
    # derives them on every write since (the same function: they are a function of the
    # stored history, and a second copy of that logic here could drift from it).
    from hub.store.flow_facts import backfill_flow_facts

    backfill_flow_facts(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_flow_days_item", table_name="flow_days")
    op.drop_table("flow_days")
    op.drop_index("ix_flow_facts_container_key", table_name="flow_facts")
    op.drop_index("ix_flow_facts_container_id", table_name="flow_facts")
    op.drop_index("ix_flow_facts_counts", table_name="flow_facts")
    op.drop_index("ix_flow_facts_category", table_name="flow_facts")
    op.drop_index("ix_flow_facts_known_from_day", table_name="flow_facts")
    op.drop_index("ix_flow_facts_last_done_entry", table_name="flow_facts")
    op.drop_index("ix_flow_facts_cancelled_at", table_name="flow_facts")
    op.drop_index("ix_flow_facts_completed_at", table_name="flow_facts")
    op.drop_table("flow_facts")
