"""hub.flow.history: one canonical history per item, whatever the order and repetition of facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.flow.history import (
    StartFact,
    Transition,
    TransitionSource,
    build_histories,
    build_history,
    canonical_transitions,
)
from hub.schema import StatusCategory as C

ITEM = "acme-jira:10040"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def move(
    hours: float,
    to: C,
    name: str | None = None,
    frm: C | None = None,
    source: TransitionSource = TransitionSource.changelog,
    item_id: str = ITEM,
) -> Transition:
    return Transition(item_id, at(hours), to, name or to.value, frm, None if frm is None else frm.value, source)


def test_a_typical_history_gives_start_completion_and_no_reopen() -> None:
    history = build_history(
        ITEM,
        [move(0, C.todo), move(5, C.in_progress, frm=C.todo), move(30, C.done, frm=C.in_progress)],
    )
    assert history.start is StartFact.seen
    assert history.started_at == at(5)
    assert history.done_at == at(30)
    assert history.done_entries == (at(30),)
    assert history.reopened is False
    assert history.final_category is C.done


def test_reopened_item_counts_its_last_completion_and_keeps_its_first_start() -> None:
    history = build_history(
        ITEM,
        [
            move(1, C.in_progress, frm=C.todo),
            move(2, C.done, frm=C.in_progress),
            move(3, C.todo, frm=C.done),
            move(4, C.in_progress, frm=C.todo),
            move(6, C.done, "Done", frm=C.in_progress),
            move(7, C.done, "Closed", frm=C.done),  # a rename within done does not move completion
        ],
    )
    assert history.reopened is True
    assert history.started_at == at(1)
    assert history.done_entries == (at(2), at(6))
    assert history.done_at == at(6)


def test_reopened_and_still_open_has_no_completion() -> None:
    history = build_history(ITEM, [move(1, C.done, frm=C.in_progress), move(2, C.in_progress, frm=C.done)])
    assert history.reopened is True
    assert history.done_at is None
    assert history.done_entries == (at(1),)


def test_first_seen_in_progress_has_an_unknown_start_even_when_it_moves_on() -> None:
    history = build_history(
        ITEM,
        [
            move(0, C.in_progress, source=TransitionSource.first_seen),
            move(10, C.done, frm=C.in_progress),
            move(11, C.in_progress, frm=C.done),  # a later entry must not be taken for the start
        ],
    )
    assert history.start is StartFact.before_history
    assert history.started_at is None


def test_history_starting_with_a_move_out_of_progress_has_an_unknown_start() -> None:
    history = build_history(ITEM, [move(3, C.done, frm=C.in_progress)])
    assert history.start is StartFact.before_history
    assert history.done_at == at(3)


def test_first_seen_done_has_no_known_completion_time() -> None:
    history = build_history(ITEM, [move(0, C.done, source=TransitionSource.first_seen)])
    assert history.final_category is C.done
    assert history.done_at is None
    assert history.done_entries == ()


def test_rename_within_done_as_first_fact_is_not_a_completion() -> None:
    history = build_history(ITEM, [move(4, C.done, "Closed", frm=C.done)])
    assert history.done_at is None


def test_first_seen_in_todo_then_started_is_a_seen_start() -> None:
    history = build_history(
        ITEM, [move(0, C.todo, source=TransitionSource.first_seen), move(2, C.in_progress, frm=C.todo)]
    )
    assert history.start is StartFact.seen
    assert history.started_at == at(2)


def test_backfill_before_a_first_sighting_reveals_the_start() -> None:
    sighting = move(10, C.in_progress, source=TransitionSource.first_seen)
    backfilled = [move(0, C.todo), move(4, C.in_progress, frm=C.todo)]
    history = build_history(ITEM, [sighting, *backfilled])
    assert history.start is StartFact.seen
    assert history.started_at == at(4)
    # The sighting repeats the status already reached: it adds nothing.
    assert [t.source for t in history.transitions] == [TransitionSource.changelog] * 2


def test_todo_straight_to_done_never_started() -> None:
    history = build_history(ITEM, [move(0, C.todo), move(3, C.done, frm=C.todo)])
    assert history.start is StartFact.not_started
    assert history.done_at == at(3)


def test_cancelled_is_not_a_completion() -> None:
    history = build_history(ITEM, [move(1, C.in_progress, frm=C.todo), move(2, C.cancelled, frm=C.in_progress)])
    assert history.done_at is None
    assert history.final_entry_at == at(2)


def test_duplicates_keep_the_best_source_and_one_fact() -> None:
    webhook = move(5, C.in_progress, frm=C.todo, source=TransitionSource.webhook)
    changelog = move(5, C.in_progress, frm=C.todo, source=TransitionSource.changelog)
    observed = move(5, C.in_progress, source=TransitionSource.observed)
    for facts in ([webhook, changelog, observed], [observed, changelog, webhook], [webhook, observed]):
        kept = canonical_transitions(facts)
        assert len(kept) == 1
        assert kept[0].source is min((f.source for f in facts), key=list(TransitionSource).index)


def test_times_in_any_zone_are_the_same_instant() -> None:
    pacific = timezone(timedelta(hours=-8))
    local = Transition(ITEM, at(5).astimezone(pacific), C.in_progress, "in_progress")
    utc = Transition(ITEM, at(5), C.in_progress, "in_progress")
    assert local == utc
    assert local.at.tzinfo is UTC
    assert len(canonical_transitions([local, utc])) == 1


def test_plain_values_are_normalised_and_equal_the_normal_fact() -> None:
    # __post_init__ converts only what is not already normal (the store's reads skip it):
    # naive times, plain strings for categories and sources must still become the same fact.
    plain = Transition(ITEM, at(5).replace(tzinfo=None), "in_progress", "In Progress", "todo", None, "webhook")  # type: ignore[arg-type]
    normal = Transition(ITEM, at(5), C.in_progress, "In Progress", C.todo, None, TransitionSource.webhook)
    assert plain == normal and hash(plain) == hash(normal)
    assert plain.at.tzinfo is UTC
    assert type(plain.to_category) is C and type(plain.from_category) is C
    assert type(plain.source) is TransitionSource


def test_category_at_reads_the_history_and_the_status_left_by_the_first_fact() -> None:
    history = build_history(ITEM, [move(2, C.in_progress, frm=C.todo), move(8, C.done, frm=C.in_progress)])
    assert history.category_at(at(1)) is C.todo  # before the first fact: the status it left
    assert history.category_at(at(2)) is C.in_progress
    assert history.category_at(at(7.9)) is C.in_progress
    assert history.category_at(at(9)) is C.done
    sighted = build_history(ITEM, [move(2, C.in_progress, source=TransitionSource.first_seen)])
    assert sighted.category_at(at(1)) is None  # unknown, never guessed


def test_facts_of_another_item_are_refused() -> None:
    with pytest.raises(ValueError, match="other items"):
        build_history(ITEM, [move(1, C.todo), move(2, C.done, item_id="acme-jira:1")])


def test_build_histories_groups_by_item() -> None:
    histories = build_histories([move(1, C.todo, item_id="a"), move(2, C.in_progress, item_id="b"), move(3, C.done)])
    assert sorted(histories) == sorted([ITEM, "a", "b"])
    assert histories["b"].started_at == at(2)


# ------------------------------------------------------------------ properties

categories = st.sampled_from(list(C))
names = st.sampled_from(["To Do", "In Progress", "Review", "Done", "Closed", None])
sources = st.sampled_from(list(TransitionSource))
facts = st.builds(
    Transition,
    item_id=st.just(ITEM),
    at=st.integers(min_value=0, max_value=40).map(lambda h: at(h)),  # few times: many ties and duplicates
    to_category=categories,
    to_name=names,
    from_category=st.none() | categories,
    from_name=names,
    source=sources,
    native_id=st.none() | st.sampled_from(["10001", "10002"]),
)


@settings(max_examples=300, deadline=None, database=None)
@given(history=st.lists(facts, max_size=12), data=st.data())
def test_any_order_or_repetition_gives_the_same_history(history: list[Transition], data: st.DataObject) -> None:
    expected = build_history(ITEM, history)
    shuffled = data.draw(st.permutations(history))
    repeated = data.draw(st.lists(st.sampled_from(history), max_size=12)) if history else []
    assert build_history(ITEM, [*shuffled, *repeated]) == expected
    assert build_history(ITEM, [*history, *history]) == expected
    # A replay of the canonical history itself changes nothing (idempotent).
    assert build_history(ITEM, expected.transitions) == expected


@settings(max_examples=300, deadline=None, database=None)
@given(history=st.lists(facts, max_size=12))
def test_derived_facts_are_consistent(history: list[Transition]) -> None:
    result = build_history(ITEM, history)
    times = [t.at for t in result.transitions]
    assert times == sorted(times)
    identities = [t.identity for t in result.transitions]
    assert len(identities) == len(set(identities))
    if result.started_at is not None:
        assert result.start is StartFact.seen
        if result.done_at is not None:
            assert result.started_at <= result.done_at  # no negative cycle time
    if result.done_at is not None:
        assert result.final_category is C.done
        assert result.done_at == result.done_entries[-1]
