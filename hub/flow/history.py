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
from datetime import datetime
from enum import StrEnum

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
        object.__setattr__(self, "at", to_utc(self.at))
        object.__setattr__(self, "to_category", StatusCategory(self.to_category))
        if self.from_category is not None:
            object.__setattr__(self, "from_category", StatusCategory(self.from_category))
        object.__setattr__(self, "source", TransitionSource(self.source))

    @property
    def identity(self) -> tuple[str, datetime, StatusCategory, str | None]:
        """What makes two facts the same change, whichever source reported them."""
        return (self.item_id, self.at, self.to_category, self.to_name)

    def sort_key(self) -> tuple[datetime, int, str, int, int, str, int, str]:
        """Total order: time first, then every other field, so ties never depend on input order."""
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


class StartFact(StrEnum):
    """What the history says about when work started (its first entry into in_progress)."""

    seen = "seen"
    """`started_at` is the first entry into in_progress."""
    before_history = "before_history"
    """The history begins with the item already in progress or done: the start is unknown."""
    not_started = "not_started"
    """The item never entered in_progress in its known history (e.g. todo -> done directly)."""


@dataclass(frozen=True, slots=True)
class ItemHistory:
    """One item's canonical history and the facts flow metrics read from it."""

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
    """Distinct facts in canonical order, with duplicates and no-op repeats removed (module doc)."""
    best: dict[tuple[str, datetime, StatusCategory, str | None], Transition] = {}
    for fact in transitions:
        kept = best.get(fact.identity)
        if kept is None or _preference(fact) < _preference(kept):
            best[fact.identity] = fact
    ordered = sorted(best.values(), key=Transition.sort_key)
    out: list[Transition] = []
    for fact in ordered:
        if out and (out[-1].to_category, out[-1].to_name) == (fact.to_category, fact.to_name):
            continue
        out.append(fact)
    return tuple(out)


def _preference(fact: Transition) -> tuple[int, int, str, int, str]:
    return (
        SOURCE_RANK[fact.source],
        -1 if fact.from_category is None else CATEGORY_RANK[fact.from_category],
        fact.from_name or "",
        0 if fact.native_id is None else 1,
        fact.native_id or "",
    )


def build_history(item_id: str, transitions: Iterable[Transition]) -> ItemHistory:
    """The canonical history of one item from its transition facts (any order, repeats allowed)."""
    facts = canonical_transitions(transitions)
    stray = {fact.item_id for fact in facts} - {item_id}
    if stray:
        raise ValueError(f"transitions of other items given for {item_id!r}: {sorted(stray)}")
    start, started_at = _start(facts)
    done_entries = tuple(fact.at for fact in _entries_into_done(facts))
    final_entry_at = _final_entry(facts)
    return ItemHistory(
        item_id=item_id,
        transitions=facts,
        start=start,
        started_at=started_at,
        final_entry_at=final_entry_at,
        done_at=final_entry_at if facts and facts[-1].to_category is StatusCategory.done else None,
        done_entries=done_entries,
        reopened=_reopened(facts),
        _times=tuple(fact.at for fact in facts),
    )


def build_histories(transitions: Iterable[Transition]) -> dict[str, ItemHistory]:
    """Histories of every item that has transitions among `transitions`."""
    by_item: dict[str, list[Transition]] = defaultdict(list)
    for fact in transitions:
        by_item[fact.item_id].append(fact)
    return {item_id: build_history(item_id, facts) for item_id, facts in by_item.items()}


def _started_before_history(first: Transition) -> bool:
    if first.source is TransitionSource.first_seen:
        return first.to_category in STARTED
    return first.from_category in STARTED


def _start(facts: tuple[Transition, ...]) -> tuple[StartFact, datetime | None]:
    if facts and _started_before_history(facts[0]):
        return StartFact.before_history, None
    for fact in facts:
        if fact.to_category is StatusCategory.in_progress and fact.source is not TransitionSource.first_seen:
            return StartFact.seen, fact.at
    return StartFact.not_started, None


def _entries_into_done(facts: tuple[Transition, ...]) -> list[Transition]:
    """Facts where the item was seen entering done from another category."""
    entries = []
    for position, fact in enumerate(facts):
        if fact.to_category is not StatusCategory.done:
            continue
        entered = (facts[position - 1].to_category is not StatusCategory.done) if position else _first_entry_known(fact)
        if entered:
            entries.append(fact)
    return entries


def _first_entry_known(first: Transition) -> bool:
    """Whether the first fact of a history is a seen entry into its category (not a sighting,
    not a rename within the category, such as Done -> Closed, entered before the history)."""
    return first.source is not TransitionSource.first_seen and first.from_category is not first.to_category


def _final_entry(facts: tuple[Transition, ...]) -> datetime | None:
    """Start of the trailing run of facts in the final category (renames within it, such as
    Done -> Closed, do not move it); None when that entry happened before the history."""
    if not facts:
        return None
    final = facts[-1].to_category
    run_start = len(facts) - 1
    while run_start > 0 and facts[run_start - 1].to_category is final:
        run_start -= 1
    entry = facts[run_start]
    if run_start == 0 and not _first_entry_known(entry):
        return None
    return entry.at


def _reopened(facts: tuple[Transition, ...]) -> bool:
    first = facts[0] if facts else None
    was_done = (
        first is not None
        and first.source is not TransitionSource.first_seen
        and (first.from_category is StatusCategory.done)
    )
    for fact in facts:
        if was_done and fact.to_category in OPEN:
            return True
        if fact.to_category is StatusCategory.done:
            was_done = True
    return False
