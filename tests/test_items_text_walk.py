"""Migration 0024 (issue 13 API speed): the `q=` walk tests key and title on an index entry.

SQLite's ix_items_updated ends with key and title, so a `q=` page reads from the table only
the columns it returns. PostgreSQL walks two partial indexes, split by the size of the
indexed text (hub/db/tables.py `TEXT_WALK_BOUND`: a B-tree entry is limited to ~2.7 KB, and
titles are unbounded), and merges them. The pages stay those of the substring rule: same
rows, same order, same cursors, long titles included."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text

from hub.db.engine import alembic_config, migrate, schema_status
from hub.db.tables import TEXT_WALK_BOUND, items
from hub.schema import ItemDeletion
from hub.store import Store
from hub.store.queries import ItemQuery, TextPlan
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item
from tests.sql_support import statements
from tests.test_items_filter_indexes import index_columns, is_page_statement, table_columns_read

LONG = "x" * (TEXT_WALK_BOUND + 50)  # over the bound whatever the other columns hold


def seed(store: Store) -> tuple[dict[str, Any], dict[str, Any]]:
    """120 items: every 3rd title holds "Timeout" (case varies), every 7th title is long (the
    long ones with the term at their end, past any prefix), ties in updated_at, and a key that
    holds the term."""
    stored = []
    for n in range(120):
        title = f"Item {n}" + (" login TIMEOUT" if n % 6 == 0 else " timeout" if n % 3 == 0 else "")
        if n % 7 == 0:
            title = LONG + title
        stored.append(make_item(n, minutes=n // 4, title=title, key="OUT-TIMEOUTS-1" if n == 13 else f"P-{n}"))
    store.items.apply(stored)
    gone = stored[3]  # a tombstone that matches
    store.items.apply([ItemDeletion(source=gone.source, native_id=gone.native_id, deleted_at=BASE_TIME)])
    every = {it.id: it for it in stored}
    return {i: it for i, it in every.items() if i != gone.id}, every


def expected_pages(live: dict[str, Any], term: str, descending: bool) -> list[str]:
    found = [
        (it.updated_at, it.id)
        for it in live.values()
        if term.lower() in it.title.lower() or term.lower() in (it.key or "").lower()
    ]
    return [item_id for _, item_id in sorted(found, reverse=descending)]


def walk(store: Store, query: ItemQuery, sort: str, limit: int = 7) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        docs, cursor = store.queries.list_items(query, sort=sort, limit=limit, cursor=cursor)
        ids += [d["id"] for d in docs]
        if cursor is None:
            return ids


def test_q_pages_follow_the_substring_rule_long_titles_included(store: Store) -> None:
    reset_database(store)
    live, every = seed(store)
    assert sum(len(it.title) > TEXT_WALK_BOUND for it in live.values()) >= 15
    for term in ("timeout", "TIMEOUTS", "login time", "item 1"):
        for sort in ("-updated_at", "updated_at"):
            expected = expected_pages(live, term, sort.startswith("-"))
            assert expected, term
            assert walk(store, ItemQuery(q=term), sort) == expected, (term, sort)
    # Tombstones asked for (the tombstone keeps its updated_at), and another filter.
    assert walk(store, ItemQuery(q="timeout", include_deleted=True), "-updated_at") == expected_pages(
        every, "timeout", True
    )
    assert walk(store, ItemQuery(q="timeout", source=["acme-linear"]), "-updated_at") == []


def page_plans(store: Store, query: ItemQuery) -> list[str]:
    with statements(store.engine) as sent:
        _, cursor = store.queries.list_items(query, limit=5)
        store.queries.list_items(query, limit=5, cursor=cursor)
    plans = []
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off; SET enable_bitmapscan = off")
        for statement, parameters in filter(is_page_statement, sent):
            explain = "EXPLAIN " if store.engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
            rows = conn.exec_driver_sql(explain + statement, parameters).all()
            plans.append("\n".join(str(r[0] if len(r) == 1 else r[-1]) for r in rows))
            if store.engine.dialect.name == "sqlite":
                # Only the returned columns come from the table; key and title from the index.
                assert table_columns_read(conn, statement, parameters) <= {"doc", "version", "synced_at"}, plans[-1]
    assert len(plans) == 2
    return plans


def test_the_text_walk_reads_key_and_title_from_the_index(store: Store) -> None:
    reset_database(store)
    seed(store)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE items")
        for plan in page_plans(store, ItemQuery(q="timeout")):
            # The query states the partial indexes' predicates: both are usable, the first
            # without reading the heap.
            assert "Index Only Scan Backward using ix_items_text_walk" in plan, plan
            assert "ix_items_text_long" in plan, plan
    else:
        store.queries.text_plan = TextPlan.WALK
        for analyze in (False, True):
            if analyze:
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            for plan in page_plans(store, ItemQuery(q="timeout")):
                assert "USING INDEX ix_items_updated" in plan, plan


def test_migration_0024_upgrade_and_downgrade(store: Store) -> None:
    reset_database(store)
    live, _ = seed(store)
    with store.engine.connect() as conn:
        before = conn.execute(select(items).order_by(items.c.id)).all()
    expected = expected_pages(live, "timeout", True)
    sqlite = store.engine.dialect.name == "sqlite"

    def shapes() -> list[Any]:
        if sqlite:
            return [index_columns(store.engine, "ix_items_updated")[-2:]]
        with store.engine.connect() as conn:
            return list(
                conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_items_text_%' ORDER BY 1")
                ).all()
            )

    wide = [["key", "title"]] if sqlite else [("ix_items_text_long",), ("ix_items_text_trgm",), ("ix_items_text_walk",)]
    assert shapes() == wide
    command.downgrade(alembic_config(store.engine), "0023")
    assert shapes() == ([["source", "tool"]] if sqlite else [("ix_items_text_trgm",)])
    # This code on the schema before 0024 (the planner then walks ix_items_updated): the same pages.
    assert walk(store, ItemQuery(q="timeout"), "-updated_at") == expected
    migrate(store.engine)
    assert schema_status(store.engine)[0] == schema_status(store.engine)[1]
    assert shapes() == wide
    assert walk(store, ItemQuery(q="timeout"), "-updated_at") == expected
    with store.engine.connect() as conn:
        assert conn.execute(select(items).order_by(items.c.id)).all() == before


def test_postgresql_walks_the_text_index_for_common_terms_only(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A term few items hold keeps the plain statement (the planner may answer it from the
    trigram index); one many hold walks ix_items_text_walk. Both answer the same."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's plans are TextPlan's (tests/test_items_text_index.py)")
    reset_database(store)
    live, _ = seed(store)
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE items")
    monkeypatch.setattr("hub.store.queries.TEXT_WALK_SHARE", 0.2)
    store.queries._text_walks.clear()  # decisions of the last minute are reused
    for term, walks in (("timeout", True), ("TIMEOUTS", False)):  # 40 of 119 items; 1
        with statements(store.engine) as sent:
            assert walk(store, ItemQuery(q=term), "-updated_at") == expected_pages(live, term, True)
        pages = [s for s, _ in filter(is_page_statement, sent)]
        assert pages and all(("octet_length" in s) == walks for s in pages), term
        assert sum(s.startswith("EXPLAIN") for s, _ in sent) == 1  # planned once for the walk


def test_q_with_repeated_filters_and_a_date_answers_on_every_backend(store: Store) -> None:
    """The PostgreSQL walk decision EXPLAINs the page's filters: a repeated filter (an IN list,
    rendered only when the statement runs) and a dated one (a typed parameter) must reach the
    server as they do in the page itself. The EXPLAIN once went out as a string with
    `IN (__[POSTCOMPILE_...])` unrendered, and such a page failed with a 500."""
    live, _ = seed(store)
    store.queries._text_walks.clear()
    query = ItemQuery(
        q="timeout",
        source=["acme-jira", "acme-linear"],
        status_category=["todo", "done"],
        updated_after=BASE_TIME - timedelta(days=1),
    )
    assert walk(store, query, "-updated_at") == expected_pages(live, "timeout", True)
    gone = ItemQuery(q="timeout", source=["acme-jira", "acme-linear"], updated_after=BASE_TIME + timedelta(days=1))
    assert walk(store, gone, "-updated_at") == []
