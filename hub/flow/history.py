"""Status history: transitions as facts, and the one canonical history they make per item.

A `Transition` says that an item entered a status at a time on the *tool's* clock (a Jira
changelog entry's `created`, a webhook's issue `updated`), never the hub's sync time. Facts
come from several places for the same change (a webhook, then the backfilled changelog, then
the hub noticing the new status on the next poll), in any order and any number of times, so
`build_history()` makes them one history that depends only on the *set* of distinct facts:

- identity: a transition is `(item_id, at, to_category, to_name)`. Two facts with the same
  identity are one change; the one kept is the one from the best source
  (changelog > webhook > observed > first_seen), then the smallest remaining fields, so the
  choice never depends on arrival order.
- order: by `at`, ties broken by every other field (`sort_key`), a total order.
- a fact that puts the item in the status it is already in (same category and name as the
  fact before it) adds nothing and is dropped: the earlier time is when it got there.

Derived facts (`ItemHistory`):

- start: the first entry into `in_progress`. When the history begins with the item already in
  progress or done (the hub first saw it there, or the first known change leaves
  `in_progress`/`done`), the start is `StartFact.before_history`: unknown, never guessed.
- completion: `done_at` is when the item entered `done` for the last time, and only if it is
  done at the end of its history (`cancelled` is never a completion). A reopened item that was
  finished again counts once, at its final completion; one that is still open has none.
- reopened: the item left `done` for `backlog`, `todo` or `in_progress` at least once.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from operator import eq

from hub.schema import StatusCategory, to_utc


class TransitionSource(StrEnum):
    """Where a transition fact came from, best first (the best wins among duplicates)."""

    changelog = "changelog"
    """The tool's own history: Jira changelog, Linear issue history, GitLab resource state
    events, GitHub issue events."""
    webhook = "webhook"
    """A change carried by a webhook delivery (e.g. Jira's top-level `changelog`)."""
    observed = "observed"
    """The hub saw the status differ between two versions of the item; `at` is the newer
    version's `updated_at` (the tool's clock), so it may be later than the real change."""
    first_seen = "first_seen"
    """The hub first saw the item, already in this status at `at`: when it got there is unknown."""


SOURCE_RANK: dict[TransitionSource, int] = {source: rank for rank, source in enumerate(TransitionSource)}
CATEGORY_RANK: dict[StatusCategory, int] = {category: rank for rank, category in enumerate(StatusCategory)}
# Module-level aliases for the hot loops: an enum member looked up on its class costs ~100 ns
# on Python 3.11, which is most of build_history's time at 100,000 items.
_DONE = StatusCategory.done
_IN_PROGRESS = StatusCategory.in_progress
_FIRST_SEEN = TransitionSource.first_seen
STARTED = frozenset({StatusCategory.in_progress, StatusCategory.done})
"""Categories that mean the work had started (cancelled does not: work may be dropped unstarted)."""
OPEN = frozenset({StatusCategory.backlog, StatusCategory.todo, StatusCategory.in_progress})


@dataclass(frozen=True, slots=True)
class Transition:
    """An item entered status `to_name` (category `to_category`) at `at`, on the tool's clock.

    `from_category`/`from_name` are None where the source does not say (an item's creation,
    a first sighting). `native_id` is the tool's id for the change (Jira changelog id), kept
    for tracing; it is not part of the identity because not every source has one.
    """

    item_id: str
    at: datetime
    to_category: StatusCategory
    to_name: str | None
    from_category: StatusCategory | None = None
    from_name: str | None = None
    source: TransitionSource = TransitionSource.changelog
    native_id: str | None = None

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so equal facts compare and hash equal.
        # Values already normal (UTC times and enum members, as the store's reads give them:
        # hub/insights/flow.py builds ~90,000 of these per request) are left as they are;
        # the conversions cost ~4 µs a fact, most of reading a history.
        if self.at.tzinfo is not UTC:
            object.__setattr__(self, "at", to_utc(self.at))
        if type(self.to_category) is not StatusCategory:
            object.__setattr__(self, "to_category", StatusCategory(self.to_category))
        if self.from_category is not None and type(self.from_category) is not StatusCategory:
            object.__setattr__(self, "from_category", StatusCategory(self.from_category))
        if type(self.source) is not TransitionSource:
            object.__setattr__(self, "source", TransitionSource(self.source))

    @property
    def identity(self) -> tuple[str, datetime, StatusCategory, str | None]:
        """What makes two facts the same change, whichever source reported them."""
        return (self.item_id, self.at, self.to_category, self.to_name)

    def sort_key(self) -> tuple[datetime, int, str, int, int, str, int, str]:
        """Total order: time first, then every other field, so ties never depend on input order.
        The fields after the identity are `preference`'s: among facts with one identity, the
        first in this order is the one kept."""
        return (
            self.at,
            CATEGORY_RANK[self.to_category],
            self.to_name or "",
            SOURCE_RANK[self.source],
            -1 if self.from_category is None else CATEGORY_RANK[self.from_category],
            self.from_name or "",
            0 if self.native_id is None else 1,
            self.native_id or "",
        )

    def preference(self) -> tuple[int, int, str, int, str]:
        """Which of the facts with one identity is kept (module doc): the smallest of these,
        best source first, then the smallest remaining fields. The store keeps one row per
        identity and must choose the same way (hub/store/transitions.py `preferred_sql`),
        else what it keeps would depend on which fact arrived first."""
        return self.sort_key()[3:]


class StartFact(StrEnum):
    """What the history says about when work started (its first entry into in_progress)."""

    seen = "seen"
    """`started_at` is the first entry into in_progress."""
    before_history = "before_history"
    """The history begins with the item already in progress or done: the start is unknown."""
    not_started = "not_started"
    """The item never entered in_progress in its known history (e.g. todo -> done directly)."""


@dataclass(slots=True)
class ItemHistory:
    """One item's canonical history and the facts flow metrics read from it (read-only by
    convention: not frozen, because a frozen dataclass's __init__ doubles its cost)."""

    item_id: str
    transitions: tuple[Transition, ...]
    start: StartFact
    started_at: datetime | None
    final_entry_at: datetime | None
    """When the item entered the category its history ends in, if that entry was seen."""
    done_at: datetime | None
    """Final completion (last entry into done), if the item is done at the end of its history
    and that entry was seen; None otherwise."""
    done_entries: tuple[datetime, ...]
    """Every seen entry into done, oldest first (a reopened item has several or a stale one)."""
    reopened: bool
    _times: tuple[datetime, ...] = field(default=(), repr=False, compare=False)

    @property
    def final_category(self) -> StatusCategory | None:
        """The category the history ends in (None for an empty history)."""
        return self.transitions[-1].to_category if self.transitions else None

    def category_at(self, when: datetime) -> StatusCategory | None:
        """The item's category at `when` per its history; None where the history cannot say
        (before the first fact, unless that fact states the status it left)."""
        position = bisect_right(self._times, to_utc(when))
        if position:
            return self.transitions[position - 1].to_category
        if not self.transitions:
            return None
        first = self.transitions[0]
        return first.from_category if first.source is not TransitionSource.first_seen else None


def canonical_transitions(transitions: Iterable[Transition]) -> tuple[Transition, ...]:
    """Distinct facts in canonical order, with duplicates and no-op repeats removed (module doc).

    Facts with one identity sort next to each other, best source first (`sort_key` orders by
    identity, then by source and the rest), so dropping a fact that repeats the status the
    previous one reached removes both duplicates and no-op repeats in one pass.
    """
    facts = sorted(transitions, key=_time)
    times = [fact.at for fact in facts]
    if any(map(eq, times, times[1:])):  # compared in C: this runs once per item per request
        facts.sort(key=Transition.sort_key)  # ties only: the full key costs more than the time
    out: list[Transition] = []
    reached: tuple[StatusCategory, str | None] | None = None
    for fact in facts:
        status = (fact.to_category, fact.to_name)
        if status != reached:
            out.append(fact)
            reached = status
    return tuple(out)


def _time(fact: Transition) -> datetime:
    return fact.at


def build_history(item_id: str, transitions: Iterable[Transition]) -> ItemHistory:
    """The canonical history of one item from its transition facts (any order, repeats allowed).

    One walk over the facts derives everything (module doc): the category before the history
    is the first fact's `from_category` (unknown for a first sighting); a category's entry time
    is known when a fact is seen moving the item into it from another category.
    """
    facts = canonical_transitions(transitions)
    if any(fact.item_id != item_id for fact in facts):
        stray = sorted({fact.item_id for fact in facts} - {item_id})
        raise ValueError(f"transitions of other items given for {item_id!r}: {stray}")
    if not facts:
        return ItemHistory(item_id, (), StartFact.not_started, None, None, None, (), False)
    first = facts[0]
    sighted = first.source is _FIRST_SEEN
    before: StatusCategory | None = None if sighted else first.from_category
    started_before = (first.to_category if sighted else before) in STARTED
    start = StartFact.before_history if started_before else StartFact.not_started
    not_started = StartFact.not_started
    started_at: datetime | None = None
    done_entries: list[datetime] = []
    entry_at: datetime | None = None  # when the item entered its current category (None: unseen)
    was_done, reopened = before is _DONE, False
    previous = before
    for fact in facts:
        category = fact.to_category
        if category is not previous:
            entry_at = None if fact is first and sighted else fact.at
            if category is _DONE and entry_at is not None:
                done_entries.append(entry_at)
        if start is not_started and category is _IN_PROGRESS:
            start, started_at = StartFact.seen, fact.at
        if was_done and category in OPEN:
            reopened = True
        was_done = was_done or category is _DONE
        previous = category
    return ItemHistory(
        item_id=item_id,
        transitions=facts,
        start=start,
        started_at=started_at,
        final_entry_at=entry_at,
        done_at=entry_at if previous is _DONE else None,
        done_entries=tuple(done_entries),
        reopened=reopened,
        _times=tuple(fact.at for fact in facts),
    )


def build_histories(transitions: Iterable[Transition]) -> dict[str, ItemHistory]:
    """Histories of every item that has transitions among `transitions`."""
    by_item: dict[str, list[Transition]] = defaultdict(list)
    for fact in transitions:
        by_item[fact.item_id].append(fact)
    return {item_id: build_history(item_id, facts) for item_id, facts in by_item.items()}
