"""Flow metrics service: the store's per-item flow facts -> `FlowReport`.

Used by `GET /v1/insights/flow`, `opshub report flow` and the forecasts (which draw on the
same weekly throughput). The figures are defined in hub/flow/metrics.py, which computes them
from whole histories; this module computes the same figures from what the store keeps per
item (hub/store/flow_facts.py: start, final completion, cancellation, the days its category
changed), so a request reads one narrow row per item, lets the database count, and builds
Python objects only for what the answer lists (the period's completions, the work in
progress) and for the cumulative flow's per-day, per-category aggregate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    FromClause,
    Table,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.sql.visitors import iterate, replacement_traverse

from hub.db.engine import read_connection
from hub.db.tables import UTCDateTime, flow_days, flow_facts, items
from hub.flow.history import StartFact
from hub.flow.metrics import (
    CfdDay,
    CumulativeFlow,
    Durations,
    FlowItem,
    FlowMetrics,
    LeftOut,
    Period,
    Throughput,
    aging_of,
    cycle_start,
    durations_of,
    durations_summary,
    weekly_counts,
)
from hub.insights.models import (
    PERCENTILE_DEFINITION,
    CfdDayPublic,
    CumulativeFlowPublic,
    DurationPoint,
    DurationsPublic,
    FlowFilters,
    FlowReport,
    PercentilesPublic,
    PeriodPublic,
    ThroughputPublic,
    WeekThroughput,
    WipItem,
    WipPublic,
)
from hub.roadmap import DELIVERY_KINDS
from hub.schema import StatusCategory, to_utc
from hub.store.flow_facts import FILTER_COLUMNS
from hub.store.queries import ItemQueries, ItemQuery

DEFAULT_PERIOD_WEEKS = 12
_F = flow_facts.c
_D = flow_days.c
_CATEGORIES = {category.value: category for category in StatusCategory}
_STARTS = {start.value: start for start in StartFact}


def default_period(as_of: datetime, weeks: int = DEFAULT_PERIOD_WEEKS) -> Period:
    """The last `weeks` complete ISO weeks before the week of `as_of` (a week still running
    would read as a slow one)."""
    today = to_utc(as_of).date()
    this_monday = today - timedelta(days=today.weekday())
    return Period(this_monday - timedelta(weeks=weeks), this_monday - timedelta(days=1))


def with_delivery_kinds(query: ItemQuery) -> ItemQuery:
    """Flow counts delivery work (stories, tasks, bugs ...) unless kinds are asked for: an
    epic finishing is not a unit of throughput."""
    if query.kind:
        return query
    return ItemQuery(**{**query.__dict__, "kind": list(DELIVERY_KINDS)})


def filters_of(query: ItemQuery) -> FlowFilters:
    return FlowFilters(
        source=query.source,
        tool=query.tool,
        container=query.container,
        kind=query.kind,
        label=query.label,
        assignee=query.assignee,
    )


@dataclass(frozen=True, slots=True)
class LoadedItems:
    """What `report` says about the matching items besides the figures (counts), and for
    the pure path (tests, hub/flow) the items themselves."""

    items: list[FlowItem]
    matching: int
    no_created_at: int
    without_history: frozenset[str] = frozenset()
    settled: dict[StatusCategory, int] = field(default_factory=dict)
    """Per category, items counted on every day of the cumulative flow besides `items`."""


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


@dataclass(frozen=True, slots=True)
class _Source:
    """Where the matching items' facts and days are read from, with the filters as WHERE
    terms on each."""

    facts: FromClause
    facts_where: list[ColumnElement[bool]]
    days: FromClause
    days_where: list[ColumnElement[bool]]
    narrowed: bool
    """A filter besides the kinds (container, source, label ...): the planner should start
    from its index, not from the whole store's (see `flow_metrics_stored`)."""


def _facts(conditions: Sequence[ColumnElement[bool]]) -> _Source:
    """The /v1/items filters (WHERE terms on `items`) as terms on `flow_facts` and on
    `flow_days`, which hold a copy of the filter columns (hub/store/flow_facts.py
    `FILTER_COLUMNS`): the narrow tables alone, never the wide item rows. Label and
    assignee filters are subqueries keyed by the item id, which work on either table. A
    filter on any other column falls back to joining `items`."""
    facts_where = _on_table(conditions, flow_facts)
    days_where = _on_table(conditions, flow_days)
    narrowed = any(
        isinstance(element, Column) and not (element.table is items and element.key in ("kind", "deleted"))
        for condition in conditions
        for element in iterate(condition)
    )
    if facts_where is None or days_where is None:
        return _Source(
            flow_facts.join(items, items.c.id == _F.item_id),
            list(conditions),
            flow_days.join(items, items.c.id == _D.item_id),
            list(conditions),
            narrowed,
        )
    return _Source(flow_facts, facts_where, flow_days, days_where, narrowed)


def _on_table(conditions: Sequence[ColumnElement[bool]], table: Table) -> list[ColumnElement[bool]] | None:
    """`conditions` with `items`' columns replaced by `table`'s copies (None if one has none)."""
    missing: list[str] = []

    def swap(element: Any, **_: Any) -> Any:
        if isinstance(element, Column) and element.table is items:
            if element.key == "id":
                return table.c.item_id
            if element.key in FILTER_COLUMNS:
                return table.c[element.key]
            missing.append(element.key)
        return None

    no_options: dict[str, Any] = {}
    adapted = [replacement_traverse(condition, no_options, swap) for condition in conditions]
    return None if missing else adapted


def flow_metrics_stored(
    conn: Connection,
    conditions: Sequence[ColumnElement[bool]],
    period: Period,
    now: datetime,
    *,
    lead_time_points: bool = True,
) -> tuple[FlowMetrics, LoadedItems]:
    """hub/flow/metrics.py `flow_metrics` for the items matching `conditions` (WHERE terms on
    `items`), computed from the per-item facts (hub/store/flow_facts.py) instead of every
    item's history: the same figures (tests/test_insights_flow_service.py checks them
    against `flow_metrics` on all the items), with the per-item work in SQL and Python only
    for the items a figure lists (completions of the period, work in progress).

    `lead_time_points=False`: the lead time without its points (`durations_summary`: the
    same percentiles and left-out counts), for a caller that lists none (the dashboard)."""
    source = _facts(conditions)
    first, last = period.start.toordinal(), period.end.toordinal()
    since, until = _day_start(period.start), _day_start(period.end + timedelta(days=1))
    born_in_time = _F.born_day <= last

    # Counts of the matching items by index alone (`ix_flow_facts_counts` covers the first:
    # grouped in its order, no table row is read), then each figure's left-out items by their
    # own index: they are few, and one pass evaluating every condition on every row cost more.
    # Grouped in the counts index's order when only the kinds filter; otherwise grouped by
    # category alone, so that SQLite starts from the narrower filter's index (grouping in
    # index order made it scan the whole counts index for one container: 30x slower).
    grouping = (_F.final_category,) if source.narrowed else (_F.kind, _F.deleted, _F.final_category)
    by_final: dict[str | None, int] = defaultdict(int)
    for final, n in conn.execute(
        select(_F.final_category, func.count()).select_from(source.facts).where(*source.facts_where).group_by(*grouping)
    ):
        by_final[final] += n
    undated: dict[str | None, int] = defaultdict(int)  # no created_at: in no figure
    for final, n in conn.execute(
        select(_F.final_category, func.count())
        .select_from(source.facts)
        .where(
            *source.facts_where,
            # Each final category spelled out (and NULL apart), so the counts index serves it.
            or_(_F.final_category.in_([c.value for c in StatusCategory]), _F.final_category.is_(None)),
            _F.born_day.is_(None),
        )
        .group_by(_F.final_category)
    ):
        undated[final] += n
    matching = sum(by_final.values())
    no_created_at = sum(undated.values())

    def count(*conditions: ColumnElement[bool]) -> int:
        stmt = select(func.count()).select_from(source.facts).where(*source.facts_where, born_in_time, *conditions)
        return int(conn.execute(stmt).scalar_one())

    throughput_out: dict[LeftOut, int] = {}
    cfd_out: dict[LeftOut, int] = {}
    for reason, total, counts in (
        (
            LeftOut.no_completion_time,
            count(_F.completed_at.is_(None), _F.category == StatusCategory.done.value),
            throughput_out,
        ),
        (LeftOut.cancelled, count(_F.cancelled_at >= since, _F.cancelled_at < until), throughput_out),
        (LeftOut.no_history, count(_F.final_category.is_(None)), cfd_out),
        (LeftOut.status_unknown, count(_F.known_from_day > first, _F.known_from_day > _F.born_day), cfd_out),
    ):
        if total:
            counts[reason] = total
    reopened = 0
    reopen_candidates = (
        select(_F.done_entries)
        .select_from(source.facts)
        .where(*source.facts_where, born_in_time, _F.last_done_entry >= since)
    )
    for (entries,) in conn.execute(reopen_candidates):
        if any(period.contains(to_utc(datetime.fromisoformat(e))) for e in orjson.loads(entries)):
            reopened += 1
    if reopened:
        throughput_out[LeftOut.reopened] = reopened

    # Narrowed: the completion time wrapped so that no planner uses its index (SQLite chose
    # it over a container's, reading every item done in the period).
    done_at = func.coalesce(_F.completed_at, _F.completed_at) if source.narrowed else _F.completed_at
    completions = conn.execute(
        select(
            _F.item_id,
            _listed(_F.created_at),
            _listed(_F.completed_at),
            _F.start,
            _listed(_F.started_at),
            _F.has_history,
        )
        .select_from(source.facts)
        .where(*source.facts_where, done_at >= since, done_at < until, born_in_time)
    ).all()
    starts, seen = _STARTS, StartFact.seen.value
    # Most items were seen starting: their start is `started_at` (hub/flow/metrics.py
    # `cycle_start`), spelled out here because the call per row was a tenth of the CPU.
    cycle_time = durations_of(
        (item_id, done_at, started_at, None)
        if start == seen
        else (item_id, done_at, *cycle_start(starts[start], started_at, has_history))
        for item_id, _, done_at, start, started_at, has_history in completions
    )
    lead_spans = ((item_id, done_at, created, None) for item_id, created, done_at, *_ in completions)
    lead_time = durations_of(lead_spans) if lead_time_points else durations_summary(lead_spans)
    # The category as a literal, not a parameter: PostgreSQL uses a partial index only for a
    # WHERE it can prove implies the index's (`category = 'in_progress'`, migration 0015),
    # which a generic plan's `$1` is not (psycopg prepares a statement run five times).
    in_progress = literal(StatusCategory.in_progress.value, literal_execute=True)
    wip_rows = conn.execute(
        select(_F.item_id, _F.start, _listed(_F.started_at), _F.has_history)
        .select_from(source.facts)
        .where(*source.facts_where, _F.category == in_progress, _F.created_at <= now)
    ).all()
    wip = aging_of(
        (
            (item_id, started_at, None)
            if start == seen
            else (item_id, *cycle_start(starts[start], started_at, has_history))
            for item_id, start, started_at, has_history in wip_rows
        ),
        now,
        cycle_time.percentiles,
    )
    finals = {_CATEGORIES[final]: n - undated.get(final, 0) for final, n in by_final.items() if final is not None}
    metrics = FlowMetrics(
        period=period,
        now=now,
        throughput=Throughput(
            weeks=(weeks := weekly_counts((row[2] for row in completions), period)),
            total=sum(week.count for week in weeks),
            left_out=throughput_out,
        ),
        cycle_time=cycle_time,
        lead_time=lead_time,
        wip=wip,
        cumulative_flow=CumulativeFlow(_cfd_days(conn, source, period, finals), cfd_out),
    )
    return metrics, LoadedItems([], matching, no_created_at)


class _ListedTime(UTCDateTime):
    """`UTCDateTime` read faster on SQLite, for the tens of thousands of times a request
    over every item lists: the store writes them as `YYYY-MM-DD HH:MM:SS.ffffff` in UTC
    (UTCDateTime.process_bind_param), which `datetime.fromisoformat` reads with a UTC offset
    appended in a tenth of the time of the generic text -> naive -> aware path (about 45 ms
    of CPU per 100,000-item request). Anything else falls back to that path."""

    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], datetime | None] | None:
        generic = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or generic is None:
            return generic
        parse = datetime.fromisoformat

        def read(value: Any) -> datetime | None:
            if value is None:
                return None
            try:
                return parse(value + "+00:00")
            except (TypeError, ValueError):
                return generic(value)

        return read


_LISTED_TIME = _ListedTime()


def _listed(column: Column[datetime]) -> ColumnElement[datetime]:
    return type_coerce(column, _LISTED_TIME).label(column.key)


def _cfd_days(
    conn: Connection,
    source: _Source,
    period: Period,
    finals: dict[StatusCategory, int],
) -> tuple[CfdDay, ...]:
    """Items per category at the end of each day of the period, from `flow_days`.

    An item's category on day D is the sum of +category -prev_category over its rows up to
    D; over all its rows that sum is its final category. So the count on D is the final
    counts minus the rows after D: one aggregate over the rows after the period's first
    day (recent ones, by the day index), never a walk over each item's history.
    """
    first = period.start.toordinal()
    rows = conn.execute(
        select(_D.day, _D.category, _D.prev_category, func.count())
        .select_from(source.days)
        .where(*source.days_where, _D.day > first)
        .group_by(_D.day, _D.category, _D.prev_category)
    ).all()
    deltas: dict[int, dict[str | None, int]] = defaultdict(lambda: defaultdict(int))
    for day, category, prev, count in rows:
        deltas[day][category] += count
        deltas[day][prev] -= count
    after = {category.value: 0 for category in StatusCategory}  # net change after the day at hand
    last = period.end.toordinal()
    for day, delta in deltas.items():
        if day > last:
            for category, count in delta.items():
                if category is not None:
                    after[category] += count
    out: list[CfdDay] = []
    for ordinal in range(last, first - 1, -1):
        out.append(
            CfdDay(
                date.fromordinal(ordinal),
                {category: finals.get(category, 0) - after[category.value] for category in StatusCategory},
            )
        )
        for category, count in deltas.get(ordinal, {}).items():
            if category is not None:
                after[category] += count
    out.reverse()
    return tuple(out)


def weekly_throughput_stored(conn: Connection, conditions: Sequence[ColumnElement[bool]], period: Period) -> list[int]:
    """hub/flow/metrics.py `recent_weekly_throughput` over `period` from the per-item facts."""
    source = _facts(conditions)
    done_times = conn.execute(
        select(_F.completed_at)
        .select_from(source.facts)
        .where(
            *source.facts_where,
            _F.completed_at >= _day_start(period.start),
            _F.completed_at < _day_start(period.end + timedelta(days=1)),
            _F.born_day <= period.end.toordinal(),
        )
    ).scalars()
    return [week.count for week in weekly_counts(done_times, period)]


def count_matching(conn: Connection, conditions: Sequence[ColumnElement[bool]]) -> int:
    source = _facts(conditions)
    return conn.execute(select(func.count()).select_from(source.facts).where(*source.facts_where)).scalar_one()


class FlowService:
    """Flow metrics for the items matching /v1/items filters over a period."""

    def __init__(self, engine: Engine, *, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms  # API reads: see hub.db.engine.read_connection
        self._queries = ItemQueries(engine)

    def flow(self, query: ItemQuery, *, as_of: datetime, period: Period | None = None) -> FlowReport:
        """Every flow figure (hub/flow/metrics.py) for the matching delivery items; the period
        defaults to the last 12 complete weeks before `as_of`."""
        return report(*self._metrics(query, as_of, period))

    def figures(
        self, query: ItemQuery, *, as_of: datetime, period: Period | None = None
    ) -> tuple[FlowReport, FlowMetrics]:
        """`flow(...)` for a caller that draws the per-item lists itself (the dashboard's
        scatterplot and aging chart): the report without them (`report(..., lists=False)`)
        and the metrics that hold them as plain dataclasses. At 100,000 items a pydantic
        object per point was 0.5 s of CPU, more than the rest of the page. The lead time
        comes without its points (the page draws none): its percentiles and left-out counts
        are the API's."""
        metrics, query, loaded = self._metrics(query, as_of, period, lead_time_points=False)
        return report(metrics, query, loaded, lists=False), metrics

    def flow_json(self, query: ItemQuery, *, as_of: datetime, period: Period | None = None) -> bytes:
        """`flow(...)` as the JSON bytes of its `FlowReport` (what the API answers), built
        without one pydantic object per point (see `report_json`)."""
        return report_json(*self._metrics(query, as_of, period))

    def _metrics(
        self, query: ItemQuery, as_of: datetime, period: Period | None, *, lead_time_points: bool = True
    ) -> tuple[FlowMetrics, ItemQuery, LoadedItems]:
        query = with_delivery_kinds(query)
        as_of = to_utc(as_of)
        period = period or default_period(as_of)
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            conditions = self._queries.filter_conditions(conn, query)
            metrics, loaded = flow_metrics_stored(conn, conditions, period, as_of, lead_time_points=lead_time_points)
        return metrics, query, loaded


def report(metrics: FlowMetrics, query: ItemQuery, loaded: LoadedItems, *, lists: bool = True) -> FlowReport:
    """The public shape of hub/flow's figures. `lists=False` leaves the per-item lists empty
    (cycle and lead time points, WIP items; their counts and percentiles stay) for callers
    that read them from `metrics` (`FlowService.figures`)."""

    def durations(figure: Any) -> DurationsPublic:
        p = figure.percentiles
        return DurationsPublic(
            percentiles=None if p is None else PercentilesPublic(p50=p.p50, p85=p.p85, p95=p.p95),
            points=[DurationPoint(item_id=x.item_id, done_at=x.done_at, days=x.days) for x in figure.points]
            if lists
            else [],
            left_out=_reasons(figure.left_out),
        )

    return FlowReport(
        period=PeriodPublic(start=metrics.period.start, end=metrics.period.end),
        as_of=metrics.now,
        filters=filters_of(query),
        items=loaded.matching,
        not_counted={"no_created_at": loaded.no_created_at} if loaded.no_created_at else {},
        throughput=ThroughputPublic(
            weeks=[WeekThroughput(week=w.week, starts_on=w.starts_on, count=w.count) for w in metrics.throughput.weeks],
            total=metrics.throughput.total,
            left_out=_reasons(metrics.throughput.left_out),
        ),
        cycle_time=durations(metrics.cycle_time),
        lead_time=durations(metrics.lead_time),
        wip=WipPublic(
            count=metrics.wip.count,
            items=[
                WipItem(
                    item_id=a.item_id,
                    started_at=a.started_at,
                    age_days=a.age_days,
                    zone=None if a.zone is None else a.zone.value,
                )
                for a in (metrics.wip.items if lists else ())
            ],
            left_out=_reasons(metrics.wip.left_out),
        ),
        cumulative_flow=CumulativeFlowPublic(
            days=[
                # Items at rest before the period are in the same category every day.
                CfdDayPublic(day=d.day, counts={c.value: n + loaded.settled.get(c, 0) for c, n in d.counts.items()})
                for d in metrics.cumulative_flow.days
            ],
            left_out=_reasons(metrics.cumulative_flow.left_out),
        ),
    )


def report_json(metrics: FlowMetrics, query: ItemQuery, loaded: LoadedItems) -> bytes:
    """`report(...).model_dump_json()`, the same bytes, without building and validating a
    pydantic object per scatterplot point and WIP item (about a third of the CPU of a request
    over 100,000 items, which lists tens of thousands of them).

    Plain dicts in the models' field order, serialised once by orjson (enums as their values,
    UTC as `Z` like pydantic; dicts, because orjson writes dataclasses 4x slower). `FlowReport`
    stays the documented schema; tests/test_insights_flow_json.py checks that both give the
    same bytes and that these validate against it, so the two cannot drift."""

    def durations(figure: Durations) -> dict[str, Any]:
        p = figure.percentiles
        return {
            "percentiles": None if p is None else {"p50": p.p50, "p85": p.p85, "p95": p.p95},
            "points": [{"item_id": x.item_id, "done_at": x.done_at, "days": x.days} for x in figure.points],
            "left_out": _reasons(figure.left_out),
        }

    settled = loaded.settled
    wip = metrics.wip
    body = {
        "period": {"start": metrics.period.start, "end": metrics.period.end},
        "as_of": metrics.now,
        "filters": {
            "source": query.source,
            "tool": query.tool,
            "container": query.container,
            "kind": query.kind,
            "label": query.label,
            "assignee": query.assignee,
        },
        "percentile_definition": PERCENTILE_DEFINITION,
        "items": loaded.matching,
        "not_counted": {"no_created_at": loaded.no_created_at} if loaded.no_created_at else {},
        "throughput": {
            "weeks": [{"week": w.week, "starts_on": w.starts_on, "count": w.count} for w in metrics.throughput.weeks],
            "total": metrics.throughput.total,
            "left_out": _reasons(metrics.throughput.left_out),
        },
        "cycle_time": durations(metrics.cycle_time),
        "lead_time": durations(metrics.lead_time),
        "wip": {
            "count": wip.count,
            "items": [
                {"item_id": a.item_id, "started_at": a.started_at, "age_days": a.age_days, "zone": a.zone}
                for a in wip.items
            ],
            "left_out": _reasons(wip.left_out),
        },
        "cumulative_flow": {
            "days": [
                {"day": d.day, "counts": {c.value: n + settled.get(c, 0) for c, n in d.counts.items()}}
                for d in metrics.cumulative_flow.days
            ],
            "left_out": _reasons(metrics.cumulative_flow.left_out),
        },
    }
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def _reasons(counts: dict[Any, int]) -> dict[str, int]:
    return {str(reason): n for reason, n in sorted(counts.items())}


def period_of(start: date | None, end: date | None, as_of: datetime) -> Period:
    """The period asked for: both ends, or one end and 12 weeks from it, or the default.
    Raises ValueError for a period that ends before it starts."""
    if start is None and end is None:
        return default_period(as_of)
    if start is None:
        assert end is not None
        start = end - timedelta(weeks=DEFAULT_PERIOD_WEEKS) + timedelta(days=1)
    if end is None:
        end = min(start + timedelta(weeks=DEFAULT_PERIOD_WEEKS) - timedelta(days=1), to_utc(as_of).date())
    return Period(start, end)
