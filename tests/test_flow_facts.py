"""Per-item flow facts (hub/store/flow_facts.py) stay what the full history says, on SQLite
and PostgreSQL.

The flow service reads `flow_facts`/`flow_days` instead of every transition, so they must
equal what hub/flow/history.py makes of the item's whole stored history however the facts
arrived: webhooks' facts with the item (`apply(transitions=...)`), a backfill afterwards
(`TransitionStore.record`), in any order, in any batches, twice. That the facts give the
same figures as hub/flow/metrics.py is tests/test_insights_flow_service.py's job.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from hub.db.engine import write_transaction
from hub.db.tables import flow_days, flow_facts, items
from hub.flow.history import Transition, TransitionSource
from hub.insights.flow import FlowService, with_delivery_kinds
from hub.schema import ItemDeletion, WorkItem, to_utc
from hub.schema import StatusCategory as C
from hub.store import ItemQuery, Store
from hub.store.bulk import _sqlite_time, _utc_time
from hub.store.flow_facts import (
    FILTER_COLUMNS,
    _fact_row,
    backfill_flow_facts,
    derive,
    first_seen_rows,
)
from hub.store.transitions import TransitionStore
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item

NAMES = {C.backlog: "Backlog", C.todo: "To Do", C.in_progress: "Doing", C.done: "Done", C.cancelled: "Dropped"}
ITEM = "acme-jira:1"

# A tool-given fact: (hours after BASE_TIME, entered category, left category or None, source).
facts_strategy = st.lists(
    st.tuples(
        st.integers(-48, 24 * 60),
        st.sampled_from(list(C)),
        st.one_of(st.none(), st.sampled_from(list(C))),
        st.sampled_from(list(TransitionSource)),
    ),
    min_size=0,
    max_size=8,
)


def _facts(raw: list[tuple[int, C, C | None, TransitionSource]]) -> list[Transition]:
    return [
        Transition(ITEM, BASE_TIME + timedelta(hours=hours), to, NAMES[to], before, None, source)
        for hours, to, before, source in raw
    ]


def _item(category: C, *, created_hours: int, updated_hours: int, completed: bool) -> WorkItem:
    return make_item(
        1,
        minutes=updated_hours * 60,
        created_at=BASE_TIME + timedelta(hours=created_hours),
        completed_at=BASE_TIME + timedelta(hours=updated_hours) if completed else None,
        status={"category": category.value, "name": NAMES[category]},
        kind="story",
        container={"id": "c1", "key": "TEAM", "name": "Team"},
    )


def _stored(store: Store) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        row = conn.execute(select(flow_facts).where(flow_facts.c.item_id == ITEM)).mappings().one()
        days = conn.execute(
            select(flow_days.c.day, flow_days.c.category, flow_days.c.prev_category)
            .where(flow_days.c.item_id == ITEM)
            .order_by(flow_days.c.day)
        ).all()
    return dict(row), [tuple(day) for day in days]


def _from_full_history(store: Store) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """What `derive` makes of the item's row and every transition stored for it."""
    with store.engine.connect() as conn:
        row = conn.execute(select(items).where(items.c.id == ITEM)).mappings().one()
    doc = store.items.get(ITEM)
    assert doc is not None
    completed = doc.get("completed_at")
    expected = derive(
        ITEM,
        row["created_at"],
        C(row["status_category"]),
        completed if completed is None else _utc(completed),
        store.items.transitions.history(ITEM),
        {name: row[name] for name in FILTER_COLUMNS},
    )
    return expected.row, [tuple(day) for day in expected.days]


def _utc(value: Any) -> datetime:
    return to_utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))


def test_facts_equal_the_full_history_whatever_the_order(store: Store) -> None:
    """Facts delivered in any order and batches, half with the item and half as a later
    backfill, then all of them again: the stored facts are the full history's, and the same
    as delivering everything in time order."""
    examples = 40 if store.engine.dialect.name == "sqlite" else 12

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    # Found by hypothesis: two observations of one change, one saying the item left
    # in_progress and one not saying what it left. The store kept whichever came first,
    # so the start was "seen" in time order and "before_history" shuffled (Random(0) swaps them).
    @example(
        raw=[
            (-1, C.in_progress, None, TransitionSource.observed),
            (-1, C.in_progress, C.in_progress, TransitionSource.observed),
        ],
        category=C.backlog,
        created_hours=0,
        completed=False,
        rng=random.Random(0),
        cuts=[],
    )
    @given(
        facts_strategy,
        st.sampled_from(list(C)),
        st.integers(-24, 24 * 30),
        st.booleans(),
        st.randoms(),
        st.lists(st.integers(0, 8), max_size=3),
    )
    def check(
        raw: list[tuple[int, C, C | None, TransitionSource]],
        category: C,
        created_hours: int,
        completed: bool,
        rng: random.Random,
        cuts: list[int],
    ) -> None:
        facts = _facts(raw)
        item = _item(category, created_hours=created_hours, updated_hours=24 * 61, completed=completed)
        transitions = TransitionStore(store.engine)

        reset_database(store)
        store.items.apply([item], transitions=sorted(facts, key=lambda f: f.at))
        in_time_order = _stored(store)
        assert in_time_order == _from_full_history(store)

        reset_database(store)
        shuffled = rng.sample(facts, len(facts))
        points = sorted({0, len(shuffled), *(c for c in cuts if c < len(shuffled))})
        batches = [shuffled[a:b] for a, b in pairwise(points)]
        first, later = batches[: len(batches) // 2], batches[len(batches) // 2 :]
        transitions.record(first[0] if first else [])  # a backfill that overtook the item
        store.items.apply([item], transitions=[f for batch in first for f in batch])
        for batch in later:
            transitions.record(batch)  # a backfill after the webhooks
        for batch in reversed(batches):
            transitions.record(rng.sample(batch, len(batch)))  # replayed
        store.items.apply([item], transitions=facts)  # and the same item again
        assert _stored(store) == in_time_order

    check()


def test_the_store_keeps_the_fact_the_history_keeps_whichever_arrived_first(store: Store) -> None:
    """Two facts with one identity from one source, differing only in the status they left:
    both writers (`TransitionStore.record`, `apply(transitions=...)`) keep the one
    `build_history` keeps (the smallest `Transition.preference`: no from-category), in
    either arrival order, so the start is the same whatever came first."""
    unsaid, said = _facts(
        [
            (-1, C.in_progress, None, TransitionSource.observed),
            (-1, C.in_progress, C.in_progress, TransitionSource.observed),
        ]
    )
    item = _item(C.backlog, created_hours=0, updated_hours=1, completed=False)
    writers = {
        "record": lambda facts: TransitionStore(store.engine).record(facts),
        "apply": lambda facts: store.items.apply([item], transitions=facts),
    }
    for name, write in writers.items():
        for arrivals in ([[unsaid, said]], [[said, unsaid]], [[unsaid], [said]], [[said], [unsaid]]):
            reset_database(store)
            store.items.apply([item])
            for batch in arrivals:
                write(batch)
            stored = [fact for fact in store.items.transitions.history(ITEM) if fact.at == unsaid.at]
            assert stored == [unsaid], (name, arrivals)
            row, days = _stored(store)
            assert (row["start"], row["started_at"]) == ("seen", BASE_TIME - timedelta(hours=1)), (name, arrivals)
            assert (row, days) == _from_full_history(store)


def test_a_status_change_and_a_new_created_at_refresh_the_facts(store: Store) -> None:
    store.items.apply([_item(C.todo, created_hours=0, updated_hours=1, completed=False)])
    assert _stored(store)[0]["category"] == "todo"
    store.items.apply([_item(C.in_progress, created_hours=0, updated_hours=5, completed=False)])
    row, days = _stored(store)
    assert (row["category"], row["start"], row["started_at"]) == ("in_progress", "seen", BASE_TIME + timedelta(hours=5))
    assert (row, days) == _from_full_history(store)
    moved = _item(C.done, created_hours=-72, updated_hours=9, completed=True)
    moved.container = None
    store.items.apply([moved])
    row, days = _stored(store)
    assert row["born_day"] == (BASE_TIME - timedelta(hours=72)).toordinal()
    assert row["container_key"] is None
    assert row["completed_at"] == BASE_TIME + timedelta(hours=9)
    assert (row, days) == _from_full_history(store)


def test_the_backfill_gives_the_facts_apply_writes(store: Store) -> None:
    """Migration 0005 derives the facts of data stored before it with `backfill_flow_facts`:
    the same rows as the store writes itself."""
    store.items.apply([_item(C.todo, created_hours=0, updated_hours=1, completed=False)])
    store.items.apply([_item(C.done, created_hours=0, updated_hours=30, completed=True)])
    TransitionStore(store.engine).record(
        _facts(
            [
                (3, C.in_progress, C.todo, TransitionSource.changelog),
                (20, C.done, C.in_progress, TransitionSource.changelog),
            ]
        )
    )
    written = _stored(store)
    with write_transaction(store.engine) as conn:
        conn.execute(delete(flow_days))
        conn.execute(delete(flow_facts))
        assert backfill_flow_facts(conn, batch=1) == 1
    assert _stored(store) == written
    assert written[0]["start"] == "seen"


def test_two_writers_of_one_items_history_at_once(store: Store) -> None:
    """A history import and a webhook's facts for the same item in two transactions at the
    same moment: the facts are those of the whole history, never one writer's half (on
    PostgreSQL the second writer waits for the item row, then reads the first's facts)."""
    transitions = TransitionStore(store.engine)
    half_a = _facts([(2, C.in_progress, C.todo, TransitionSource.changelog)])
    half_b = _facts([(30, C.done, C.in_progress, TransitionSource.webhook)])
    for _ in range(20):
        reset_database(store)
        store.items.apply([_item(C.todo, created_hours=0, updated_hours=0, completed=False)])
        start = threading.Barrier(2)

        def write(facts: list[Transition], start: threading.Barrier = start) -> None:
            start.wait()
            transitions.record(facts)

        with ThreadPoolExecutor(2) as pool:
            for done in [pool.submit(write, half_a), pool.submit(write, half_b)]:
                done.result()
        row, days = _stored(store)
        assert (row, days) == _from_full_history(store)
        assert (row["start"], row["started_at"], row["final_category"]) == (
            "seen",
            BASE_TIME + timedelta(hours=2),
            "done",
        )


def test_a_deleted_item_leaves_the_flow_figures_and_a_revived_one_returns(store: Store) -> None:
    """The flow service reads the facts without the items table for kind and container
    filters, so the facts' copy of `deleted` must follow deletions and revivals."""
    store.items.apply([_item(C.in_progress, created_hours=0, updated_hours=1, completed=False)])
    query = with_delivery_kinds(ItemQuery(container=["TEAM"]))
    as_of = BASE_TIME + timedelta(days=2)

    def wip() -> int:
        return FlowService(store.engine).flow(query, as_of=as_of).wip.count

    assert wip() == 1
    store.items.apply([ItemDeletion(source="acme-jira", native_id="1", deleted_at=BASE_TIME + timedelta(hours=2))])
    assert _stored(store)[0]["deleted"] is True
    assert wip() == 0
    store.items.apply([_item(C.in_progress, created_hours=0, updated_hours=3, completed=False)])
    assert wip() == 1


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(C)),
    st.sampled_from(list(C)),
    st.one_of(st.none(), st.integers(-24 * 40, 24 * 40)),
    st.one_of(st.none(), st.integers(-24 * 40, 24 * 40)),
    st.integers(-24 * 40, 24 * 40),
    st.sampled_from([_sqlite_time, _utc_time]),
)
def test_a_first_sightings_rows_equal_those_bound_from_its_facts(
    category: C, seen: C, created_hours: int | None, completed_hours: int | None, seen_hours: int, to_time: Any
) -> None:
    """`first_seen_rows` (a new item's flow_facts and flow_days rows built as tuples, without
    `build_history` or `derive`) equals the rows `refresh_flow_facts` binds from `derive` of a
    history of that one first sighting, whatever the times and categories, on both backends'
    time binding. Fails if a column moves (e.g. started_at and completed_at swapped), or the
    cancelled_at rule loses its `final is cancelled`."""
    fact = Transition(
        ITEM, BASE_TIME + timedelta(hours=seen_hours), seen, NAMES[seen], source=TransitionSource.first_seen
    )
    created = None if created_hours is None else BASE_TIME + timedelta(hours=created_hours)
    completed = None if completed_hours is None else BASE_TIME + timedelta(hours=completed_hours)
    filters = {name: f"{name}-value" for name in FILTER_COLUMNS}
    facts = derive(ITEM, created, category, completed, [fact], filters)
    bound = _fact_row(facts.row, to_time)
    days = [(day, ITEM, now, prev, *(filters[name] for name in FILTER_COLUMNS)) for day, now, prev in facts.days]
    assert first_seen_rows(created, category, completed, fact, filters, to_time) == (bound, days)


def test_a_new_items_facts_from_the_batch_equal_the_full_history(store: Store) -> None:
    """A new item's facts are derived from the batch (no read of its transitions): the same as
    from what the store holds, with several facts of one change (an unnamed status, stored
    as "" and read as None, beside a named one), a tool's history, and a history import that
    came before the item (which sends it the general way)."""
    at = BASE_TIME + timedelta(hours=3)
    given_facts = [
        Transition(ITEM, at, C.in_progress, "", C.todo, None, TransitionSource.webhook),
        Transition(ITEM, at, C.in_progress, None, C.todo, None, TransitionSource.changelog),
        Transition(ITEM, at + timedelta(hours=1), C.done, "Done", C.in_progress, None, TransitionSource.changelog),
    ]
    item = _item(C.done, created_hours=0, updated_hours=30, completed=True)
    store.items.apply([item], transitions=given_facts)
    assert _stored(store) == _from_full_history(store)
    reset_database(store)
    TransitionStore(store.engine).record(given_facts[:1])
    store.items.apply([_item(C.todo, created_hours=0, updated_hours=1, completed=False)])
    row, days = _stored(store)
    assert (row, days) == _from_full_history(store)
    assert row["final_category"] == "in_progress"  # the imported fact, after the sighting
