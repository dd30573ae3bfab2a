"""GET /v1/insights/quality: the data-quality report (hub/insights/quality.py computes it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.api.deps import SettingsDep, StoreDep
from hub.api.params import UtcDateTime
from hub.api.problems import problem_responses
from hub.api.routes.insights import FlowFiltersDep, _check_day, _json
from hub.insights.quality import DEFAULT_FINDING_LIMIT, QualityReport, QualityService
from hub.store.items import utcnow

MAX_OFFSET = 100_000_000

router = APIRouter(prefix="/insights", tags=["insights"])


@router.get("/quality", response_model=QualityReport, responses=problem_responses(422))
def get_quality(
    store: StoreDep,
    settings: SettingsDep,
    filters: FlowFiltersDep,
    stale_days: Annotated[
        int | None,
        Query(
            ge=1,
            le=3650,
            description="In progress with no update for this many days is a finding "
            "[default: setting HUB_QUALITY_STALE_DAYS].",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Item ids listed per finding.")] = DEFAULT_FINDING_LIMIT,
    # Bounded: a larger OFFSET than any finding can hold is meaningless, and past 2^63 PostgreSQL
    # refuses it (a 500 that schemathesis found) instead of returning an empty page.
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description="Skip this many ids of each finding (its `next_offset`).")
    ] = 0,
    as_of: Annotated[UtcDateTime | None, Query(description="When staleness is measured (default: now).")] = None,
) -> Response:
    """Completeness of open items, vocabulary drift, hygiene findings (ids paged per finding)
    and a 0-100 score per source and per container, for the items matching the filters (every
    kind unless `kind` is given). `rules` in the answer states every rule and the score formula."""
    now = as_of or utcnow()
    _check_day("as_of", now.date())  # as_of minus stale_days must not leave the calendar
    service = QualityService(store.engine, statement_timeout_ms=store.queries.statement_timeout_ms)
    report = service.report(
        filters,
        as_of=now,
        stale_days=stale_days or settings.quality_stale_days,
        limit=limit,
        offset=offset,
    )
    return _json(report)
