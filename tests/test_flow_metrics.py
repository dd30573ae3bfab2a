"""hub.flow.metrics on a designed dataset whose figures are worked by hand below, plus properties.

The dataset: 21 items A..U, period Wed 2026-03-04 .. Tue 2026-03-17 (ISO weeks 2026-W10,
W11 and W12; W10 from Wednesday, W12 up to Tuesday), WIP measured at now = 2026-03-18 00:00Z.
Every time is UTC, "Mar 5 12h" is 2026-03-05T12:00Z, whole days otherwise. Unless said, an
item's first move leaves `todo` (so it was in todo from its creation).

    item created  history (category changes)                       now
    A    Mar 1    ip Mar 4, done Mar 6                                done
    B    Mar 2    ip Mar 5 12h, done Mar 9 12h                        done
    C    Mar 3    ip Mar 6, done Mar 7, todo Mar 8, ip Mar 10,
                  done Mar 12  (reopened, finished again)             done
    D    Feb 20   first seen ip Feb 25, done Mar 10 6h                done
    E    Mar 4    ip Mar 4 6h, done Mar 5 6h                          done
    F    Mar 9    ip Mar 11, done Mar 16 12h                          done
    G    Mar 5    ip Mar 6, cancelled Mar 11                          cancelled
    H    Mar 2    ip Mar 3, done Mar 5, ip Mar 13 (reopened)          in_progress
    I    Mar 10   ip Mar 15                                           in_progress
    J    Mar 1    first seen ip Mar 6                                 in_progress
    K    Mar 1    done Mar 13 (straight from todo)                    done
    L    Mar 14   no history; the tool's completed_at Mar 16          done
    M    Mar 1    no history, no completed_at                         done
    N    Feb 1    ip Feb 2, done Feb 10 (before the period)           done
    O    Mar 16   ip Mar 17 12h                                       in_progress
    P    Mar 12   created in todo (from nothing) Mar 12               todo
    Q    Mar 4    ip Mar 5, done Mar 8                                done
    R    Mar 5    ip Mar 7, done Mar 17                               done
    S    Mar 12   ip Mar 13                                           in_progress
    T    Mar 9    ip Mar 10                                           in_progress
    U    Mar 1    created in backlog (from nothing) Mar 1             backlog

Throughput (final completion in the period, cancelled never):
    W10 (Mar 4-8):   A Mar 6, E Mar 5, Q Mar 8 (Sunday)                     = 3
    W11 (Mar 9-15):  B Mar 9, D Mar 10, C Mar 12 (once, final), K Mar 13    = 4
    W12 (Mar 16-17): L Mar 16 (tool's completed_at), F Mar 16, R Mar 17     = 3   total 10
    left out: G cancelled (Mar 11); H reopened (done Mar 5, open again); M done, no time.
    N was done before the period: neither counted nor left out.

Cycle time (first entry into ip -> final done), days:
    E 1.0, A 2.0, Q 3.0, B 4.0, F 5.5, C 6.0 (Mar 6 -> Mar 12), R 10.0         n = 7
    nearest rank: p50 = rank ceil(3.5)=4 -> 4.0; p85 = rank ceil(5.95)=6 -> 6.0;
                  p95 = rank ceil(6.65)=7 -> 10.0
    left out: D start before history, K never in progress, L no history.

Lead time (created -> final done), days:
    E 1.25, L 2.0, Q 4.0, A 5.0, B 7.5, F 7.5, C 9.0, K 12.0, R 12.0, D 18.25   n = 10
    (D: Feb 20 -> Mar 10 6h = 9 days to Mar 1, + 9 days, + 6 h = 18.25)
    p50 = rank 5 -> 7.5; p85 = rank ceil(8.5)=9 -> 12.0; p95 = rank ceil(9.5)=10 -> 18.25

WIP now (Mar 18 00:00), oldest first, zone against cycle p50 4 / p85 6 / p95 10:
    H 15.0 (since Mar 3, its first start) above_p95; T 8.0 p85_to_p95; S 5.0 p50_to_p85;
    I 3.0 up_to_p50; O 0.5 up_to_p50; J age unknown (first seen in progress)   count 6

Cumulative flow (category at the end of the day; L, M have no history; J is unknown on
Mar 4 and 5, before it was first seen):
    day     backlog todo in_progress done cancelled
    Mar 4   U=1     B,C,K,Q=4   A,D,E,H=4   N=1   0
    Mar 8   1       C,K=2       B,D,G,J,R=5 A,E,H,N,Q=5   0
    Mar 12  1       I,K,P,S=4   F,J,R,T=4   A,B,C,D,E,H,N,Q=8   G=1
    Mar 17  1       P=1         H,I,J,O,S,T=6   A,B,C,D,E,F,K,N,Q,R=10   1
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.flow.history import Transition, TransitionSource, build_history
from hub.flow.metrics import (
    AgeZone,
    FlowItem,
    LeftOut,
    Percentiles,
    Period,
    aging_of,
    durations_of,
    durations_summary,
    flow_metrics,
    recent_weekly_throughput,
)
from hub.schema import StatusCategory as C

PERIOD = Period(date(2026, 3, 4), date(2026, 3, 17))
NOW = datetime(2026, 3, 18, tzinfo=UTC)


def t(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def item(
    name: str,
    created: datetime,
    now: C,
    *moves: tuple[datetime, C],
    start: C | None = C.todo,
    first_seen: bool = False,
    completed_at: datetime | None = None,
) -> FlowItem:
    """An item whose moves chain from `start` (None: created in its first status; first_seen:
    the first move is the hub's first sighting)."""
    facts = []
    previous = start
    for position, (when, category) in enumerate(moves):
        source = TransitionSource.first_seen if first_seen and position == 0 else TransitionSource.changelog
        frm = None if source is TransitionSource.first_seen else previous
        facts.append(Transition(name, when, category, category.value, frm, frm and frm.value, source))
        previous = category
    return FlowItem(name, created, now, build_history(name, facts), completed_at)


IP, DONE = C.in_progress, C.done
DATASET = [
    item("A", t(3, 1), DONE, (t(3, 4), IP), (t(3, 6), DONE)),
    item("B", t(3, 2), DONE, (t(3, 5, 12), IP), (t(3, 9, 12), DONE)),
    item("C", t(3, 3), DONE, (t(3, 6), IP), (t(3, 7), DONE), (t(3, 8), C.todo), (t(3, 10), IP), (t(3, 12), DONE)),
    item("D", t(2, 20), DONE, (t(2, 25), IP), (t(3, 10, 6), DONE), first_seen=True),
    item("E", t(3, 4), DONE, (t(3, 4, 6), IP), (t(3, 5, 6), DONE)),
    item("F", t(3, 9), DONE, (t(3, 11), IP), (t(3, 16, 12), DONE)),
    item("G", t(3, 5), C.cancelled, (t(3, 6), IP), (t(3, 11), C.cancelled)),
    item("H", t(3, 2), IP, (t(3, 3), IP), (t(3, 5), DONE), (t(3, 13), IP)),
    item("I", t(3, 10), IP, (t(3, 15), IP)),
    item("J", t(3, 1), IP, (t(3, 6), IP), first_seen=True),
    item("K", t(3, 1), DONE, (t(3, 13), DONE)),
    item("L", t(3, 14), DONE, completed_at=t(3, 16)),
    item("M", t(3, 1), DONE),
    item("N", t(2, 1), DONE, (t(2, 2), IP), (t(2, 10), DONE)),
    item("O", t(3, 16), IP, (t(3, 17, 12), IP)),
    item("P", t(3, 12), C.todo, (t(3, 12), C.todo), start=None),
    item("Q", t(3, 4), DONE, (t(3, 5), IP), (t(3, 8), DONE)),
    item("R", t(3, 5), DONE, (t(3, 7), IP), (t(3, 17), DONE)),
    item("S", t(3, 12), IP, (t(3, 13), IP)),
    item("T", t(3, 9), IP, (t(3, 10), IP)),
    item("U", t(3, 1), C.backlog, (t(3, 1), C.backlog), start=None),
]


@pytest.fixture(scope="module")
def metrics():  # type: ignore[no-untyped-def]
    return flow_metrics(DATASET, PERIOD, NOW)


def test_throughput_per_iso_week(metrics) -> None:  # type: ignore[no-untyped-def]
    weeks = [(w.week, w.starts_on, w.count) for w in metrics.throughput.weeks]
    assert weeks == [
        ("2026-W10", date(2026, 3, 2), 3),
        ("2026-W11", date(2026, 3, 9), 4),
        ("2026-W12", date(2026, 3, 16), 3),
    ]
    assert metrics.throughput.total == 10
    assert metrics.throughput.left_out == {
        LeftOut.cancelled: 1,
        LeftOut.reopened: 1,
        LeftOut.no_completion_time: 1,
    }


def test_cycle_time_points_and_percentiles(metrics) -> None:  # type: ignore[no-untyped-def]
    cycle = metrics.cycle_time
    assert sorted((p.item_id, p.days) for p in cycle.points) == sorted(
        [("E", 1.0), ("A", 2.0), ("Q", 3.0), ("B", 4.0), ("F", 5.5), ("C", 6.0), ("R", 10.0)]
    )
    assert cycle.percentiles == Percentiles(p50=4.0, p85=6.0, p95=10.0)
    assert cycle.left_out == {LeftOut.start_before_history: 1, LeftOut.never_in_progress: 1, LeftOut.no_history: 1}
    # Points come ordered by completion for the scatterplot, each with its completion time.
    assert [p.item_id for p in cycle.points] == ["E", "A", "Q", "B", "C", "F", "R"]
    assert next(p for p in cycle.points if p.item_id == "C").done_at == t(3, 12)


def test_lead_time_points_and_percentiles(metrics) -> None:  # type: ignore[no-untyped-def]
    lead = metrics.lead_time
    assert sorted((p.item_id, p.days) for p in lead.points) == sorted(
        [
            ("E", 1.25),
            ("L", 2.0),
            ("Q", 4.0),
            ("A", 5.0),
            ("B", 7.5),
            ("F", 7.5),
            ("C", 9.0),
            ("K", 12.0),
            ("R", 12.0),
            ("D", 18.25),
        ]
    )
    assert lead.percentiles == Percentiles(p50=7.5, p85=12.0, p95=18.25)
    assert lead.left_out == {}


def test_aging_wip(metrics) -> None:  # type: ignore[no-untyped-def]
    rows = [(a.item_id, a.age_days, a.zone) for a in metrics.wip.items]
    assert rows == [
        ("H", 15.0, AgeZone.above_p95),
        ("T", 8.0, AgeZone.p85_to_p95),
        ("S", 5.0, AgeZone.p50_to_p85),
        ("I", 3.0, AgeZone.up_to_p50),
        ("O", 0.5, AgeZone.up_to_p50),
        ("J", None, None),
    ]
    assert metrics.wip.count == 6
    assert metrics.wip.left_out == {LeftOut.start_before_history: 1}


def test_cumulative_flow(metrics) -> None:  # type: ignore[no-untyped-def]
    days = {d.day: d.counts for d in metrics.cumulative_flow.days}
    assert list(days) == PERIOD.days()
    expected = {
        date(2026, 3, 4): (1, 4, 4, 1, 0),
        date(2026, 3, 8): (1, 2, 5, 5, 0),
        date(2026, 3, 12): (1, 4, 4, 8, 1),
        date(2026, 3, 17): (1, 1, 6, 10, 1),
    }
    for day, (backlog, todo, in_progress, done, cancelled) in expected.items():
        assert days[day] == {
            C.backlog: backlog,
            C.todo: todo,
            C.in_progress: in_progress,
            C.done: done,
            C.cancelled: cancelled,
        }, day
    assert metrics.cumulative_flow.left_out == {LeftOut.no_history: 2, LeftOut.status_unknown: 1}


def test_recent_weekly_throughput_uses_whole_weeks_before_this_one() -> None:
    # Today Wed Mar 18 (W12, not over): W10 is now whole (Mon Mar 2 - Sun Mar 8): A, E, Q = 3
    # (H's Mar 5 completion was undone); W11: B, D, C, K = 4. Four weeks back adds W08, W09: 0.
    assert recent_weekly_throughput(DATASET, 2, date(2026, 3, 18)) == [3, 4]
    assert recent_weekly_throughput(DATASET, 4, date(2026, 3, 18)) == [0, 0, 3, 4]
    # On the Monday of W11, W11 has not happened yet.
    assert recent_weekly_throughput(DATASET, 1, date(2026, 3, 9)) == [3]


def test_wip_zones_are_absent_without_cycle_times() -> None:
    result = flow_metrics([i for i in DATASET if i.item_id in {"H", "I"}], PERIOD, NOW)
    assert result.cycle_time.percentiles is None
    assert [(a.item_id, a.zone) for a in result.wip.items] == [("H", None), ("I", None)]


def test_aging_orders_oldest_first_then_by_id_and_unknown_ages_last_by_id() -> None:
    cycle = Percentiles(p50=1.0, p85=2.0, p95=3.0)
    wip = aging_of(
        [
            ("b", t(3, 16), None),
            ("z", None, LeftOut.start_before_history),
            ("a", t(3, 16), None),  # as old as b: by id
            ("c", t(3, 10), None),
            ("y", t(3, 19), None),  # starts after now: age unknown
            ("x", None, None),
        ],
        NOW,
        cycle,
    )
    assert [(a.item_id, a.age_days, a.zone) for a in wip.items] == [
        ("c", 8.0, AgeZone.above_p95),
        ("a", 2.0, AgeZone.p50_to_p85),
        ("b", 2.0, AgeZone.p50_to_p85),
        ("x", None, None),
        ("y", None, None),
        ("z", None, None),
    ]
    assert wip.left_out == {LeftOut.start_before_history: 1, LeftOut.inconsistent_times: 2}


def test_durations_summary_is_durations_of_without_points() -> None:
    spans = [
        ("a", t(3, 10), t(3, 4), None),
        ("b", t(3, 11), None, LeftOut.never_in_progress),
        ("c", t(3, 12), t(3, 13), None),  # ends before it starts
        ("d", t(3, 12, 12), t(3, 5), None),
        ("e", t(3, 9), None, None),
    ]
    full, summary = durations_of(spans), durations_summary(spans)
    assert summary.points == () and len(full.points) == 2
    assert (summary.percentiles, summary.left_out) == (full.percentiles, full.left_out)
    assert summary.left_out == {
        LeftOut.never_in_progress: 1,
        LeftOut.inconsistent_times: 1,
        LeftOut.no_history: 1,
    }


def test_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Period(date(2026, 3, 5), date(2026, 3, 4))


# ------------------------------------------------------------------ properties

ORIGIN = datetime(2026, 1, 5, tzinfo=UTC)
walks = st.lists(
    # Gaps of at least an hour: two changes at one instant have no order a history could know.
    st.tuples(st.integers(min_value=1, max_value=20 * 24), st.sampled_from(list(C))),
    min_size=0,
    max_size=8,
)


@st.composite
def simulated_items(draw: st.DrawFn) -> list[tuple[FlowItem, datetime | None]]:
    """Items walked through random statuses; each comes with the completion that the walk
    itself says counts (when it last entered done, if it ends done), worked out here without
    hub.flow, and with its transitions delivered shuffled and partly twice."""
    out = []
    for number in range(draw(st.integers(min_value=0, max_value=12))):
        item_id = f"item-{number}"
        created = ORIGIN + timedelta(hours=draw(st.integers(min_value=0, max_value=30 * 24)))
        steps = []
        when, previous = created, C.todo
        for gap, category in draw(walks):
            when += timedelta(hours=gap)
            if category is not previous:
                steps.append((when, previous, category))
            previous = category
        completion = None
        if previous is C.done:
            entered = [w for w, frm, to in steps if to is C.done and frm is not C.done]
            completion = entered[-1]
        facts = [Transition(item_id, w, to, to.value, frm, frm.value) for w, frm, to in steps]
        rng = random.Random(draw(st.integers()))
        delivered = facts + rng.sample(facts, k=len(facts) // 2)
        rng.shuffle(delivered)
        out.append((FlowItem(item_id, created, previous, build_history(item_id, delivered)), completion))
    return out


@settings(max_examples=200, deadline=None, database=None)
@given(simulated=simulated_items(), start=st.integers(min_value=0, max_value=40), length=st.integers(0, 30))
def test_weekly_throughput_sums_to_items_done_in_period(
    simulated: list[tuple[FlowItem, datetime | None]], start: int, length: int
) -> None:
    period = Period(ORIGIN.date() + timedelta(days=start), ORIGIN.date() + timedelta(days=start + length))
    result = flow_metrics([i for i, _ in simulated], period, datetime(2026, 4, 30, tzinfo=UTC))
    done_in_period = sum(1 for _, done in simulated if done is not None and period.start <= done.date() <= period.end)
    assert sum(w.count for w in result.throughput.weeks) == done_in_period == result.throughput.total
    assert all(p.days >= 0 for p in result.cycle_time.points)
    assert all(p.days >= 0 for p in result.lead_time.points)
    # Each completion is in exactly one of the figures' point sets or their left-out counts.
    assert len(result.cycle_time.points) + sum(result.cycle_time.left_out.values()) == done_in_period
    # Every existing item with a history is in the CFD every day, unless its status is unknown.
    last = result.cumulative_flow.days[-1].counts
    existing = [i for i, _ in simulated if i.created_at.date() <= period.end and i.history.transitions]
    assert sum(last.values()) == len(existing)
