"""report facts indexes: the container and source filters of the insight reports (issue 10 speed)

A report for one container (or one source) filtered `item_report_facts` by a full scan per
statement (about ten statements per quality report): on PostgreSQL that was most of the
1.4 s a one-container quality report took at 100,000 items. The container filter is
`container_id IN (...) OR container_key IN (...)` (hub/store/queries.py), so each column has
its own index (PostgreSQL combines them with a BitmapOr, SQLite with its OR-by-union plan).
The source index leads with (source, container_id), the quality report's GROUP BY: SQLite
reads the groups in index order instead of sorting 100,000 rows (its tallies query: 410 to
320 ms of CPU at 100,000 items). The title index covers the quality report's same-title
GROUP BY (family, title, then the source, status and deleted it filters and compares on):
read from the index alone, 110 to 35 ms of CPU on SQLite at 100,000 items.

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
    op.create_index("ix_item_report_facts_source", "item_report_facts", ["source", "container_id"])
    op.create_index(
        "ix_item_report_facts_title",
        "item_report_facts",
        ["container_family", "title_key", "source", "status_category", "deleted"],
    )


def downgrade() -> None:
    op.drop_index("ix_item_report_facts_title", table_name="item_report_facts")
    op.drop_index("ix_item_report_facts_source", table_name="item_report_facts")
    op.drop_index("ix_item_report_facts_container_key", table_name="item_report_facts")
    op.drop_index("ix_item_report_facts_container", table_name="item_report_facts")
