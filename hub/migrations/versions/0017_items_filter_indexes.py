"""issue 13 API speed: the page-order indexes of `items` carry the low-cardinality filters

GET /v1/items walks one index in (updated_at, id) order: `ix_items_updated`, or the index of
one equality filter (`ix_items_source_updated`, `_kind_updated`, `_status_updated`), and
tests every other filter on the row. The row is wide (the item's JSON document), so a
selective second filter read thousands of cold rows per page: at 1,000,000 items the walk
over pages 2..50 of `source=acme-linear&priority_level=urgent` (1 % of the items) took up to
116 ms a page on SQLite and 197 ms on PostgreSQL, `kind=bug&status_category=in_progress` up
to 92 ms on SQLite (bench/README.md).

Each of the four indexes now ends with the other filter columns of `ITEM_FILTERS`
(hub/db/tables.py): deleted, status category, kind, priority level, source, tool. They
follow the unique id, so the walk's order and its keyset bound are the same; what changes
is that the filters are tested on the index entry, and only a matching item's row is read:
SQLite defers the table seek until the statement needs a column the index lacks
(https://www.sqlite.org/opcode.html#DeferredSeek), PostgreSQL evaluates a condition on any
key column of a B-tree inside the index scan ("Index Cond"), before the heap
(https://www.postgresql.org/docs/current/indexes-multicolumn.html). Any mix of these
filters gains, not only the two measured pairs, and a filter without its own index
(`priority_level`, `tool`) walks `ix_items_updated` reading only the rows it returns.

No new index: an item write touches the same four entries, each about 40 bytes wider
(bench/store_apply.py figures in bench/README.md). One write costs more: a tombstone keeps
updated_at but sets `deleted`, now an indexed column, so on PostgreSQL it can no longer be a
HOT update (https://www.postgresql.org/docs/current/storage-hot.html); deletions are rare
next to upserts, which change updated_at and were never HOT.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 11:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As hub/db/tables.py ITEM_FILTERS, written out: a migration keeps the shape it was written with.
FILTERS = ["deleted", "status_category", "kind", "priority_level", "source", "tool"]
# name -> the columns before the filters
INDEXES = {
    "ix_items_updated": [],
    "ix_items_source_updated": ["source"],
    "ix_items_kind_updated": ["kind"],
    "ix_items_status_updated": ["status_category"],
}


def _rebuild(wide: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for name, leading in INDEXES.items():
        filters = [column for column in FILTERS if column not in leading] if wide else []
        op.drop_index(name, table_name="items")
        op.create_index(name, "items", [*leading, "updated_at", "id", *filters])
        if sqlite:
            # SQLite keeps a dropped index's sqlite_stat1 row under its name, with one figure
            # per column of the old shape: measure the new one (migration 0011 says why).
            # https://www.sqlite.org/lang_analyze.html
            op.execute(f"ANALYZE {name}")


def upgrade() -> None:
    _rebuild(wide=True)


def downgrade() -> None:
    _rebuild(wide=False)
