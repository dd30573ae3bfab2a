"""Flow metrics service: the store's items and status histories -> `FlowReport`.

Used by `GET /v1/insights/flow`, `opshub report flow` and the forecasts (which draw on the
same weekly throughput). The figures themselves are hub/flow/metrics.py's; this module only
reads what they need and shapes the answer.

Reads stay in bulk and follow the period, not the store (`load_flow_items`): one query for
the matching items' (id, created_at, status category), with the /v1/items filters as its
WHERE and a flag for the items the period is about; the histories of only those items, by
primary key in chunks; the others (at rest before the period) are counted per category. No
item document is parsed: the tool's own `completed_at` lives in the document only and is
extracted in SQL just for the items done now whose history does not say when, which is the
fallback hub/flow/metrics.py defines.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from hub.db.engine import read_connection
from hub.db.tables import items, status_transitions
from hub.flow.history import Transition, TransitionSource, build_history
from hub.flow.metrics import FlowItem, FlowMetrics, Period, flow_metrics
from hub.insights.models import (
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
from hub.store.queries import ItemQueries, ItemQuery

DEFAULT_PERIOD_WEEKS = 12
_CHUNK = 500
_T = status_transitions.c
_CATEGORIES = {category.value: category for category in StatusCategory}
_SOURCES = {source.value: source for source in TransitionSource}


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
    """What the store holds of the matching items, ready for hub/flow."""

    items: list[FlowItem]
    matching: int
    no_created_at: int
    without_history: frozenset[str]
    settled: dict[StatusCategory, int] = field(default_factory=dict)
    """Items left at rest before `since`, counted per category and not loaded (see `load_flow_items`)."""


def load_flow_items(
    conn: Connection, conditions: Sequence[ColumnElement[bool]], *, since: datetime | None = None
) -> LoadedItems:
    """The items matching `conditions` (WHERE terms on `items`) with their histories.

    With `since` (the start of a period), items *at rest* since then are only counted, per
    status category (`settled`): they have a history, none of it on or after `since`, were
    created before it and are not in progress. No figure of the period can differ for them
    (hub/flow/metrics.py): a completion or cancellation before the period is neither counted
    nor left out, they are not WIP, and in the cumulative flow they sit in one category on
    every day of the period. Over a long history most items are at rest, so this keeps the
    Python work to the items the period is about. Their category is the item's status, which
    is the last status of its history: `apply()` records a transition whenever the status
    changes. tests/test_insights_flow_service.py checks the figures equal hub/flow's on all
    the items.
    """
    where = and_(*conditions) if conditions else None
    categories = _CATEGORIES
    # No datetime is read here: most items are settled and only counted, and decoding their
    # `created_at` was a fifth of the request at 100,000 items. The active ones' come next.
    item_stmt = select(items.c.id, items.c.status_category, _active_flag(since))
    if where is not None:
        item_stmt = item_stmt.where(where)
    rows = conn.execute(item_stmt).all()
    moved: set[str] = set()
    if since is not None:
        moved = _moved_since(conn, [row[0] for row in rows if not row[2]], since)
    settled: dict[StatusCategory, int] = {}
    active_rows: list[tuple[str, str]] = []
    for item_id, category, moving in rows:
        if moving or item_id in moved:
            active_rows.append((item_id, category))
        else:
            settled[categories[category]] = settled.get(categories[category], 0) + 1
    created = _created_at(conn, [item_id for item_id, _ in active_rows])
    active = [(item_id, created.get(item_id), category) for item_id, category in active_rows]
    facts = _histories(conn, [item_id for item_id, created_at, _ in active if created_at is not None])
    loaded: list[FlowItem] = []
    no_created_at = 0
    without_history: set[str] = set()
    for item_id, created_at, category in active:
        if created_at is None:
            no_created_at += 1
            continue
        own = facts.get(item_id)
        if not own:
            without_history.add(item_id)
        loaded.append(FlowItem(item_id, created_at, categories[category], build_history(item_id, own or ())))
    _fill_completed_at(conn, loaded)
    return LoadedItems(loaded, len(rows), no_created_at, frozenset(without_history), settled)


_SCAN_ABOVE = 20_000
"""Candidates past which one range scan of the whole store's recent transitions costs less
than a primary-key seek per candidate (SQLite, 100,000 items: 60 ms against 200 ms)."""


def _moved_since(conn: Connection, candidates: list[str], since: datetime) -> set[str]:
    """Which candidates have a transition at or after `since`."""
    if len(candidates) > _SCAN_ABOVE:
        # One range scan of the transitions' time index; a set lookup per item is cheaper
        # than the planners' IN (subquery) probe per row.
        return set(conn.execute(select(_T.item_id).where(_T.at >= since).distinct()).scalars())
    found: set[str] = set()
    for start in range(0, len(candidates), _CHUNK):
        chunk = candidates[start : start + _CHUNK]
        stmt = select(_T.item_id).where(_one_of(conn, _T.item_id, chunk), _T.at >= since).distinct()
        found.update(conn.execute(stmt).scalars())
    return found


def _active_flag(since: datetime | None) -> ColumnElement[Any]:
    """1 for an item the period is about, 0 for one at rest since `since` (`load_flow_items`).

    The items that moved since `since` are added by the caller (from the transitions' time
    index); here the other reasons, cheapest first, the probe for having any history last.
    """
    if since is None:
        return literal(1).label("moving")
    any_fact = status_transitions.alias("any_fact").c
    moving = or_(
        items.c.status_category == StatusCategory.in_progress.value,
        items.c.created_at.is_(None),
        items.c.created_at >= since,
        ~exists().where(any_fact.item_id == items.c.id),
    )
    return case((moving, 1), else_=0).label("moving")


def _one_of(conn: Connection, column: ColumnElement[str], ids: list[str]) -> ColumnElement[bool]:
    """`column IN ids` for a chunk of ids read by primary key.

    On PostgreSQL as `column = ANY(array)`, one parameter: psycopg rewrites a statement's
    placeholders in Python, ~10 ms for a 500-value IN list, which at 100,000 items was a
    third of the reads (https://www.psycopg.org/psycopg3/docs/basic/adapt.html#lists-adaptation).
    """
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(String), unique=True))
    return column.in_(ids)


def _created_at(conn: Connection, item_ids: list[str]) -> dict[str, datetime | None]:
    """The items' `created_at`, read by primary key a chunk at a time."""
    found: dict[str, datetime | None] = {}
    stmt = select(items.c.id, items.c.created_at)
    for start in range(0, len(item_ids), _CHUNK):
        found.update(
            (row[0], row[1])
            for row in conn.execute(stmt.where(_one_of(conn, items.c.id, item_ids[start : start + _CHUNK])))
        )
    return found


def _histories(conn: Connection, item_ids: list[str]) -> dict[str, list[Transition]]:
    """The stored transitions of these items, read by primary key a chunk at a time."""
    categories, sources = _CATEGORIES, _SOURCES
    facts: dict[str, list[Transition]] = defaultdict(list)
    stmt = select(_T.item_id, _T.at, _T.to_category, _T.to_name, _T.from_category, _T.source)
    for start in range(0, len(item_ids), _CHUNK):
        chunk = item_ids[start : start + _CHUNK]
        for item_id, at, to_category, to_name, from_category, source in conn.execute(
            stmt.where(_one_of(conn, _T.item_id, chunk))
        ):
            facts[item_id].append(
                Transition(
                    item_id,
                    at,
                    categories[to_category],
                    to_name or None,
                    categories[from_category] if from_category else None,
                    None,
                    sources[source],
                )
            )
    return facts


def _fill_completed_at(conn: Connection, loaded: list[FlowItem]) -> None:
    """The tool's `completed_at` for items done now whose history does not say when."""
    wanted = {
        item.item_id: item for item in loaded if item.category is StatusCategory.done and not item.history.done_at
    }
    if not wanted:
        return
    column: Any = (
        cast(items.c.doc, JSONB)["completed_at"].astext
        if conn.dialect.name == "postgresql"
        else func.json_extract(items.c.doc, "$.completed_at")
    )
    ids = sorted(wanted)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for item_id, completed in conn.execute(select(items.c.id, column).where(_one_of(conn, items.c.id, chunk))):
            if completed:
                wanted[item_id].completed_at = to_utc(datetime.fromisoformat(completed))


class FlowService:
    """Flow metrics for the items matching /v1/items filters over a period."""

    def __init__(self, engine: Engine, *, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms  # API reads: see hub.db.engine.read_connection
        self._queries = ItemQueries(engine)

    def load(self, query: ItemQuery, *, since: datetime | None = None) -> LoadedItems:
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            return load_flow_items(conn, self._queries.filter_conditions(conn, query), since=since)

    def flow(self, query: ItemQuery, *, as_of: datetime, period: Period | None = None) -> FlowReport:
        """Every flow figure (hub/flow/metrics.py) for the matching delivery items; the period
        defaults to the last 12 complete weeks before `as_of`."""
        query = with_delivery_kinds(query)
        as_of = to_utc(as_of)
        period = period or default_period(as_of)
        loaded = self.load(query, since=datetime.combine(period.start, time(), UTC))
        metrics = flow_metrics(loaded.items, period, as_of)
        return report(metrics, query, loaded)


def report(metrics: FlowMetrics, query: ItemQuery, loaded: LoadedItems) -> FlowReport:
    """The public shape of hub/flow's figures."""

    def durations(figure: Any) -> DurationsPublic:
        p = figure.percentiles
        return DurationsPublic(
            percentiles=None if p is None else PercentilesPublic(p50=p.p50, p85=p.p85, p95=p.p95),
            points=[DurationPoint(item_id=x.item_id, done_at=x.done_at, days=x.days) for x in figure.points],
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
                for a in metrics.wip.items
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
