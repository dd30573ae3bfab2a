"""quality speed (issue 11): on SQLite, a covering index in the order of the quality tallies

Numbered 0016: it was written as 0015 beside the flow read indexes (also 0015) and renumbered
when both landed.

The quality report's tallies (hub/insights/quality.py `_Reader.tallies_by_class`) count every facts row
of the report by the columns that classify it (`_CLASSES`: container, source, status
category, kind, priority, the `has_*` fields, the two maintained flags) plus its updated_at
(stale in progress), fallbacks (drift) and id (each group's first item). With no index in
that order SQLite scanned the table and sorted every row into a temporary B-tree for the
GROUP BY: 140-200 ms of CPU at 100,000 items, the most of the "everything" page. This index
holds every column the statement reads, in its GROUP BY order, so SQLite walks the index alone
and streams the groups: about 25-30 ms ("SCAN item_report_facts USING COVERING INDEX").
https://www.sqlite.org/queryplanner.html ("Covering indexes", "Sorting by index").

`deleted` comes after the classes, so the filtered and the unfiltered (include_deleted)
report both stream. A source or status filter seeks into the index (covering, too). A
container filter does not use it: `tallies_by_class` groups by `+source` there, so SQLite keeps
its two-index OR plan (ix_item_report_facts_container / _container_key, migration 0009)
instead of walking this index in GROUP BY order and reading each row's container_key from the
table (125 ms instead of 12).

SQLite only (hub/db/tables.py `sqlite_only`): PostgreSQL keeps the per-group statement
(`tallies_by_group`; the per-class one was slower there, its parallel aggregate sorting
twelve columns), and an index on updated_at would make each facts update there a non-HOT
update (https://www.postgresql.org/docs/current/storage-hot.html). The store's
apply pays one more index entry per facts row it writes on SQLite (bench/README.md, issue 13).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 07:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_item_report_facts_tallies"
COLUMNS = [
    "source",
    "container_id",
    "status_category",
    "kind",
    "priority_level",
    "has_assignee",
    "has_estimate",
    "has_description",
    "has_iteration",
    "has_rice",
    "has_open_child",
    "parent_missing",
    "deleted",
    "updated_at",
    "fallbacks",
    "item_id",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.create_index(NAME, "item_report_facts", COLUMNS)
    # Measure it, so the planner knows how few rows a source or container prefix holds.
    # https://www.sqlite.org/lang_analyze.html
    op.execute(f"ANALYZE {NAME}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.drop_index(NAME, table_name="item_report_facts")
