"""The flow service reads the store so that its figures equal hub/flow's on every item.

The service computes the figures from the per-item flow facts the store keeps
(hub/store/flow_facts.py, hub/insights/flow.py `flow_metrics_stored`) instead of loading
every history. On random histories, some wholly before the period, some inside, some without
any, its report must equal `flow_metrics` computed in Python on all the items, for several
periods.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from hub.flow.history import Transition, TransitionSource, build_history
from hub.flow.metrics import FlowItem, Period, flow_metrics
from hub.insights.flow import FlowService, LoadedItems, report, with_delivery_kinds
from hub.schema import StatusCategory as C
from hub.store import ItemQuery, Store
from tests.insights_support import seed_item

ORIGIN = datetime(2026, 1, 5, tzinfo=UTC)
NOW = ORIGIN + timedelta(days=120)
NAMES = {C.backlog: "Backlog", C.todo: "To Do", C.in_progress: "Doing", C.done: "Done", C.cancelled: "Dropped"}


def random_items(rng: random.Random, count: int) -> list[FlowItem]:
    out = []
    for n in range(count):
        item_id = f"R{n}"
        created = ORIGIN + timedelta(hours=rng.randrange(100 * 24))
        facts: list[Transition] = []
        shape = rng.random()
        if shape > 0.1:  # else: no history at all
            first_seen = shape < 0.2
            state = rng.choice(list(C)) if first_seen else C.todo
            when = created
            facts.append(
                Transition(
                    item_id,
                    when,
                    state,
                    NAMES[state],
                    source=TransitionSource.first_seen if first_seen else TransitionSource.changelog,
                )
            )
            for _ in range(rng.randrange(5)):
                when += timedelta(hours=rng.randrange(1, 20 * 24))
                if when > NOW:
                    break
                nxt = rng.choice([c for c in C if c is not state])
                facts.append(Transition(item_id, when, nxt, NAMES[nxt], state, NAMES[state]))
                state = nxt
            category = state
        else:
            category = rng.choice(list(C))
        completed = created + timedelta(days=3) if category is C.done and rng.random() < 0.5 else None
        out.append(FlowItem(item_id, created, category, build_history(item_id, facts), completed))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_service_figures_equal_the_pure_figures_on_every_item(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    pool = random_items(rng, 60)
    container = {"id": f"c{seed}", "key": f"K{seed}", "name": "random"}
    ids = {item.item_id: seed_item(store, item, container=container) for item in pool}
    renamed = [
        FlowItem(
            ids[i.item_id],
            i.created_at,
            i.category,
            build_history(ids[i.item_id], [_renamed(f, ids[i.item_id]) for f in i.history.transitions]),
            i.completed_at,
        )
        for i in pool
    ]
    # One container (the service starts from its index) and every delivery item (from the
    # counts index): the same figures.
    for query in (with_delivery_kinds(ItemQuery(container=[f"K{seed}"])), with_delivery_kinds(ItemQuery())):
        for start, days in ((40, 14), (60, 30), (0, 130), (90, 7)):
            period = Period(date(2026, 1, 5) + timedelta(days=start), date(2026, 1, 5) + timedelta(days=start + days))
            got = FlowService(store.engine).flow(query, as_of=NOW, period=period)
            everything = LoadedItems(renamed, len(renamed), 0, frozenset())
            pure = flow_metrics(renamed, period, NOW)
            expected = report(pure, query, everything)
            assert got == expected, (seed, start, days, query)
            # The dashboard's figures: the report without lists, the lists it draws, and the
            # lead time without points but with the same percentiles and left-out counts.
            page, drawn = FlowService(store.engine).figures(query, as_of=NOW, period=period)
            assert page == report(pure, query, everything, lists=False), (seed, start, days, query)
            assert (drawn.cycle_time, drawn.wip) == (pure.cycle_time, pure.wip), (seed, start, days, query)
            assert drawn.lead_time.points == ()
            lead = (drawn.lead_time.percentiles, drawn.lead_time.left_out)
            assert lead == (pure.lead_time.percentiles, pure.lead_time.left_out), (seed, start, days, query)


def _renamed(fact: Transition, item_id: str) -> Transition:
    return Transition(item_id, fact.at, fact.to_category, fact.to_name, fact.from_category, fact.from_name, fact.source)
