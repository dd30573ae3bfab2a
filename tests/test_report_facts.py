"""`item_report_facts` (hub/store/report_facts.py) says what the items row and its document
say, on SQLite and PostgreSQL: after upserts and deletions in any order and any batching
(a hypothesis property), and after migration 0006 backfills a database that already holds
items. The reports read only these rows, so a fact out of step would be a wrong report."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import orjson
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from hub.db.engine import alembic_config, migrate
from hub.db.tables import item_report_facts, items
from hub.schema import ItemDeletion, WorkItem
from hub.store import Store
from hub.store.report_facts import COPIED_COLUMNS, FACT_COLUMNS, facts_of_document
from mappings.engine import FALLBACKS_KEY
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item

_DOCUMENT_COLUMNS = FACT_COLUMNS[1 + len(COPIED_COLUMNS) :]


def stored_facts(store: Store) -> dict[str, tuple[Any, ...]]:
    with store.engine.connect() as conn:
        # The columns from the item; the flags that relate rows are tests/test_report_flags.py's.
        return {row[0]: tuple(row) for row in conn.execute(select(*(item_report_facts.c[c] for c in FACT_COLUMNS)))}


def expected_facts(store: Store) -> dict[str, tuple[Any, ...]]:
    """What the facts must be: the items row's copied columns, and the facts of its document."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(items.c.id, *(items.c[name] for name in COPIED_COLUMNS), items.c.doc)).all()
    return {row[0]: (*row[:-1], *facts_of_document(orjson.loads(row[-1]))) for row in rows}


# One version of an item: every field a fact comes from, drawn independently.
_text = st.sampled_from(["", " ", "\n\t", "Why and how.", "Payments: refunds!", "ÉTÉ / été"])
_day = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31))
_fields = st.fixed_dictionaries(
    {
        "title": _text,
        "description": st.none() | _text,
        "status": st.sampled_from(
            [{"category": "todo"}, {"category": "in_progress"}, {"category": "done"}, {"category": "cancelled"}]
        ),
        "kind": st.sampled_from(["story", "epic", "feature", "initiative"]),
        "priority": st.sampled_from([{"level": "none"}, {"level": "high", "name": "High"}]),
        "assignees": st.sampled_from([[], [{"native_id": "u1", "name": "Ann"}]]),
        "estimate": st.none() | st.just({"value": 3, "unit": "points"}),
        "iteration": st.none() | st.just({"id": "s1", "name": "Sprint 1"}),
        "due_on": st.none() | _day,
        "release": st.none() | st.builds(lambda d: {"id": "r1", "release_on": d}, st.none() | _day),
        "rice": st.none()
        | st.sampled_from([{"reach": 10, "impact": 1, "confidence": 0.5, "effort": 2}, {"reach": 10, "effort": 0}]),
        "custom": st.sampled_from(
            [{}, {"team": "x"}, {FALLBACKS_KEY: [{"field": "status", "raw": "Odd"}]}, {FALLBACKS_KEY: "not a list"}]
        ),
        "container": st.none()
        | st.sampled_from(
            [{"id": "c1", "key": "PAY", "name": "acme/Payments"}, {"id": "c2", "key": "OPS"}, {"id": "c3"}]
        ),
        "parent_id": st.none() | st.just("acme-jira:1"),
        "url": st.none() | st.just("https://tool.example/1"),
    }
)
# (native id, minute, fields) is an upsert; (native id, minute, None) a deletion at that minute.
_op = st.tuples(st.sampled_from(["1", "2", "3"]), st.integers(min_value=0, max_value=3), st.none() | _fields)


def _build(native_id: str, minute: int, fields: dict[str, Any] | None) -> WorkItem | ItemDeletion:
    if fields is None:
        return ItemDeletion(source="acme-jira", native_id=native_id, deleted_at=BASE_TIME + timedelta(minutes=minute))
    return make_item(native_id, minutes=minute, **fields)


def test_facts_equal_the_items_row_and_document_after_any_order(store: Store) -> None:
    examples = 40 if store.engine.dialect.name == "sqlite" else 20

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(ops=st.lists(_op, min_size=1, max_size=12), cuts=st.lists(st.integers(0, 12), max_size=4))
    def check(ops: list[tuple[str, int, dict[str, Any] | None]], cuts: list[int]) -> None:
        reset_database(store)
        bounds = sorted({0, len(ops), *(c for c in cuts if c < len(ops))})
        for start, end in itertools.pairwise(bounds):
            store.items.apply([_build(*op) for op in ops[start:end]])
        facts = stored_facts(store)
        assert facts == expected_facts(store)
        # Any upsert stores an items row (under a newer deletion too); deletions alone store none.
        assert bool(facts) == any(fields is not None for _, _, fields in ops)

    check()


def test_documents_facts_match_the_hand_worked_ones(store: Store) -> None:
    store.items.apply(
        [
            make_item(
                "7",
                title="  Refund: Stripe / PayPal!! ",
                description=" \n ",
                assignees=[{"native_id": "u1"}],
                due_on="2026-03-04",
                release={"id": "r", "release_on": "2026-05-06"},
                rice={"reach": 1, "impact": 1, "confidence": 1},
                custom={FALLBACKS_KEY: [{"field": "kind", "raw": "Spike"}, "junk"]},
                container={"id": "c", "key": "PAY", "name": "acme/Payments"},
                url="https://tool.example/7",
            )
        ]
    )
    facts = dict(zip(FACT_COLUMNS, stored_facts(store)["acme-jira:7"], strict=True))
    assert {name: facts[name] for name in _DOCUMENT_COLUMNS} == {
        "url": "https://tool.example/7",
        "container_name": "acme/Payments",
        "due_on": "2026-03-04",
        "release_on": "2026-05-06",
        "has_assignee": True,
        "has_estimate": False,
        "has_description": False,  # whitespace only is blank
        "has_iteration": False,
        "has_rice": False,  # effort missing
        "fallbacks": '[{"field":"kind","raw":"Spike"}]',
        "title_key": "refund stripe paypal",
        "container_family": "payments",
    }
    assert (facts["source"], facts["container_key"], facts["kind"], facts["deleted"]) == (
        "acme-jira",
        "PAY",
        "other",
        False,
    )

    store.items.apply([ItemDeletion(source="acme-jira", native_id="7", deleted_at=BASE_TIME + timedelta(hours=1))])
    assert dict(zip(FACT_COLUMNS, stored_facts(store)["acme-jira:7"], strict=True))["deleted"] is True


def test_migration_0006_backfills_stored_items(store: Store) -> None:
    store.items.apply(
        [
            make_item("1", due_on="2026-02-01", custom={FALLBACKS_KEY: [{"field": "status", "raw": "Odd"}]}),
            make_item("2", title="Épic: Ünïcode", container={"id": "c2", "name": "ops/Platform"}),
            make_item("3", description="text", parent_id="acme-jira:1"),
        ]
    )
    store.items.apply([ItemDeletion(source="acme-jira", native_id="3", deleted_at=BASE_TIME + timedelta(hours=1))])
    written = stored_facts(store)
    assert len(written) == 3

    command.downgrade(alembic_config(store.engine), "0005")
    with store.engine.connect() as conn:  # the table is gone; the items stay
        assert conn.execute(text("SELECT count(*) FROM items")).scalar() == 3
    migrate(store.engine)

    assert stored_facts(store) == written == expected_facts(store)
