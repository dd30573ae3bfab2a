"""Flow metrics for a period: throughput, cycle and lead time, aging WIP, cumulative flow.

Input: `FlowItem`s (what the hub knows of each item now, plus its canonical `ItemHistory`),
a `Period` of whole UTC days (both ends included) and `now`. The caller filters the items
(source, tool, container, kind, label, assignee); nothing here reads the store or the clock.

Definitions (each figure also counts the items it left out, by `LeftOut` reason):

- **completion**: an item counts as done in the period when it is `done` now and its final
  completion (`ItemHistory.done_at`, the last entry into done; else the tool's own
  `completed_at` when the history has none) falls on a day of the period. A reopened item
  therefore counts once, in the week of its final completion; one reopened and still open
  does not count (`LeftOut.reopened`). Cancelled items never count (`LeftOut.cancelled`).
- **throughput**: completions per ISO week (Monday-based, labelled `2026-W05`), for every week
  the period touches, zeros included (a forecast needs the empty weeks too). Edge weeks only
  count the period's days.
- **cycle time**: first entry into in_progress -> final completion; **lead time**: the tool's
  `created_at` -> final completion. Both are elapsed time in days (a float: 36 hours is 1.5),
  with every point (for the scatterplot) and p50/p85/p95 by nearest rank (`hub.flow.stats`).
- **WIP now**: items in_progress now; each one's age is `now - started_at` and its zone says
  which band of the period's cycle time percentiles the age is in (aging WIP).
- **cumulative flow**: per day, how many items were in each category at the end of that UTC
  day, per their histories (items created later are not counted yet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from operator import attrgetter

from hub.flow.history import ItemHistory, StartFact, TransitionSource
from hub.flow.stats import nearest_rank
from hub.schema import StatusCategory, to_utc

_ZERO = timedelta(0)
_SECONDS_PER_DAY = 86_400.0


class LeftOut(StrEnum):
    """Why an item that could belong to a figure is not in it."""

    no_completion_time = "no_completion_time"
    """Done now, but neither its history nor the tool says when."""
    reopened = "reopened"
    """Completed during the period, reopened since and not done again."""
    cancelled = "cancelled"
    """Ended cancelled during the period: cancelled work is never throughput."""
    start_before_history = "start_before_history"
    """Its history begins with it already in progress or done: the start is unknown."""
    never_in_progress = "never_in_progress"
    """Its history never shows it entering in_progress (e.g. moved from todo straight to done)."""
    no_history = "no_history"
    """The hub holds no status transitions for it."""
    inconsistent_times = "inconsistent_times"
    """Its completion is earlier than its start or creation (clocks or sources disagree)."""
    status_unknown = "status_unknown"
    """For some days of the period its history cannot say which category it was in."""


class AgeZone(StrEnum):
    """Which band of the period's cycle time percentiles a WIP item's age falls in."""

    up_to_p50 = "up_to_p50"
    p50_to_p85 = "p50_to_p85"
    p85_to_p95 = "p85_to_p95"
    above_p95 = "above_p95"


@dataclass(frozen=True, slots=True)
class Period:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    def contains(self, when: datetime) -> bool:
        """Whether a UTC time falls on one of the period's days."""
        return self.start.toordinal() <= when.toordinal() <= self.end.toordinal()

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def weeks(self) -> list[date]:
        """Mondays of the ISO weeks the period touches."""
        monday = self.start - timedelta(days=self.start.weekday())
        return [monday + timedelta(weeks=n) for n in range((self.end - monday).days // 7 + 1)]


@dataclass(slots=True)
class FlowItem:
    """What flow metrics need of one item: its state now (tool's times) and its history.

    Times are made UTC here, once, so the figures compare them without converting per use
    (a transition's time is UTC already)."""

    item_id: str
    created_at: datetime
    category: StatusCategory
    history: ItemHistory
    completed_at: datetime | None = None

    def __post_init__(self) -> None:
        self.created_at = to_utc(self.created_at)
        if self.completed_at is not None:
            self.completed_at = to_utc(self.completed_at)


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float
    p85: float
    p95: float


@dataclass(frozen=True, slots=True)
class WeekCount:
    week: str
    """ISO week label, e.g. `2026-W05`."""
    starts_on: date
    count: int


@dataclass(slots=True)  # not frozen: one per completed item, and a frozen __init__ costs twice as much
class Point:
    """One completed item on a scatterplot: when it was done and how long it took (days)."""

    item_id: str
    done_at: datetime
    days: float


@dataclass(frozen=True, slots=True)
class Throughput:
    weeks: tuple[WeekCount, ...]
    total: int
    left_out: dict[LeftOut, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Durations:
    """Cycle or lead time: the points behind the figure and its percentiles (None if no point)."""

    points: tuple[Point, ...]
    percentiles: Percentiles | None
    left_out: dict[LeftOut, int] = field(default_factory=dict)


@dataclass(slots=True)  # not frozen, like Point: one per item in progress (thousands at 100,000 items)
class AgingItem:
    item_id: str
    started_at: datetime | None
    age_days: float | None
    """None when the start is unknown (the item is still counted as WIP)."""
    zone: AgeZone | None
    """None when the age is unknown or the period has no cycle times to compare with."""


@dataclass(frozen=True, slots=True)
class Wip:
    items: tuple[AgingItem, ...]
    left_out: dict[LeftOut, int] = field(default_factory=dict)
    """Items in progress whose age is unknown (they are in `items`, without an age)."""

    @property
    def count(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class CfdDay:
    day: date
    counts: dict[StatusCategory, int]


@dataclass(frozen=True, slots=True)
class CumulativeFlow:
    days: tuple[CfdDay, ...]
    left_out: dict[LeftOut, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlowMetrics:
    period: Period
    now: datetime
    throughput: Throughput
    cycle_time: Durations
    lead_time: Durations
    wip: Wip
    cumulative_flow: CumulativeFlow


_StartOf = Callable[[FlowItem], tuple[datetime | None, LeftOut | None]]
"""When a duration starts for an item, or why it cannot be known."""


@dataclass(frozen=True, slots=True)
class Completion:
    """An item done in the period, at its final completion."""

    item: FlowItem
    done_at: datetime


def flow_metrics(items: Iterable[FlowItem], period: Period, now: datetime) -> FlowMetrics:
    """Every flow figure for `items` over `period`, WIP as of `now` (see the module doc)."""
    pool = list(items)
    now = to_utc(now)
    completions, throughput_left_out = completions_in(pool, period)
    cycle_time = _durations(completions, _cycle_start)
    lead_time = _durations(completions, lambda item: (item.created_at, None))
    return FlowMetrics(
        period=period,
        now=now,
        throughput=throughput(completions, period, throughput_left_out),
        cycle_time=cycle_time,
        lead_time=lead_time,
        wip=aging_wip(pool, now, cycle_time.percentiles),
        cumulative_flow=cumulative_flow(pool, period),
    )


def completion_time(item: FlowItem) -> datetime | None:
    """The item's final completion if it is done now (history first, then the tool's own)."""
    if item.category is not StatusCategory.done:
        return None
    return item.history.done_at or item.completed_at


def completions_in(items: Iterable[FlowItem], period: Period) -> tuple[list[Completion], dict[LeftOut, int]]:
    """Items done in the period (module doc), and those left out of throughput, by reason."""
    done: list[Completion] = []
    left_out: dict[LeftOut, int] = {}
    last_day = period.end.toordinal()
    for item in items:
        if item.created_at.toordinal() > last_day:
            continue
        done_at = completion_time(item)
        if done_at is not None:
            if period.contains(done_at):
                done.append(Completion(item, done_at))
        elif item.category is StatusCategory.done:
            _count(left_out, LeftOut.no_completion_time)
        elif item.category is StatusCategory.cancelled:
            ended = item.history.final_entry_at or item.completed_at
            if item.history.final_category is StatusCategory.cancelled and ended and period.contains(ended):
                _count(left_out, LeftOut.cancelled)
        elif any(period.contains(entry) for entry in item.history.done_entries):
            _count(left_out, LeftOut.reopened)
    return done, left_out


def throughput(completions: Iterable[Completion], period: Period, left_out: dict[LeftOut, int]) -> Throughput:
    weeks = weekly_counts((completion.done_at for completion in completions), period)
    return Throughput(weeks=weeks, total=sum(week.count for week in weeks), left_out=left_out)


def weekly_counts(done_times: Iterable[datetime], period: Period) -> tuple[WeekCount, ...]:
    """Completions per ISO week of the period, zeros included (`done_times` in the period)."""
    counts = dict.fromkeys(period.weeks(), 0)
    for done_at in done_times:
        day = done_at.date()
        counts[day - timedelta(days=day.weekday())] += 1
    return tuple(WeekCount(_iso_week(monday), monday, count) for monday, count in counts.items())


def recent_weekly_throughput(items: Iterable[FlowItem], weeks: int, today: date) -> list[int]:
    """Completions in each of the `weeks` whole ISO weeks before the week of `today`, oldest
    first: the samples a forecast draws from. The current week is left out because it is not
    over (a partial week would read as a slow one)."""
    if weeks < 1:
        raise ValueError(f"weeks must be >= 1, got {weeks}")
    this_monday = today - timedelta(days=today.weekday())
    period = Period(this_monday - timedelta(weeks=weeks), this_monday - timedelta(days=1))
    done, _ = completions_in(items, period)
    return [week.count for week in throughput(done, period, {}).weeks]


def _iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _cycle_start(item: FlowItem) -> tuple[datetime | None, LeftOut | None]:
    history = item.history
    return cycle_start(history.start, history.started_at, bool(history.transitions))


def cycle_start(
    start: StartFact, started_at: datetime | None, has_history: bool
) -> tuple[datetime | None, LeftOut | None]:
    """When an item's cycle time starts, or why that is unknown (module doc)."""
    if start is StartFact.seen:
        return started_at, None
    if start is StartFact.before_history:
        return None, LeftOut.start_before_history
    return None, LeftOut.never_in_progress if has_history else LeftOut.no_history


Span = tuple[str, datetime, datetime | None, LeftOut | None]
"""(item id, final completion, start or None, why the start is unknown)."""


def _durations(completions: Iterable[Completion], start_of: _StartOf) -> Durations:
    return durations_of((c.item.item_id, c.done_at, *start_of(c.item)) for c in completions)


def _elapsed(spans: Iterable[Span], left_out: dict[LeftOut, int]) -> Iterator[tuple[str, datetime, float]]:
    """(item id, final completion, days) of each span with a usable start; the others are
    counted into `left_out` by why they were left out."""
    for item_id, done_at, start, reason in spans:
        if start is None:
            _count(left_out, reason or LeftOut.no_history)
            continue
        elapsed = done_at - start
        if elapsed < _ZERO:
            _count(left_out, LeftOut.inconsistent_times)
            continue
        yield item_id, done_at, _days(elapsed)


def durations_of(spans: Iterable[Span]) -> Durations:
    """Cycle or lead time from each completed item's start and final completion."""
    left_out: dict[LeftOut, int] = {}
    points = sorted((Point(*span) for span in _elapsed(spans, left_out)), key=attrgetter("done_at", "item_id"))
    return Durations(points=tuple(points), percentiles=percentiles([p.days for p in points]), left_out=left_out)


def durations_summary(spans: Iterable[Span]) -> Durations:
    """`durations_of` without its points (an empty tuple): the same percentiles and left-out
    counts, for a caller that lists no point (the dashboard shows no lead time points; at
    100,000 items building and sorting thousands of them took ~3 ms of CPU a request)."""
    left_out: dict[LeftOut, int] = {}
    values = [days for _, _, days in _elapsed(spans, left_out)]
    return Durations(points=(), percentiles=percentiles(values), left_out=left_out)


def percentiles(values: Iterable[float]) -> Percentiles | None:
    """p50/p85/p95 by nearest rank; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return Percentiles(*(nearest_rank(ordered, level) for level in (50, 85, 95)))


def aging_wip(items: Iterable[FlowItem], now: datetime, cycle: Percentiles | None) -> Wip:
    """Items in progress now, oldest first, each with its age and zone against `cycle`."""
    in_progress = (
        (item.item_id, *_cycle_start(item))
        for item in items
        if item.category is StatusCategory.in_progress and item.created_at <= now
    )
    return aging_of(in_progress, now, cycle)


def aging_of(
    in_progress: Iterable[tuple[str, datetime | None, LeftOut | None]], now: datetime, cycle: Percentiles | None
) -> Wip:
    """Aging WIP from each in-progress item's (id, start or None, why the start is unknown).

    Oldest first, then by id; those of unknown age last, by id (equal keys keep their input
    order). Sorted as plain tuples and each item built once, in order: at 100,000 items
    there are thousands in progress, and a key function per item cost more than the rest."""
    known: list[tuple[float, str, int, datetime]] = []
    unknown: list[tuple[str, int]] = []
    left_out: dict[LeftOut, int] = {}
    for item_id, started, reason in in_progress:
        if started is None or started > now:
            _count(left_out, reason or LeftOut.inconsistent_times)
            unknown.append((item_id, len(unknown)))
            continue
        known.append((-_days(now - started), item_id, len(known), started))
    known.sort()
    unknown.sort()
    aging = [
        AgingItem(item_id, started, -minus_age, _zone(-minus_age, cycle)) for minus_age, item_id, _, started in known
    ]
    aging.extend(AgingItem(item_id, None, None, None) for item_id, _ in unknown)
    return Wip(items=tuple(aging), left_out=left_out)


def _zone(age: float, cycle: Percentiles | None) -> AgeZone | None:
    if cycle is None:
        return None
    if age <= cycle.p50:
        return AgeZone.up_to_p50
    if age <= cycle.p85:
        return AgeZone.p50_to_p85
    if age <= cycle.p95:
        return AgeZone.p85_to_p95
    return AgeZone.above_p95


def cumulative_flow(items: Iterable[FlowItem], period: Period) -> CumulativeFlow:
    """Items per category at the end of each day of the period.

    One pass per item over its transitions (a difference array per category), not a lookup
    per item per day: the cost follows the number of transitions, not items x days.
    """
    days = period.days()
    span = len(days)
    origin = period.start.toordinal()  # a time's day index is its ordinal minus this
    delta: dict[StatusCategory, list[int]] = {category: [0] * (span + 1) for category in StatusCategory}
    left_out: dict[LeftOut, int] = {}
    first_seen = TransitionSource.first_seen
    for item in items:
        born = item.created_at.toordinal() - origin
        if born >= span:
            continue
        facts = item.history.transitions
        if not facts:
            _count(left_out, LeftOut.no_history)
            continue
        first = facts[0]
        state = first.from_category if first.source is not first_seen else None
        since = born if born > 0 else 0
        unknown = False
        for fact in facts:
            switch = fact.at.toordinal() - origin
            if switch < since:
                switch = since
            elif switch >= span:
                break
            if state is None:
                unknown = unknown or switch > since
            else:
                delta[state][since] += 1
                delta[state][switch] -= 1
            state, since = fact.to_category, switch
        if since < span:
            if state is None:
                unknown = True
            else:
                delta[state][since] += 1
                delta[state][span] -= 1
        if unknown:
            _count(left_out, LeftOut.status_unknown)
    running = dict.fromkeys(StatusCategory, 0)
    out: list[CfdDay] = []
    for index, day in enumerate(days):
        for category in StatusCategory:
            running[category] += delta[category][index]
        out.append(CfdDay(day, dict(running)))
    return CumulativeFlow(days=tuple(out), left_out=left_out)


def _days(elapsed: timedelta) -> float:
    return elapsed.total_seconds() / _SECONDS_PER_DAY


def _count(counts: dict[LeftOut, int], reason: LeftOut) -> None:
    counts[reason] = counts.get(reason, 0) + 1
