"""Side columns whole: the columns written from values the shared schema does not bound are TEXT

On PostgreSQL the store's bulk writes cast each column's array to the column's type
(hub/store/bulk.py), and an explicit cast to varchar(n) cuts a longer value without a word
(https://www.postgresql.org/docs/current/datatype-character.html). A label of 300 characters
was stored as its first 255 in `item_labels`, so `GET /v1/items?label=<the label>` missed the
item, and two labels sharing their first 255 characters collided on the primary key and failed
their whole batch; keys, container ids and keys, parent ids, link targets, people's emails and
native ids, status names were cut likewise. The writes that go through SQLAlchemy
(status_transitions) were refused instead ("value too long"). SQLite does not enforce declared
lengths, so it kept the whole values: the two backends disagreed.

These columns become TEXT (the cast in hub/store/bulk.py no longer cuts either: a bounded
column is cast to unbounded VARCHAR, so a value too long for it is an error):

- PostgreSQL: varchar(n) -> text is binary-coercible, so ALTER COLUMN TYPE rewrites no table
  and keeps most indexes on these columns as they are (their opclass is text_ops either way).
  Measured on a store of 100,000 items (bench/README.md, "Side columns whole"): no table and
  94 of 98 relations untouched; rebuilt are the indexes whose predicate or INCLUDE list names
  a widened column (ix_items_parent, ix_items_text_walk, ix_items_text_long,
  ix_flow_facts_wip). The column statistics are dropped with the old type: the altered
  tables are analysed again (`_analyze`).
- SQLite: nothing to do. A declared VARCHAR(n) has TEXT affinity and its length is not
  enforced (https://www.sqlite.org/datatype3.html#affinity_name_examples), so the stored values
  are already whole; rebuilding `items` to restate the type would copy every row and recreate
  the FTS5 triggers and `items_text` (migration 0019) for no change in behaviour. The schema
  comparison (tests/test_migrations.py) reads both as the same type on SQLite.

The downgrade restores the lengths on PostgreSQL and refuses (value too long) while a longer
value is stored, rather than cutting it.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-02 05:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As hub/db/tables.py had them before: a migration keeps the shape it was written with.
WIDENED: dict[str, dict[str, int]] = {
    "items": {"key": 200, "container_id": 200, "container_key": 200, "parent_id": 320},
    "item_labels": {"label": 255},
    "item_assignees": {"person_id": 64},
    "item_links": {"target": 1000, "target_id": 320, "target_key": 200},
    "people": {"email": 320},
    "person_identities": {"native_id": 320, "email": 320},
    "status_transitions": {"to_name": 200, "from_name": 200, "native_id": 200},
    "flow_facts": {"container_id": 200, "container_key": 200},
    "flow_days": {"container_id": 200, "container_key": 200},
    "item_report_facts": {"container_id": 200, "container_key": 200, "parent_id": 320},
}


def _alter(table: str, types: dict[str, str]) -> None:
    # One ALTER TABLE per table: its lock is taken and its indexes revisited once.
    changes = ", ".join(f"ALTER COLUMN {column} TYPE {type_}" for column, type_ in types.items())
    op.execute(f"ALTER TABLE {table} {changes}")


def _analyze() -> None:
    # ALTER COLUMN TYPE drops the altered columns' statistics, and the extended statistics
    # of migration 0024 are recreated empty: until the next ANALYZE the planner would guess
    # at every label, key, container and parent filter (and at the `q=` walk's size bound,
    # the 2.3 s pages migration 0024 measured without them). Gather them now, as 0024 did,
    # rather than at autovacuum's next pass (https://www.postgresql.org/docs/current/sql-altertable.html:
    # "the column's statistics are removed"; ANALYZE samples a fixed number of rows, ~2 s here).
    op.execute(f"ANALYZE {', '.join(WIDENED)}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in WIDENED.items():
        _alter(table, dict.fromkeys(columns, "TEXT"))
    _analyze()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in WIDENED.items():
        _alter(table, {column: f"VARCHAR({length})" for column, length in columns.items()})
    _analyze()
