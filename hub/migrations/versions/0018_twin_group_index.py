"""issue 13 store apply: the twin-key index covers the twin verdict (has_title_twin upkeep)

`ItemStore.apply` keeps `item_report_facts.has_title_twin` in step (hub/store/report_facts.py
`_set_title_twins`): for each twin key a written row had or has, it decides whether the
group's live, open rows come from two sources (`GROUP BY twin_key HAVING min(source) <>
max(source)`), before and after the write. With an index on twin_key alone, that read every
live row of those groups from the table: at 1M items (bench/api.py's titles, ~80-320 rows a
group) 8,461 rows and ~14,000 table pages for one batch of 500 stored items, 0.2-0.9 s
(bench/README.md, "Store apply at 1M items", round 3). This index holds every column the
verdict reads (twin_key, deleted, status_category, source), so the verdict reads only index
pages, a group's entries side by side: PostgreSQL an index-only scan (of the pages the
visibility map says are all-visible, i.e. vacuumed since their last change), SQLite a
covering index. It replaces ix_item_report_facts_twin_key (twin_key), whose lookups it serves
too (twin_key leads); an index entry per facts row either way.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01 11:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "item_report_facts"
NEW, OLD = "ix_item_report_facts_twin_group", "ix_item_report_facts_twin_key"


def upgrade() -> None:
    op.drop_index(OLD, table_name=TABLE)
    op.create_index(NEW, TABLE, ["twin_key", "deleted", "status_category", "source"])
    if op.get_bind().dialect.name == "sqlite":
        # A new index has no sqlite_stat1 row until ANALYZE (see 0011 and 0014): measure it,
        # so the planner knows how few rows a twin key names.
        op.execute(f"ANALYZE {NEW}")


def downgrade() -> None:
    op.drop_index(NEW, table_name=TABLE)
    op.create_index(OLD, TABLE, ["twin_key"])
