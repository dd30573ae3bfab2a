"""Migration 0015 (issue 11 flow page speed): PostgreSQL gets two covering indexes for a flow
request's cumulative flow and work in progress, SQLite gets none; the rows stay as they were
either way, the downgrade drops them, and PostgreSQL answers the service's own statements
from the indexes alone once the pages are all-visible (what the indexes are for)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alembic import command
from sqlalchemy import Engine, event, select, text

from hub.db.engine import alembic_config, migrate, schema_status
from hub.db.tables import flow_days, flow_facts
from hub.insights.flow import FlowService
from hub.store import Store
from hub.store.queries import ItemQuery
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item

INDEXES = ("ix_flow_days_cfd", "ix_flow_facts_wip")


def index_sql(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'ix_flow_%'"))
        else:
            rows = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_flow_%'")
            )
        return {str(name): str(sql) for name, sql in rows}


def rows(engine: Engine) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with engine.connect() as conn:
        facts = [tuple(r) for r in conn.execute(select(flow_facts).order_by(flow_facts.c.item_id))]
        days = [tuple(r) for r in conn.execute(select(flow_days).order_by(flow_days.c.day, flow_days.c.item_id))]
        return facts, days


def seed(store: Store) -> None:
    """Items in progress, done and open, each with a few days of category changes."""
    doing = {"category": "in_progress", "name": "Doing"}
    done = {"category": "done", "name": "Done"}
    store.items.apply(
        [make_item(n, created_at=BASE_TIME - timedelta(days=10), container={"id": "c1"}) for n in range(6)]
    )
    store.items.apply([make_item(n, minutes=60 * 24, status=doing) for n in range(4)])
    store.items.apply([make_item(n, minutes=60 * 24 * 3, status=done) for n in range(2)])


def test_0014_upgrades_to_the_covering_indexes_on_postgresql_only_and_downgrades(store: Store) -> None:
    reset_database(store)
    seed(store)
    before = rows(store.engine)
    assert before[0] and before[1]
    postgresql = store.engine.dialect.name == "postgresql"

    command.downgrade(alembic_config(store.engine), "0014")
    assert not set(INDEXES) & set(index_sql(store.engine))
    assert rows(store.engine) == before

    migrate(store.engine)
    assert schema_status(store.engine)[0] == schema_status(store.engine)[1]
    found = index_sql(store.engine)
    if postgresql:
        assert "(day) INCLUDE (category, prev_category, kind, deleted" in found["ix_flow_days_cfd"]
        wip = found["ix_flow_facts_wip"]
        assert "(created_at) INCLUDE (item_id, start, started_at, has_history" in wip
        assert "WHERE ((category)::text = 'in_progress'::text)" in wip
    else:
        assert not set(INDEXES) & set(found)
    assert rows(store.engine) == before


def test_postgresql_reads_the_cumulative_flow_and_the_wip_from_the_indexes_alone(store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        return  # SQLite has neither index (see the migration)
    reset_database(store)
    seed(store)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) flow_facts, flow_days"))  # the visibility map, as autovacuum sets it
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        for query in (ItemQuery(), ItemQuery(container=["c1"])):
            statements.clear()
            FlowService(store.engine).flow(query, as_of=BASE_TIME + timedelta(days=5))
            cfd = [s for s in statements if "FROM flow_days" in s[0]]
            wip = [s for s in statements if "'in_progress'" in s[0] and "FROM flow_facts" in s[0]]
            assert len(cfd) == len(wip) == 1, statements
            with store.engine.connect() as conn:
                # A handful of rows: make the scans the planner would weigh at 100,000 items the
                # only ones left, and check that the index answers them with no table read.
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
                for (statement, parameters), index in ((cfd[0], "ix_flow_days_cfd"), (wip[0], "ix_flow_facts_wip")):
                    plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
                    assert f"Index Only Scan using {index}" in plan, (query, plan)
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
