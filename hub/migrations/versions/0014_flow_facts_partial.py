"""issue 13 store speed: the flow facts' rarely-set time indexes hold only the rows that have one

`apply` writes a `flow_facts` row for every new item and for every change of status. Four of
its indexes are on a column that most rows leave NULL: `cancelled_at` (cancelled items only),
`last_done_entry` (reopened items only), `known_from_day` (items first seen after their
creation day) and `completed_at` (items done now). A full index still gets an entry per row;
in SQLite's WITHOUT ROWID table the NULL entries are ordered by item id, so each write was one
more random b-tree page to read and to put in the WAL: at 1,000,000 items, a cache miss each.
Every query on these columns is a range or comparison on the column (hub/insights/flow.py:
`cancelled_at >= ?`, `last_done_entry >= ?`, `known_from_day > ?`, `completed_at >= ?`), which
implies `IS NOT NULL`, so both SQLite and PostgreSQL use the partial index for it
(https://www.sqlite.org/partialindex.html, section 2.2;
https://www.postgresql.org/docs/current/indexes-partial.html). The count of done items
without a completion time (`completed_at IS NULL`) uses `ix_flow_facts_category`
(category, completed_at), which stays whole.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 04:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PARTIAL = ("completed_at", "cancelled_at", "last_done_entry", "known_from_day")


def upgrade() -> None:
    for column in PARTIAL:
        name = f"ix_flow_facts_{column}"
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(name, table_name="flow_facts")
        op.create_index(name, "flow_facts", [column], sqlite_where=where, postgresql_where=where)
        if op.get_bind().dialect.name == "sqlite":
            # SQLite keeps a dropped index's sqlite_stat1 row under its name (see 0011):
            # measure the new one, so the planner sees how few rows it holds.
            # https://www.sqlite.org/lang_analyze.html
            op.execute(f"ANALYZE {name}")


def downgrade() -> None:
    for column in PARTIAL:
        name = f"ix_flow_facts_{column}"
        op.drop_index(name, table_name="flow_facts")
        op.create_index(name, "flow_facts", [column])
