"""The quality report's tallies (hub/insights/quality.py `_Reader.tallies`, issue 11 speed).

Two statements count them: per (source, container) with an aggregate per count
(`tallies_by_group`, PostgreSQL's) and per class of row added up in Python
(`tallies_by_class`, SQLite's, read from migration 0016's covering index). Here, on both
backends and for any mix of items (every field that a count reads, deletions, missing and
held parents, fallbacks, stale and fresh work) and the filters that change the plan, both
give the same counts, first items and SQL finding counts. On SQLite, the per-class statement
reads the covering index without a sort, and a container filter still uses the container
indexes. Migration 0016 adds the index on SQLite only, and its downgrade removes it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from hub.db.engine import alembic_config, migrate
from hub.db.tables import item_report_facts
from hub.insights.quality import _Reader
from hub.schema import ItemDeletion
from hub.store import Store
from hub.store.queries import ItemQueries, ItemQuery
from mappings.engine import FALLBACKS_KEY
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item
from tests.sql_support import statements

SOURCES = {"acme-jira": "jira", "acme-gh": "github"}
AS_OF = BASE_TIME + timedelta(days=30)
STALE_BEFORE = AS_OF - timedelta(days=14)
QUERIES = {
    "everything": ItemQuery(),
    "include_deleted": ItemQuery(include_deleted=True),
    "container": ItemQuery(container=["PAY"]),
    "source": ItemQuery(source=["acme-gh"]),
    "status": ItemQuery(status_category=["in_progress", "done"]),
}

_fields = st.fixed_dictionaries(
    {
        "container": st.sampled_from(
            [None, {"id": "P1", "key": "PAY", "name": "Payments"}, {"id": "P2", "key": "OPS", "name": "Ops"}]
        ),
        "status": st.sampled_from(
            [
                {"category": "todo", "name": "To Do"},
                {"category": "in_progress", "name": "Doing"},
                {"category": "done", "name": "Done"},
                {"category": "cancelled", "name": "Won't do"},
            ]
        ),
        "kind": st.sampled_from(["story", "task", "epic", "feature", "initiative"]),
        "priority": st.sampled_from([{"level": "none"}, {"level": "high", "name": "High"}]),
        "assignees": st.sampled_from([[], [{"native_id": "u1", "name": "Ann"}]]),
        "estimate": st.sampled_from([None, {"value": 3, "unit": "points"}]),
        "description": st.sampled_from([None, "  ", "Why and how."]),
        "iteration": st.sampled_from([None, {"id": "S1", "name": "Sprint 1"}]),
        "rice": st.sampled_from([None, {"reach": 10}, {"reach": 10, "impact": 2, "confidence": 0.8, "effort": 3}]),
        "parent_id": st.sampled_from([None, "acme-jira:1", "acme-jira:2", "acme-gh:1", "acme-jira:GONE"]),
        "custom": st.sampled_from([{}, {FALLBACKS_KEY: [{"field": "status", "raw": "Triage"}]}]),
    }
)
# (source, native id, fields or None: a deletion, fresh: written after STALE_BEFORE or long
# before it); few ids, so items are rewritten, deleted and parents of each other.
_op = st.tuples(
    st.sampled_from(sorted(SOURCES)),
    st.sampled_from(["1", "2", "3"]),
    st.one_of(_fields, _fields, _fields, st.none()),
    st.booleans(),
)


def _apply(store: Store, ops: list[Any]) -> None:
    """Each op a batch, old ones first and each newer than the one before (write-if-newer
    would drop an older write: its own tests)."""
    for minute, (source, native_id, fields, fresh) in enumerate(sorted(ops, key=lambda op: op[3])):
        at = BASE_TIME + timedelta(days=17 if fresh else 0, minutes=minute)
        if fields is None:
            store.items.apply([ItemDeletion(source=source, native_id=native_id, deleted_at=at)])
        else:
            minutes = int((at - BASE_TIME).total_seconds() // 60)
            store.items.apply([make_item(native_id, minutes=minutes, source=source, tool=SOURCES[source], **fields)])


def both_tallies(store: Store, query: ItemQuery) -> tuple[Any, Any]:
    with store.engine.connect() as conn:
        conditions = ItemQueries(store.engine).filter_conditions(conn, query)
        reader = _Reader(conn, conditions, STALE_BEFORE, by_container=bool(query.container))
        return reader.tallies_by_class(), reader.tallies_by_group()


def test_both_statements_give_the_same_tallies(store: Store) -> None:
    examples = 200 if store.engine.dialect.name == "sqlite" else 60

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(ops=st.lists(_op, min_size=1, max_size=14))
    def check(ops: list[Any]) -> None:
        reset_database(store)
        _apply(store, ops)
        for name, query in QUERIES.items():
            by_class, by_group = both_tallies(store, query)
            assert by_class == by_group, name

    check()


def test_hand_worked_tallies(store: Store) -> None:
    """One group with each count non-zero, checked against numbers worked out by hand."""
    pay = {"id": "P1", "key": "PAY", "name": "Payments"}
    full: dict[str, Any] = {
        "assignees": [{"native_id": "u1", "name": "Ann"}],
        "estimate": {"value": 3, "unit": "points"},
        "priority": {"level": "high"},
        "description": "Why.",
        "iteration": {"id": "S1", "name": "Sprint 1"},
    }
    doing = {"category": "in_progress", "name": "Doing"}
    store.items.apply(
        [
            make_item("1", container=pay, kind="epic", status={"category": "done", "name": "Done"}),  # open child 2
            make_item("2", container=pay, parent_id="acme-jira:1", status=doing, **full),  # stale (day 0)
            make_item("3", container=pay, kind="feature", minutes=60 * 24 * 20, **full),  # fresh, RICE missing
            make_item("4", container=pay, parent_id="acme-jira:GONE", custom={FALLBACKS_KEY: [{"field": "kind"}]}),
        ]
    )
    (tallies, first_of, counts), _ = both_tallies(store, ItemQuery())
    tally = tallies[("acme-jira", "P1")]
    assert (tally.items, tally.open_items, tally.drifting, tally.flagged) == (4, 3, 1, 3)
    assert dict(tally.present) == {
        "assignee": 2,
        "estimate": 2,
        "priority": 2,
        "description": 2,
        "iteration": 2,
        "rice": 0,
    }
    assert tally.applicable["assignee"] == 3 and tally.applicable["rice"] == 1
    assert first_of == {("acme-jira", "P1"): "acme-jira:1"}
    assert dict(counts) == {"stale_in_progress": 1, "done_parent_open_children": 1, "missing_parent": 1}


def tallies_plan(store: Store, query: ItemQuery) -> str:
    with statements(store.engine) as sent:
        both_tallies(store, query)
    statement, parameters = next(sent_ for sent_ in sent if "GROUP BY" in sent_[0])  # tallies_by_class's
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    return " / ".join(str(row[-1]) for row in plan)


def test_sqlite_counts_from_the_covering_index_without_a_sort(sqlite_store: Store) -> None:
    containers = [{"id": f"C{n}", "key": f"TEAM{n}"} for n in range(20)]
    sqlite_store.items.apply(
        [make_item(n, container=containers[n % 20], parent_id=f"acme-jira:{n // 10}") for n in range(2000)]
    )
    # Without statistics (a store migrated before it held data), with this index's alone (a
    # store that held data when migration 0016 measured its new index), and with all.
    for analyze in ("", "ANALYZE ix_item_report_facts_tallies", "ANALYZE"):
        if analyze:
            with sqlite_store.engine.begin() as conn:
                conn.exec_driver_sql(analyze)
        everything = tallies_plan(sqlite_store, ItemQuery())
        assert "COVERING INDEX ix_item_report_facts_tallies" in everything
        assert "TEMP B-TREE" not in everything
        with_deleted = tallies_plan(sqlite_store, ItemQuery(include_deleted=True))
        assert "COVERING INDEX ix_item_report_facts_tallies" in with_deleted
        assert "COVERING INDEX ix_item_report_facts_tallies (source=?)" in tallies_plan(
            sqlite_store, ItemQuery(source=["acme-jira"])
        )
        # One container: its rows through the container indexes, not a walk of the whole index.
        one = tallies_plan(sqlite_store, ItemQuery(container=["TEAM3"]))
        assert "INDEX ix_item_report_facts_container (" in one and "INDEX ix_item_report_facts_container_key (" in one


def index_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            rows = conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'item_report_facts'"))
        else:
            rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
        return set(rows.scalars())


def test_migration_0016_upgrade_and_downgrade(store: Store) -> None:
    reset_database(store)
    store.items.apply([make_item(n, container={"id": "P1", "key": "PAY"}) for n in range(5)])
    with store.engine.connect() as conn:
        before = conn.execute(select(item_report_facts).order_by(item_report_facts.c.item_id)).all()
    sqlite = store.engine.dialect.name == "sqlite"
    assert ("ix_item_report_facts_tallies" in index_names(store.engine)) is sqlite

    command.downgrade(alembic_config(store.engine), "0015")
    assert "ix_item_report_facts_tallies" not in index_names(store.engine)
    migrate(store.engine)
    assert ("ix_item_report_facts_tallies" in index_names(store.engine)) is sqlite
    with store.engine.connect() as conn:
        assert conn.execute(select(item_report_facts).order_by(item_report_facts.c.item_id)).all() == before
    (tallies, _, _), _ = both_tallies(store, ItemQuery())
    assert tallies[("acme-jira", "P1")].items == 5
