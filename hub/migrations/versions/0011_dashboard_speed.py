"""dashboard speed (issue 11): ix_items_parent only over items that have a parent

The roadmap walk (hub/roadmap.py) and the item trees ask `parent_id IN (...)` level by level.
Most items have no parent (stories of a flat backlog, every GitHub issue), so the full index
was mostly NULLs, and SQLite's statistics (sqlite_stat1: average rows per distinct value,
NULL counted as a value) said a lookup returns about 2,000 rows: with 500 ids in the IN list
the planner chose a full scan of `items` per level instead (about 22 ms of CPU each at
100,000 items). Indexing only the rows that have a parent makes the index a few per cent of
the size and its statistics honest, so each level is an index lookup again. A query term
`parent_id = ?` or `parent_id IN (...)` implies `parent_id IS NOT NULL`, so both SQLite and
PostgreSQL use the partial index for it (https://www.sqlite.org/partialindex.html, section
2.2; https://www.postgresql.org/docs/current/indexes-partial.html).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HAS_PARENT = sa.text("parent_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_items_parent", table_name="items")
    op.create_index(
        "ix_items_parent", "items", ["parent_id"], sqlite_where=_HAS_PARENT, postgresql_where=_HAS_PARENT
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite keeps the dropped index's sqlite_stat1 row under the same name (measured: the
        # old "2,000 rows a value" stayed and the walk kept scanning): re-measure this index
        # alone (it holds only the items with a parent, so this is quick).
        # https://www.sqlite.org/lang_analyze.html
        op.execute("ANALYZE ix_items_parent")


def downgrade() -> None:
    op.drop_index("ix_items_parent", table_name="items")
    op.create_index("ix_items_parent", "items", ["parent_id"])
