"""The digest's history events computed in SQL (hub/insights/digest.py `_history_events_sql`)
agree with the reference rules (`history_events` over `build_history`'s canonical history) on
random histories: repeats and no-op repeats, ties in time, first sightings, reopenings, names
with "blocked" in them, facts before, inside and after the period. Both backends."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from hub.db.engine import read_connection
from hub.flow.history import Transition, TransitionSource, build_history
from hub.insights.digest import _history_events_sql, history_events
from hub.schema import StatusCategory
from hub.store import Store

SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=7)
NAMES = {
    StatusCategory.backlog: ["Backlog", ""],
    StatusCategory.todo: ["To Do", "Selected"],
    StatusCategory.in_progress: ["In Progress", "Blocked", "blocked by vendor", "Unblocked"],
    StatusCategory.done: ["Done", "Closed"],
    StatusCategory.cancelled: ["Won't do", "ON HOLD / BLOCKED"],
}


def _random_facts(rng: random.Random, item_id: str) -> list[Transition]:
    facts = []
    previous: StatusCategory | None = rng.choice([None, *NAMES])
    for n in range(rng.randint(1, 7)):
        category = rng.choice(list(NAMES))
        # Days -10..+10 around the period, on whole hours: ties in time happen.
        at = SINCE + timedelta(hours=rng.randrange(-10 * 24, 17 * 24, 6))
        source = TransitionSource.first_seen if n == 0 and rng.random() < 0.3 else rng.choice(list(TransitionSource))
        facts.append(Transition(item_id, at, category, rng.choice(NAMES[category]) or None, previous, None, source))
        previous = category
    return facts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sql_events_match_the_history_rules(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    by_item = {f"t:{n}": _random_facts(rng, f"t:{n}") for n in range(300)}
    store.items.transitions.record(fact for facts in by_item.values() for fact in facts)
    stored = store.items.transitions.for_items(sorted(by_item))

    expected = sorted(
        (e.item_id, e.point, e.at)
        for item_id, facts in stored.items()
        if any(SINCE <= f.at < UNTIL for f in facts)
        for e in history_events(build_history(item_id, facts), SINCE, UNTIL)
    )
    with read_connection(store.engine) as conn:
        got = sorted((e.item_id, e.point, e.at) for e in _history_events_sql(conn, SINCE, UNTIL))
    assert {point for _, point, _ in expected} == {"finished", "started", "reopened", "blocked"}  # every rule ran
    assert got == expected
