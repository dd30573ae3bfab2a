"""report facts indexes: the container filter of the insight reports (issue 10 speed)

A report for one container filtered `item_report_facts` by a full scan per
statement (about ten statements per quality report): on PostgreSQL that was most of the
1.4 s a one-container quality report took at 100,000 items. The container filter is
`container_id IN (...) OR container_key IN (...)` (hub/store/queries.py), so each column has
its own index (PostgreSQL combines them with a BitmapOr, SQLite with its OR-by-union plan).
Three more indexes were tried and left out, for SQLite's planner: on (source,
container_id) (the quality report's GROUP BY order: no sort for "everything", 90 ms less
CPU), a covering one for the same-title GROUP BY (110 to 35 ms), and on (source,
status_category). With any of them SQLite scans that index in GROUP BY order, reading the
table row by row through it: for a one-container report instead of searching the two
container indexes, and with the last even for "everything". A source filter keeps about
half of the rows in the benchmarks (few sources), where a scan is the right plan anyway.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 16:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_item_report_facts_container", "item_report_facts", ["container_id"])
    op.create_index("ix_item_report_facts_container_key", "item_report_facts", ["container_key"])


def downgrade() -> None:
    op.drop_index("ix_item_report_facts_container_key", table_name="item_report_facts")
    op.drop_index("ix_item_report_facts_container", table_name="item_report_facts")
