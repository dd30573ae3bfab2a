"""issue 13 API speed: the `q=` walk tests key and title on an index entry, not on the wide row

GET /v1/items?q=timeout (a term 7 % of the items hold) walks the page-order index and tests
`key ILIKE '%timeout%' OR title ILIKE '%timeout%'` on every row it passes: ~1,400 rows for a
page of 100, each a cold read of the item's wide row (its JSON document). At 1,000,000 items
that walk's pages took 28-46 ms at p50 and up to 87 ms (bench/README.md, session 8). The text
index of migration 0019 cannot help a term this common: any plan through it gathers all
71,160 matches first.

Key and title now sit in a page-order index, so the test reads the index entry and only the
page's rows are read from the table:

- SQLite: `ix_items_updated` ends with `key, title` after its filter columns. SQLite defers
  the table seek until a column outside the index is needed
  (https://www.sqlite.org/opcode.html#DeferredSeek), as migration 0017 used for the filters.
  No new index: an item write touches the same entry, ~50 bytes wider.
- PostgreSQL evaluates a non-indexable condition (ILIKE) before the heap only in an
  index-only scan, and a B-tree entry may not exceed ~2.7 KB while titles are unbounded. So:
  `ix_items_text_walk` (updated_at, id, the filters, key, title) holds the items whose
  variable-length columns sum to at most 2,000 bytes, `ix_items_text_long` (updated_at, id)
  the others, and a `q=` page merges one walk of each (hub/store/queries.py). Two new
  indexes on every item write, and statistics on the size expression (below).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 02:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As hub/db/tables.py, written out: a migration keeps the shape it was written with.
FILTERS = ["deleted", "status_category", "kind", "priority_level", "source", "tool"]
TEXT = ["key", "title"]
SIZE = (
    "octet_length(id) + octet_length(source) + octet_length(tool) + coalesce(octet_length(key), 0)"
    " + octet_length(title)"
)
BOUND = 2000
STATISTICS = "st_items_text_size"


def _sqlite_updated_index(columns: list[str]) -> None:
    op.drop_index("ix_items_updated", table_name="items")
    op.create_index("ix_items_updated", "items", ["updated_at", "id", *columns])
    # A dropped index's sqlite_stat1 row stays under its name, with one figure per column of
    # the old shape: measure the new one (migration 0017). https://www.sqlite.org/lang_analyze.html
    op.execute("ANALYZE ix_items_updated")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_updated_index([*FILTERS, *TEXT])
        return
    op.execute(
        f"CREATE INDEX ix_items_text_walk ON items (updated_at, id, {', '.join(FILTERS + TEXT)})"
        f" WHERE {SIZE} <= {BOUND}"
    )
    op.execute(f"CREATE INDEX ix_items_text_long ON items (updated_at, id) WHERE {SIZE} > {BOUND}")
    # Without statistics on the size, the planner takes `size > 2000` to hold for a third of
    # the items (its default for an inequality) and may walk another index for the second
    # branch, reading every row of a source to find none: 2.3 s a page for
    # `q=timeout&source=acme-linear` at 1M (bench/README.md). Statistics on the expression
    # (PostgreSQL 14 and later: https://www.postgresql.org/docs/current/planner-stats.html#PLANNER-STATS-EXTENDED)
    # tell it that almost no item is over the bound; ANALYZE gathers them now rather than at
    # autovacuum's next pass.
    if (op.get_bind().dialect.server_version_info or (0,)) >= (14,):
        op.execute(f"CREATE STATISTICS {STATISTICS} ON (({SIZE})) FROM items")
        op.execute("ANALYZE items")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_updated_index(FILTERS)
        return
    op.execute(f"DROP STATISTICS IF EXISTS {STATISTICS}")
    op.drop_index("ix_items_text_long", table_name="items")
    op.drop_index("ix_items_text_walk", table_name="items")
