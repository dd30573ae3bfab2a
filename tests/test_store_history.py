"""Status history written by `ItemStore.apply` (issue 9), on SQLite and PostgreSQL.

apply() writes a `first_seen` fact for a new item, an `observed` fact when an update changes
the status, nothing for deletions or re-applies, and stores tool-given facts for the items it
knows. The properties: real-shaped item versions (each a status at the tool's update time)
delivered interleaved, in batches of any size, give each item the history it gets alone; in
any order at all followed by a replay, the same history as in time order.
"""

from __future__ import annotations

import random
from datetime import timedelta
from itertools import groupby, pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from hub.db.tables import status_transitions
from hub.flow.history import StartFact, Transition, TransitionSource
from hub.schema import ItemDeletion, WorkItem
from hub.schema import StatusCategory as C
from hub.store import Store
from tests.conftest import reset_database
from tests.factories import BASE_TIME, make_item

TODO = {"category": "todo", "name": "To Do"}
DOING = {"category": "in_progress", "name": "In Progress"}
REVIEW = {"category": "in_progress", "name": "In Review"}
DONE = {"category": "done", "name": "Done"}
STATUSES = [TODO, DOING, REVIEW, DONE]


def _at(minutes: int) -> Any:
    return BASE_TIME + timedelta(minutes=minutes)


def _rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(status_transitions)).scalar_one())


def _stored(store: Store, item_id: str) -> list[tuple[Any, str, str | None, str | None, str | None, str]]:
    facts = store.items.transitions.history(item_id)
    return [(f.at, f.to_category.value, f.to_name, f.from_category, f.from_name, f.source.value) for f in facts]


def test_new_item_then_status_change_then_same_status_update(store: Store) -> None:
    store.items.apply([make_item(1, minutes=0, status=TODO)])
    assert _stored(store, "acme-jira:1") == [(_at(0), "todo", "To Do", None, None, "first_seen")]
    store.items.apply([make_item(1, minutes=5, status=DOING)])
    store.items.apply([make_item(1, minutes=9, status=DOING, title="renamed")])  # no status change: no fact
    store.items.apply([make_item(1, minutes=12, status=REVIEW)])  # same category, the tool's name changed
    assert _stored(store, "acme-jira:1") == [
        (_at(0), "todo", "To Do", None, None, "first_seen"),
        (_at(5), "in_progress", "In Progress", C.todo, "To Do", "observed"),
        (_at(12), "in_progress", "In Review", C.in_progress, "In Progress", "observed"),
    ]
    history = store.items.history("acme-jira:1")
    assert history is not None and history.start is StartFact.seen
    assert history.started_at == _at(5) and history.done_at is None


def test_reapply_replay_and_deletion_add_nothing(store: Store) -> None:
    versions = [make_item(1, minutes=m, status=s) for m, s in [(0, TODO), (3, DOING), (8, DONE)]]
    store.items.apply(versions)
    rows = _rows(store)
    assert rows == 3
    store.items.apply(versions)  # the same batch again
    store.items.apply(reversed(versions))  # replayed in another order
    store.items.apply([versions[-1]], force=True)
    store.items.apply([ItemDeletion(source="acme-jira", native_id="1", deleted_at=_at(20))])
    assert _rows(store) == rows


def test_item_first_seen_in_progress_has_an_unknown_start(store: Store) -> None:
    store.items.apply([make_item(7, minutes=30, status=DOING)])
    store.items.apply([make_item(7, minutes=40, status=DONE)])
    history = store.items.history("acme-jira:7")
    assert history is not None
    assert history.start is StartFact.before_history
    assert history.started_at is None  # unknown, never guessed
    assert history.done_at == _at(40)


def test_late_older_version_is_a_sighting_on_the_tools_clock(store: Store) -> None:
    store.items.apply([make_item(2, minutes=10, status=DONE)])
    store.items.apply([make_item(2, minutes=4, status=DOING)])  # a delayed delivery: the item is not rolled back
    assert store.items.get("acme-jira:2")["status"]["category"] == "done"  # type: ignore[index]
    history = store.items.history("acme-jira:2")
    assert history is not None
    assert [(f.at, f.to_category) for f in history.transitions] == [(_at(4), C.in_progress), (_at(10), C.done)]
    assert history.start is StartFact.before_history  # first seen in progress at 4: start unknown


def test_tool_given_facts_for_known_items_only(store: Store) -> None:
    store.items.apply([make_item(1, minutes=0, status=TODO)])  # stored by an earlier batch
    given = [
        Transition(
            "acme-jira:1", _at(2), C.in_progress, "In Progress", C.todo, "To Do", TransitionSource.changelog, "9"
        ),
        Transition("acme-jira:2", _at(3), C.done, "Done", C.todo, "To Do", TransitionSource.webhook),
        Transition("acme-jira:404", _at(3), C.done, "Done"),  # no such item: no history of it
    ]
    result = store.items.apply([make_item(2, minutes=3, status=DONE)], transitions=given)
    assert result.transitions_dropped == 1
    assert store.items.transitions.history("acme-jira:404") == []
    assert [f.source for f in store.items.transitions.history("acme-jira:1")] == [
        TransitionSource.first_seen,
        TransitionSource.changelog,
    ]
    # The webhook's fact and apply's first sighting name the same change: the better source is kept.
    assert _stored(store, "acme-jira:2") == [(_at(3), "done", "Done", "todo", "To Do", "webhook")]
    history = store.items.history("acme-jira:2")
    assert history is not None and history.done_at == _at(3) and history.start is StartFact.not_started
    assert store.items.history("acme-jira:404") is None


# ---------------------------------------------------------------- properties

# One item's life as a tool reports it: a status per version, at strictly increasing minutes.
# Real-shaped: edits that keep the status, renames within a category, reopening after done.
lives = st.lists(
    st.tuples(st.integers(min_value=1, max_value=30), st.sampled_from(range(len(STATUSES)))),
    min_size=1,
    max_size=7,
)


def _versions(native_id: str, life: list[tuple[int, int]]) -> list[WorkItem]:
    out, minute = [], 0
    for step, status in life:
        minute += step
        out.append(make_item(native_id, minutes=minute, status=STATUSES[status], title=f"{native_id} v{minute}"))
    return out


def _expected(versions: list[WorkItem]) -> list[tuple[Any, str, str | None]]:
    """The history by definition: each version's status in time order, repeats merged."""
    timeline = [(v.updated_at, v.status.category.value, v.status.name) for v in versions]
    return [next(group) for _, group in groupby(timeline, key=lambda t: (t[1], t[2]))]


def _history(store: Store, item_id: str) -> tuple[Any, ...]:
    history = store.items.history(item_id)
    assert history is not None
    return (
        [(f.at, f.to_category.value, f.to_name) for f in history.transitions],
        history.start,
        history.started_at,
        history.done_at,
        history.reopened,
    )


def _in_batches(ops: list[WorkItem], cuts: list[int]) -> list[list[WorkItem]]:
    points = sorted({0, len(ops), *(c % (len(ops) + 1) for c in cuts)})
    return [ops[a:b] for a, b in pairwise(points) if ops[a:b]]


def test_interleaved_items_get_the_history_each_gets_alone(store: Store) -> None:
    """Each item's versions in time order, items interleaved at random, any batch sizes: the
    stored history is exactly the tool's (sources included), as if the item came alone."""
    examples = 40 if store.engine.dialect.name == "sqlite" else 15

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(lives, min_size=1, max_size=3), st.randoms(), st.lists(st.integers(0, 30), max_size=4))
    def check(item_lives: list[list[tuple[int, int]]], rng: random.Random, cuts: list[int]) -> None:
        reset_database(store)
        queues = [_versions(str(n), life) for n, life in enumerate(item_lives)]
        expected = {f"acme-jira:{n}": _expected(q) for n, q in enumerate(queues)}
        ops: list[WorkItem] = []
        pending = [list(q) for q in queues]
        while any(pending):
            ops.append(rng.choice([q for q in pending if q]).pop(0))
        for batch in _in_batches(ops, cuts):
            store.items.apply(batch)
        for item_id, timeline in expected.items():
            history = store.items.history(item_id)
            assert history is not None
            assert [(f.at, f.to_category.value, f.to_name) for f in history.transitions] == timeline
            sources = [f.source for f in history.transitions]
            assert sources == [TransitionSource.first_seen] + [TransitionSource.observed] * (len(sources) - 1)

    check()


def test_any_order_then_a_replay_gives_the_time_order_history(store: Store) -> None:
    """The same versions in any order (late deliveries, reordered pages) and then replayed in
    any order give the history of time-order delivery, derived facts included; applying it
    all again adds no row."""
    examples = 40 if store.engine.dialect.name == "sqlite" else 15

    @settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(lives, min_size=1, max_size=2), st.randoms(), st.lists(st.integers(0, 30), max_size=4))
    def check(item_lives: list[list[tuple[int, int]]], rng: random.Random, cuts: list[int]) -> None:
        queues = [_versions(str(n), life) for n, life in enumerate(item_lives)]
        everything = [v for q in queues for v in q]
        reset_database(store)
        for q in queues:
            store.items.apply(q)  # time order
        in_order = {f"acme-jira:{n}": _history(store, f"acme-jira:{n}") for n in range(len(queues))}
        for item_id, (transitions, *_) in in_order.items():
            assert transitions == _expected(queues[int(item_id.split(":")[1])])

        reset_database(store)
        shuffled = rng.sample(everything, len(everything))
        for batch in _in_batches(shuffled, cuts):
            store.items.apply(batch)
        for batch in _in_batches(rng.sample(everything, len(everything)), cuts[::-1]):
            store.items.apply(batch)  # the replay
        assert {item_id: _history(store, item_id) for item_id in in_order} == in_order
        rows = _rows(store)
        store.items.apply(rng.sample(everything, len(everything)))
        assert _rows(store) == rows

    check()
