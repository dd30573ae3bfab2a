"""Migration 0017 (issue 13 API speed): the page-order indexes of `items` carry the
low-cardinality filters (hub/db/tables.py `ITEM_FILTERS`) behind (updated_at, id).

On SQLite, a filtered page walks one of them and tests the other filters on the index entry:
the statement reads from the table only the columns it returns, so a selective second filter
no longer reads every candidate's wide row. The migration widens the four indexes on both
backends with the rows kept, and its downgrade puts the old shapes back."""

from __future__ import annotations

import re
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, select, text

from hub.db.engine import alembic_config, migrate, schema_status
from hub.db.tables import ITEM_FILTERS, items
from hub.store import Store
from hub.store.queries import ItemQuery
from tests.conftest import reset_database
from tests.factories import make_item
from tests.sql_support import statements

INDEXES = {
    "ix_items_updated": [],
    "ix_items_source_updated": ["source"],
    "ix_items_kind_updated": ["kind"],
    "ix_items_status_updated": ["status_category"],
}
SOURCES = [("acme-jira", "jira"), ("acme-linear", "linear"), ("acme-gh", "github")]
STATUSES = ["todo", "in_progress", "done"]
KINDS = ["story", "task", "bug", "epic"]
PRIORITIES = ["none", "low", "high", "urgent"]


def seed(store: Store, count: int = 1200) -> None:
    store.items.apply(
        [
            make_item(
                n,
                minutes=n,
                source=SOURCES[n % 3][0],
                tool=SOURCES[n % 3][1],
                status={"category": STATUSES[n // 3 % 3], "name": "S"},
                kind=KINDS[n // 9 % 4],
                priority={"level": PRIORITIES[n // 36 % 4]},
            )
            for n in range(count)
        ]
    )


def is_page_statement(sent: tuple[str, Any]) -> bool:
    return "sort_value" in sent[0] and "LIMIT" in sent[0]


def table_columns_read(conn: Connection, statement: str, parameters: Any) -> set[str]:
    """The `items` columns the statement's bytecode reads from the table (not from an index):
    `Column` opcodes on the cursor opened on the table's root page."""
    root = conn.exec_driver_sql("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'items'").scalar()
    names = [row[1] for row in conn.exec_driver_sql("PRAGMA table_info(items)")]
    program = conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).all()
    cursors = {row[2] for row in program if row[1] == "OpenRead" and row[3] == root}
    return {names[row[3]] for row in program if row[1] == "Column" and row[2] in cursors}


@pytest.mark.parametrize(
    "query",
    [
        ItemQuery(source=["acme-linear"], priority_level=["urgent"]),
        ItemQuery(status_category=["in_progress"], kind=["bug"]),
        ItemQuery(priority_level=["high"], tool=["github"]),
    ],
    ids=["source+priority", "status+kind", "priority+tool"],
)
def test_sqlite_tests_the_filters_on_the_index(sqlite_store: Store, query: ItemQuery) -> None:
    seed(sqlite_store)
    expected = {"doc", "version", "synced_at"}  # what the page returns (hub/store/reading.py READ_COLUMNS)
    for analyze in ("", "ANALYZE"):  # without statistics and with them
        if analyze:
            with sqlite_store.engine.begin() as conn:
                conn.exec_driver_sql(analyze)
        with statements(sqlite_store.engine) as sent:
            first, cursor = sqlite_store.queries.list_items(query, limit=5)
            assert cursor is not None
            sqlite_store.queries.list_items(query, limit=5, cursor=cursor)
        assert first
        with sqlite_store.engine.connect() as conn:
            for statement, parameters in filter(is_page_statement, sent):
                plan = " / ".join(
                    str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                )
                assert any(re.search(rf"USING INDEX {name}\b", plan) for name in INDEXES), plan
                assert table_columns_read(conn, statement, parameters) <= expected, plan


def index_columns(engine: Engine, name: str) -> list[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.execute(
                text(
                    "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                    " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
                    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
                    " WHERE c.relname = :name ORDER BY k.n"
                ),
                {"name": name},
            )
        else:
            rows = conn.exec_driver_sql(f"SELECT name FROM pragma_index_info('{name}') ORDER BY seqno")
        return [str(r[0]) for r in rows]


def assert_index_shapes(engine: Engine, *, wide: bool) -> None:
    for name, leading in INDEXES.items():
        filters = [c for c in ITEM_FILTERS if c not in leading] if wide else []
        columns = index_columns(engine, name)
        if wide and name == "ix_items_updated" and engine.dialect.name == "sqlite":
            # and, since migration 0024, key and title (tests/test_items_text_walk.py)
            assert columns[-2:] == ["key", "title"]
            columns = columns[:-2]
        assert columns == [*leading, "updated_at", "id", *filters]


def test_migration_0017_upgrade_and_downgrade(store: Store) -> None:
    reset_database(store)
    seed(store, 60)
    with store.engine.connect() as conn:
        before = conn.execute(select(items).order_by(items.c.id)).all()
    query = ItemQuery(source=["acme-linear"], priority_level=["none"])
    page, _ = store.queries.list_items(query, limit=100)
    assert page
    assert_index_shapes(store.engine, wide=True)

    command.downgrade(alembic_config(store.engine), "0016")
    assert_index_shapes(store.engine, wide=False)
    assert store.queries.list_items(query, limit=100)[0] == page

    migrate(store.engine)
    assert schema_status(store.engine)[0] == schema_status(store.engine)[1]
    assert_index_shapes(store.engine, wide=True)
    with store.engine.connect() as conn:
        assert conn.execute(select(items).order_by(items.c.id)).all() == before
    assert store.queries.list_items(query, limit=100)[0] == page
