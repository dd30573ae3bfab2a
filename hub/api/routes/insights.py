"""GET /v1/insights/flow (flow metrics) and GET /v1/insights/forecast (Monte Carlo forecasts).

Thin routes over hub/insights: the services compute, these check parameters and map the
services' errors to problems.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from hub.api.deps import StoreDep
from hub.api.models import ProblemFieldError
from hub.api.params import (
    MAX_FILTER_VALUES,
    AssigneeFilter,
    ContainerFilter,
    FilterText,
    LabelFilter,
    SourceFilter,
    ToolFilter,
    UtcDateTime,
)
from hub.api.problems import ProblemError, problem_responses
from hub.flow.forecast import DEFAULT_TRIALS
from hub.flow.metrics import Period
from hub.insights.digest import DEFAULT_NAMED, DigestReport, DigestService, default_window, to_markdown
from hub.insights.flow import FlowService, period_of
from hub.insights.forecast import DEFAULT_HISTORY_WEEKS, ForecastService, ItemNotFound, NotRoadmapItem
from hub.insights.models import FlowReport, HowManyForecast, WhenDoneForecast
from hub.schema import ItemKind
from hub.store import ItemQuery
from hub.store.items import utcnow

router = APIRouter(prefix="/insights", tags=["insights"])

MAX_PERIOD_DAYS = 3 * 366
"""Longest period one request computes (the cumulative flow has a row per day)."""
MAX_TRIALS = 100_000
EARLIEST, LATEST = date(1970, 1, 1), date(9000, 12, 31)
"""`as_of` bounds: far enough from date.min/max that a period or a forecast date never overflows."""


async def flow_filters(
    source: SourceFilter = None,
    tool: ToolFilter = None,
    container: ContainerFilter = None,
    kind: Annotated[
        list[ItemKind] | None,
        Query(description="Item kinds counted (default: delivery kinds).", max_length=MAX_FILTER_VALUES),
    ] = None,
    label: LabelFilter = None,
    assignee: AssigneeFilter = None,
) -> ItemQuery:
    """The /v1/items filters that flow figures and forecasts take (OR within, AND across)."""
    return ItemQuery.shared_filters(
        source=source, tool=tool, container=container, kind=kind, label=label, assignee=assignee
    )


FlowFiltersDep = Annotated[ItemQuery, Depends(flow_filters)]


def _invalid(name: str, detail: str) -> ProblemError:
    return ProblemError(
        422,
        detail=f"invalid request parameter(s): {name} ({detail})",
        errors=[ProblemFieldError.model_validate({"in": "query", "name": name, "detail": detail})],
    )


def _json(model: BaseModel) -> Response:
    # The service built and validated the model: serialising it directly skips FastAPI's
    # second validation of the response (a second at 100,000 items, for thousands of points).
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/flow", response_model=FlowReport, responses=problem_responses(422))
def get_flow(
    store: StoreDep,
    filters: FlowFiltersDep,
    start: Annotated[date | None, Query(alias="from", description="First UTC day of the period.")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last UTC day of the period (included).")] = None,
    as_of: Annotated[UtcDateTime | None, Query(description="When work in progress is measured (default: now).")] = None,
) -> Response:
    """Throughput per ISO week, cycle and lead time (p50/p85/p95 and every point), aging work
    in progress and the cumulative flow per day, for the delivery items matching the filters.
    The period defaults to the last 12 complete weeks; each figure counts what it left out."""
    now = as_of or utcnow()
    _check_day("as_of", now.date())
    for name, day in (("from", start), ("to", end)):
        if day is not None:
            _check_day(name, day)
    period = _period(start, end, now)
    service = FlowService(store.engine, statement_timeout_ms=store.queries.statement_timeout_ms)
    # Bytes built without a pydantic object per point; equal to `FlowReport`'s JSON (see
    # hub/insights/flow.py `report_json`), which stays the documented response schema.
    return Response(service.flow_json(filters, as_of=now, period=period), media_type="application/json")


def _check_day(name: str, day: date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise _invalid(name, f"must be between {EARLIEST} and {LATEST}")


def _period(start: date | None, end: date | None, now: datetime) -> Period:
    try:
        period = period_of(start, end, now)
    except ValueError as exc:
        raise _invalid("to" if end is not None else "from", str(exc)) from exc
    if (period.end - period.start).days + 1 > MAX_PERIOD_DAYS:
        raise _invalid("from", f"a period is at most {MAX_PERIOD_DAYS} days")
    return period


@router.get("/forecast", response_model=WhenDoneForecast | HowManyForecast, responses=problem_responses(404, 422))
def get_forecast(
    store: StoreDep,
    filters: FlowFiltersDep,
    item: Annotated[
        FilterText | None, Query(description="Hub id of a roadmap item (initiative, epic, feature): when done?")
    ] = None,
    weeks: Annotated[
        int | None, Query(ge=1, le=520, description="How many items will be done in the next N weeks?")
    ] = None,
    history_weeks: Annotated[
        int, Query(ge=1, le=260, description="Whole weeks of throughput history drawn from.")
    ] = DEFAULT_HISTORY_WEEKS,
    trials: Annotated[int, Query(ge=1, le=MAX_TRIALS, description="Monte Carlo trials.")] = DEFAULT_TRIALS,
    seed: Annotated[int, Query(ge=0, le=2**63 - 1, description="Same data and seed, same answer.")] = 0,
    as_of: Annotated[date | None, Query(description="The day the forecast starts (default: today, UTC).")] = None,
) -> Response:
    """Monte Carlo forecast over recent weekly throughput, in one of two forms:

    - `item=ID`: dates at 50/85/95 % by which the open delivery items under a roadmap item
      (in every tool, as /v1/roadmap finds them) will be done, from the throughput of the
      containers holding them.
    - `weeks=N` with /v1/items filters: how many matching items will be done in N weeks.

    A history with nothing finished gives no forecast: a 200 whose `reason` says why."""
    if (item is None) == (weeks is None):
        raise _invalid("item", "give either item=ID (when done) or weeks=N (how many), not both or neither")
    service = ForecastService(store.engine, statement_timeout_ms=store.queries.statement_timeout_ms)
    today = as_of or utcnow().date()
    _check_day("as_of", today)
    if weeks is not None:
        return _json(
            service.how_many(filters, weeks, as_of=today, history_weeks=history_weeks, trials=trials, seed=seed)
        )
    assert item is not None
    if filters != ItemQuery():
        raise _invalid("item", "filters apply to weeks=N; a roadmap item's forecast uses the items under it")
    try:
        return _json(service.when_done(item, as_of=today, history_weeks=history_weeks, trials=trials, seed=seed))
    except ItemNotFound as exc:
        raise ProblemError(404, detail=f"no item with id {item!r}") from exc
    except NotRoadmapItem as exc:
        raise _invalid("item", str(exc)) from exc


@router.get(
    "/digest",
    response_model=DigestReport,
    responses={**problem_responses(406, 422), 200: {"content": {"text/markdown": {}}}},
)
def get_digest(
    store: StoreDep,
    request: Request,
    since: Annotated[UtcDateTime | None, Query(description="Period start (default: until - 7 days).")] = None,
    until: Annotated[UtcDateTime | None, Query(description="Period end, excluded (default: now).")] = None,
    named: Annotated[int, Query(ge=0, le=20, description="Items named per point.")] = DEFAULT_NAMED,
    format: Annotated[str | None, Query(description="json or markdown (overrides Accept).")] = None,
) -> Response:
    """The weekly status digest per team and roadmap item (hub/insights/digest.py states the
    rules): counts first, then a few named items per point, linked to their tools."""
    end = until or utcnow()
    _check_day("until", end.date())  # the default start (until - 7 days) must stay in the calendar
    start = since or default_window(end)[0]
    _check_day("since", start.date())
    if start >= end:
        raise _invalid("since", "must be before until")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise _invalid("since", f"a period is at most {MAX_PERIOD_DAYS} days")
    markdown = _wants_markdown(format, request.headers.get("accept"))
    report = DigestService(store.engine, statement_timeout_ms=store.queries.statement_timeout_ms).digest(
        start, end, named=named
    )
    if markdown:
        return Response(to_markdown(report), media_type="text/markdown; charset=utf-8")
    return _json(report)


def _wants_markdown(format: str | None, accept: str | None) -> bool:
    """`format` wins over `Accept`; in `Accept` the first type this route can give wins (no
    header, `*/*` or `application/json`: JSON). q-values are not weighed."""
    if format is not None:
        if format not in ("json", "markdown"):
            raise _invalid("format", "must be json or markdown")
        return format == "markdown"
    types = [part.split(";")[0].strip().lower() for part in (accept or "*/*").split(",") if part.strip()]
    for media_type in types:
        if media_type in ("application/json", "*/*", "application/*"):
            return False
        if media_type in ("text/markdown", "text/*"):
            return True
    raise ProblemError(406, detail="this resource is available as application/json or text/markdown")
