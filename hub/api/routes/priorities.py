"""GET /v1/insights/priorities: the urgent x important matrix of the open items.

Thin route over hub/insights/priorities.py (the rules are stated there and in the README);
it takes the /v1/items filters and the settings' `priorities_*` rules.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.api.deps import PageLimit, SettingsDep, StoreDep
from hub.api.params import FilterText
from hub.api.problems import problem_responses
from hub.api.routes.insights import EARLIEST, LATEST, _check_day, _invalid
from hub.api.routes.items import ItemQueryDep
from hub.insights.priorities import PriorityMatrix, PriorityRules, PriorityService, Quadrant
from hub.store.items import utcnow

router = APIRouter(prefix="/insights", tags=["insights"])


@router.get("/priorities", response_model=PriorityMatrix, responses=problem_responses(422))
def get_priorities(
    store: StoreDep,
    settings: SettingsDep,
    filters: ItemQueryDep,
    limit: PageLimit,
    as_of: Annotated[
        date | None, Query(description=f"The day urgency is measured from (default: today, UTC; {EARLIEST}..{LATEST}).")
    ] = None,
    quadrant: Annotated[Quadrant | None, Query(description="The quadrant `after` pages.")] = None,
    after: Annotated[FilterText | None, Query(description="A quadrant's `next_after`: its next page.")] = None,
) -> Response:
    """Every open item (status not done or cancelled) matching the /v1/items filters, in one
    of four quadrants urgent x important, each with its count and a page of items saying
    which rules fired; `delegate_or_drop` repeats the urgent but not important ones."""
    today = as_of or utcnow().date()
    _check_day("as_of", today)
    if after is not None and quadrant is None:
        raise _invalid("after", "page one quadrant: give quadrant= with after=")
    service = PriorityService(
        store.engine, PriorityRules.from_settings(settings), statement_timeout_ms=store.queries.statement_timeout_ms
    )
    matrix = service.matrix(filters, as_of=today, limit=limit, quadrant=quadrant, after=after)
    return Response(matrix.model_dump_json(), media_type="application/json")
