"""report facts flags: the relational hygiene findings as maintained columns (issue 10 speed)

The quality report's findings that relate an item to other items (its parent is missing, it
is done with open children, an epic or feature has no child, another source tracks the same
title) were joins of `item_report_facts` to itself on every request: at 100,000 items about
half of the report's time on both backends. This adds them as columns that
`write_report_facts` keeps in step for the rows around each write
(hub/store/report_facts.py `maintain_flags`), so the report reads each row once:

- `twin_key`: md5 of container family + newline + normalised title (NULL without either),
  with an index: the rows of one title key are found by it when one of them is written (an
  index on the title itself could exceed PostgreSQL's btree row limit for a long title);
- `parent_missing`, `has_live_child`, `has_open_child`, `has_title_twin`;
- partial indexes on the rows with a title twin, an open child or a vocabulary fallback,
  which the report lists (a scan each otherwise).

Existing rows are backfilled: `twin_key` in SQL (PostgreSQL's md5 of the same UTF-8 text;
on SQLite the store's own Python function registered for the statement), then every flag
by one UPDATE (`recompute_all_flags`, the same expressions the store maintains them with).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.store.report_facts import recompute_all_flags, twin_key

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLAGS = ("parent_missing", "has_live_child", "has_open_child", "has_title_twin")
# The few rows the quality report lists by a flag or a fallback, read by index (tables.py).
# SQLite uses a partial index only for a query term written as its WHERE is: `flag = 1` there.
_PARTIAL = {
    "ix_item_report_facts_title_twin": ("has_title_twin = 1", "has_title_twin"),
    "ix_item_report_facts_open_child": ("has_open_child = 1", "has_open_child"),
    "ix_item_report_facts_fallbacks": ("fallbacks IS NOT NULL", "fallbacks IS NOT NULL"),
}


def upgrade() -> None:
    op.add_column("item_report_facts", sa.Column("twin_key", sa.String(32), nullable=True))
    for name in _FLAGS:
        op.add_column("item_report_facts", sa.Column(name, sa.Boolean(), nullable=False, server_default="0"))
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        key = "md5(container_family || chr(10) || title_key)"
    else:
        sqlite = conn.connection.driver_connection
        assert sqlite is not None
        sqlite.create_function("opshub_twin_key", 2, twin_key, deterministic=True)
        key = "opshub_twin_key(container_family, title_key)"
    conn.execute(
        sa.text(
            f"UPDATE item_report_facts SET twin_key = {key} "  # noqa: S608 - no input in it
            "WHERE container_family IS NOT NULL AND container_family != '' AND title_key != ''"
        )
    )
    op.create_index("ix_item_report_facts_twin_key", "item_report_facts", ["twin_key"])
    recompute_all_flags(conn)
    for name, (on_sqlite, on_postgresql) in _PARTIAL.items():
        op.create_index(
            name,
            "item_report_facts",
            ["item_id"],
            sqlite_where=sa.text(on_sqlite),
            postgresql_where=sa.text(on_postgresql),
        )


def downgrade() -> None:
    for name in _PARTIAL:
        op.drop_index(name, table_name="item_report_facts")
    op.drop_index("ix_item_report_facts_twin_key", table_name="item_report_facts")
    for name in ("twin_key", *_FLAGS):
        op.drop_column("item_report_facts", name)
