"""Forecast service: "when will this roadmap item be done" and "how many in N weeks".

Both are Monte Carlo over observed weekly throughput (hub/flow/forecast.py), seeded, and
both say what they rest on (`ForecastBasis`).

- `when_done(item_id)`: the roadmap item (initiative, epic or feature from any tool) covers
  delivery items in every tool, found with /v1/roadmap's own traversal (hub/roadmap.py
  `Graph`: children and implementers, recursively). The open ones are what remains. The
  throughput drawn from is that of the containers (teams, projects, repositories) holding
  them, summed per week: the people who will do the work, at the pace they finish work.
- `how_many(query, weeks)`: the weekly throughput of the items matching /v1/items filters.

History is the `history_weeks` whole ISO weeks before the week of `as_of` (the running week
is left out: hub/flow/metrics.py `recent_weekly_throughput`).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection, Engine, select

from hub.db.engine import read_connection
from hub.db.tables import status_transitions
from hub.flow.forecast import DEFAULT_TRIALS, CannotForecast, how_many, when_done
from hub.flow.metrics import Period
from hub.insights.flow import count_matching, filters_of, weekly_throughput_stored, with_delivery_kinds
from hub.insights.models import ForecastBasis, HowManyForecast, WhenDoneForecast
from hub.roadmap import DELIVERY_KINDS, ROADMAP_KINDS, Graph
from hub.schema import StatusCategory
from hub.store.queries import ItemQueries, ItemQuery

DEFAULT_HISTORY_WEEKS = 12
_T = status_transitions.c
_CLOSED = (StatusCategory.done.value, StatusCategory.cancelled.value)


class ItemNotFound(LookupError):
    """No live item has this id."""


class NotRoadmapItem(ValueError):
    """The item is not an initiative, epic or feature, so nothing is "under" it to forecast."""


class ForecastService:
    def __init__(self, engine: Engine, *, statement_timeout_ms: int | None = None) -> None:
        self.engine = engine
        self.statement_timeout_ms = statement_timeout_ms  # API reads: see hub.db.engine.read_connection
        self._queries = ItemQueries(engine)

    def when_done(
        self,
        item_id: str,
        *,
        as_of: date,
        history_weeks: int = DEFAULT_HISTORY_WEEKS,
        trials: int = DEFAULT_TRIALS,
        seed: int = 0,
    ) -> WhenDoneForecast:
        """Completion dates at 50/85/95 % for the open delivery items under `item_id`."""
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            graph = Graph(conn)
            graph.load([item_id])
            root = graph.docs.get(item_id)
            if root is None:
                raise ItemNotFound(item_id)
            if root["kind"] not in ROADMAP_KINDS:
                raise NotRoadmapItem(
                    f"item {item_id!r} is a {root['kind']}; forecasts are for roadmap items "
                    f"({', '.join(ROADMAP_KINDS)}): use weeks=N with filters for a team's throughput"
                )
            graph.expand([item_id])
            below = [graph.docs[i] for i in graph.descendants(item_id)]
            remaining = sorted(
                d["id"] for d in below if d["kind"] in DELIVERY_KINDS and d["status"]["category"] not in _CLOSED
            )
            containers = sorted({_container_ref(graph.docs[i]) for i in remaining} - {""})
            history_query = ItemQuery(container=containers, kind=list(DELIVERY_KINDS))
            samples, in_history = [0] * history_weeks, 0
            if containers:
                conditions = self._queries.filter_conditions(conn, history_query)
                samples = weekly_throughput_stored(conn, conditions, _history_period(as_of, history_weeks))
                in_history = count_matching(conn, conditions)
            without_history = len(remaining) - len(_with_history(conn, remaining))
        basis = _basis(samples, history_weeks, as_of, containers, in_history)
        if remaining:
            result = when_done(len(remaining), samples, start=as_of, trials=trials, seed=seed)
        else:  # nothing left is done today, whatever the history (when_done would refuse an empty one first)
            result = when_done(0, [1], start=as_of, trials=trials, seed=seed)
        common = {
            "item_id": item_id,
            "item_kind": root["kind"],
            "as_of": as_of,
            "remaining": len(remaining),
            "remaining_items": remaining,
            "items_without_history": without_history,
            "trials": trials,
            "seed": seed,
            "basis": basis,
        }
        if isinstance(result, CannotForecast):
            return WhenDoneForecast(**common, weeks=None, dates=None, beyond_horizon=0, reason=result.reason)
        return WhenDoneForecast(
            **common,
            weeks={f"p{level}": w for level, w in result.weeks.items()},
            dates={f"p{level}": d for level, d in result.dates.items()},
            beyond_horizon=result.beyond_horizon,
            reason=None,
        )

    def how_many(
        self,
        query: ItemQuery,
        weeks: int,
        *,
        as_of: date,
        history_weeks: int = DEFAULT_HISTORY_WEEKS,
        trials: int = DEFAULT_TRIALS,
        seed: int = 0,
    ) -> HowManyForecast:
        """Items matching the filters that will be done in the next `weeks` weeks."""
        query = with_delivery_kinds(query)
        with read_connection(self.engine, statement_timeout_ms=self.statement_timeout_ms) as conn:
            conditions = self._queries.filter_conditions(conn, query)
            samples = weekly_throughput_stored(conn, conditions, _history_period(as_of, history_weeks))
            in_history = count_matching(conn, conditions)
        result = how_many(weeks, samples, trials=trials, seed=seed)
        common = {
            "weeks": weeks,
            "as_of": as_of,
            "filters": filters_of(query),
            "trials": trials,
            "seed": seed,
            "basis": _basis(samples, history_weeks, as_of, query.container, in_history),
        }
        if isinstance(result, CannotForecast):
            return HowManyForecast(**common, items=None, reason=result.reason)
        return HowManyForecast(**common, items={f"p{level}": n for level, n in result.items.items()}, reason=None)


def _container_ref(doc: dict[str, object]) -> str:
    """The container's id (its key when the tool gives no id): what /v1/items' filter takes."""
    container = doc.get("container")
    if not isinstance(container, dict):
        return ""
    return str(container.get("id") or container.get("key") or "")


def _with_history(conn: Connection, item_ids: list[str]) -> set[str]:
    """Which of these items have at least one status transition stored."""
    found: set[str] = set()
    for start in range(0, len(item_ids), 500):
        chunk = item_ids[start : start + 500]
        found.update(conn.execute(select(_T.item_id).where(_T.item_id.in_(chunk)).distinct()).scalars())
    return found


def _history_period(as_of: date, history_weeks: int) -> Period:
    """The `history_weeks` whole ISO weeks before the week of `as_of` (hub/flow/metrics.py
    `recent_weekly_throughput`: the running week would read as a slow one)."""
    if history_weeks < 1:
        raise ValueError(f"weeks must be >= 1, got {history_weeks}")
    this_monday = as_of - timedelta(days=as_of.weekday())
    return Period(this_monday - timedelta(weeks=history_weeks), this_monday - timedelta(days=1))


def _basis(samples: list[int], weeks: int, as_of: date, containers: list[str], in_history: int) -> ForecastBasis:
    this_monday = as_of - timedelta(days=as_of.weekday())
    return ForecastBasis(
        history_weeks=len(samples),
        weekly_throughput=samples,
        history_from=this_monday - timedelta(weeks=weeks),
        history_to=this_monday - timedelta(days=1),
        containers=containers,
        items_in_history=in_history,
    )
