"""The status_transitions table: idempotent writes, best source kept, any arrival order."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.flow.history import Transition, TransitionSource
from hub.schema import StatusCategory as C
from hub.store import Store
from hub.store.transitions import TransitionStore

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _facts() -> list[Transition]:
    return [
        Transition("s:1", T0, C.todo, "To Do", source=TransitionSource.first_seen),
        Transition("s:1", T0.replace(hour=10), C.in_progress, "Doing", C.todo, "To Do", TransitionSource.observed),
        Transition(
            "s:1", T0.replace(hour=10), C.in_progress, "Doing", C.todo, "To Do", TransitionSource.changelog, "77"
        ),
        Transition("s:2", T0, C.done, None),
    ]


def test_same_facts_in_any_order_or_twice_store_the_same_rows(store: Store) -> None:
    ts = TransitionStore(store.engine)
    facts = _facts()
    ts.record(facts)
    first = ts.for_items(["s:1", "s:2"])
    ts.record(reversed(facts))
    ts.record(facts[1:2])  # the worse source again never replaces the better one
    assert ts.for_items(["s:1", "s:2"]) == first
    history = ts.history("s:1")
    assert [f.to_category for f in history] == [C.todo, C.in_progress]
    assert history[1].source is TransitionSource.changelog and history[1].native_id == "77"
    assert ts.history("s:2")[0].to_name is None
    assert ts.history("s:404") == []


def test_a_better_source_arriving_later_replaces_the_worse(store: Store) -> None:
    ts = TransitionStore(store.engine)
    observed, changelog = _facts()[1], _facts()[2]
    ts.record([observed])
    assert ts.history("s:1")[0].source is TransitionSource.observed
    ts.record([changelog])
    assert ts.history("s:1") == [changelog]
