"""Migration 0014 (issue 13 store speed): four flow_facts indexes become partial (only rows
with a value), a store at 0011 upgrades to head with its rows and facts kept, and the
downgrade puts the whole indexes back. The facts' values are checked elsewhere
(tests/test_flow_facts.py); here: the schema, the rows, and that the range queries of
hub/insights/flow.py can still use each index."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import Engine, select, text

from hub.db.engine import alembic_config, migrate, schema_status
from hub.db.tables import flow_facts
from hub.store import Store
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item

PARTIAL = ("completed_at", "cancelled_at", "last_done_entry", "known_from_day")


def index_sql(engine: Engine, name: str) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            found = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name})
        else:
            found = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"), {"n": name})
        return str(found.scalar_one())


def facts(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(flow_facts).order_by(flow_facts.c.item_id))]


def seed(store: Store) -> None:
    """Items done, cancelled, reopened and open, so every partial index holds a row."""
    at = BASE_TIME + timedelta(days=3)
    store.items.apply(
        [
            make_item(1, status={"category": "done", "name": "Done"}, completed_at=at, created_at=BASE_TIME),
            make_item(2, status={"category": "cancelled", "name": "Won't do"}, completed_at=at, created_at=BASE_TIME),
            make_item(3, created_at=BASE_TIME),
            make_item(4, created_at=BASE_TIME - timedelta(days=5)),
        ]
    )
    done = {"category": "done", "name": "Done"}
    store.items.apply([make_item(3, minutes=60 * 24, created_at=BASE_TIME, status=done)])
    store.items.apply([make_item(3, minutes=60 * 24 * 2, created_at=BASE_TIME)])  # reopened


def test_0011_upgrades_to_partial_indexes_and_downgrades(store: Store) -> None:
    reset_database(store)
    seed(store)
    before = facts(store.engine)
    assert any(row[flow_facts.c.keys().index("last_done_entry")] is not None for row in before)
    config = alembic_config(store.engine)

    command.downgrade(config, "0011")
    for column in PARTIAL:
        assert "WHERE" not in index_sql(store.engine, f"ix_flow_facts_{column}").upper()
    assert facts(store.engine) == before

    migrate(store.engine)
    assert schema_status(store.engine)[0] == schema_status(store.engine)[1]
    for column in PARTIAL:
        assert f"{column} IS NOT NULL" in index_sql(store.engine, f"ix_flow_facts_{column}")
    assert facts(store.engine) == before

    # Writes after the upgrade keep the facts (and the indexes) in step.
    store.items.apply([make_item(4, minutes=5, status={"category": "cancelled", "name": "Won't do"})])
    with store.engine.connect() as conn:
        cancelled = conn.execute(
            select(flow_facts.c.item_id).where(flow_facts.c.cancelled_at >= BASE_TIME - timedelta(days=30))
        ).scalars()
        assert sorted(cancelled) == ["acme-jira:2", "acme-jira:4"]


def test_range_queries_use_the_partial_indexes(sqlite_store: Store) -> None:
    """SQLite's planner uses a partial `x IS NOT NULL` index for a range on x (the flow
    report's terms); without that the index would be dead weight."""
    seed(sqlite_store)
    with sqlite_store.engine.connect() as conn:
        for column in PARTIAL:
            plan = conn.execute(
                text(
                    f"EXPLAIN QUERY PLAN SELECT item_id FROM flow_facts INDEXED BY ix_flow_facts_{column} WHERE {column} > :v"
                ),
                {"v": 0},
            ).all()
            assert any(f"ix_flow_facts_{column}" in str(row[-1]) for row in plan), plan
