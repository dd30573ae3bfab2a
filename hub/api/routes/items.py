"""GET /v1/items (filtered, keyset-paged), GET /v1/items/{id} and GET /v1/items/{id}/history."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from hub.api.deps import PageLimit, StoreDep
from hub.api.models import HistoryTransition, ItemHistoryPublic, ItemPage, ItemPublic
from hub.api.params import (
    MAX_FILTER_VALUES,
    NO_NUL,
    AssigneeFilter,
    ContainerFilter,
    CursorText,
    LabelFilter,
    SearchText,
    SourceFilter,
    StoredValueText,
    ToolFilter,
    UtcDateTime,
)
from hub.api.problems import ProblemError, problem_responses
from hub.schema import ItemKind, PriorityLevel, StatusCategory
from hub.store import ItemQuery

router = APIRouter(tags=["items"])


async def item_query(
    source: SourceFilter = None,
    tool: ToolFilter = None,
    kind: Annotated[list[ItemKind] | None, Query(max_length=MAX_FILTER_VALUES)] = None,
    status_category: Annotated[list[StatusCategory] | None, Query(max_length=MAX_FILTER_VALUES)] = None,
    priority_level: Annotated[list[PriorityLevel] | None, Query(max_length=MAX_FILTER_VALUES)] = None,
    assignee: AssigneeFilter = None,
    label: LabelFilter = None,
    container: ContainerFilter = None,
    parent_id: Annotated[
        list[StoredValueText] | None,
        Query(description="Hub id of the parent item.", max_length=MAX_FILTER_VALUES),
    ] = None,
    updated_after: Annotated[UtcDateTime | None, Query(description="Strictly after (the tool's time).")] = None,
    updated_before: Annotated[UtcDateTime | None, Query(description="Strictly before (the tool's time).")] = None,
    q: Annotated[SearchText | None, Query(description="Text inside the key or title (case-insensitive).")] = None,
    include_deleted: Annotated[bool, Query(description="Also return tombstoned items.")] = False,
) -> ItemQuery:
    """The item filters of a request. Repeating a filter means OR; different filters AND."""
    return ItemQuery(
        source=source or [],
        tool=tool or [],
        kind=[k.value for k in kind or []],
        status_category=[s.value for s in status_category or []],
        priority_level=[p.value for p in priority_level or []],
        assignee=assignee or [],
        label=label or [],
        container=container or [],
        parent_id=parent_id or [],
        updated_after=updated_after,
        updated_before=updated_before,
        q=q,
        include_deleted=include_deleted,
    )


ItemQueryDep = Annotated[ItemQuery, Depends(item_query)]


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


@router.get("/items", response_model=ItemPage, responses=problem_responses(400))
def list_items(
    query: ItemQueryDep,
    store: StoreDep,
    limit: PageLimit,
    sort: Annotated[
        Literal["updated_at", "-updated_at", "rice_score", "-rice_score"],
        Query(description="By the tool's updated_at, or by RICE score (lists only items that have one)."),
    ] = "-updated_at",
    cursor: Annotated[CursorText | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> Response:
    """Items matching the filters, one keyset page at a time.

    While a client walks the pages, every item not written meanwhile comes back exactly once.
    """
    docs, next_cursor = store.queries.list_items(query, sort=sort, limit=limit, cursor=cursor)
    # The store's documents are already the public JSON shape (ItemPublic); re-validating a
    # few hundred models per page would cost more than the query itself.
    return _json({"items": docs, "next_cursor": next_cursor})


# Before /items/{item_id:path}, which would otherwise take "<id>/history" as an id.
@router.get("/items/{item_id:path}/history", responses=problem_responses(404))
def get_item_history(
    item_id: Annotated[str, Path(description='Hub id, e.g. "acme-jira:10001" (URL-encoded).', pattern=NO_NUL)],
    store: StoreDep,
) -> ItemHistoryPublic:
    """The item's status history: every status change on the tool's clock, from every source
    (the tool's changelog, webhooks, the hub's own observations), merged into one, with the
    derived start, completion and reopened facts that flow metrics use."""
    history = store.items.history(item_id)
    if history is None:
        raise ProblemError(404, detail=f"no item with id {item_id!r}")
    return ItemHistoryPublic(
        item_id=history.item_id,
        start=history.start,
        started_at=history.started_at,
        done_at=history.done_at,
        reopened=history.reopened,
        transitions=[
            HistoryTransition(
                at=fact.at,
                from_category=fact.from_category,
                from_name=fact.from_name,
                to_category=fact.to_category,
                to_name=fact.to_name,
                source=fact.source,
            )
            for fact in history.transitions
        ],
    )


@router.get("/items/{item_id:path}", response_model=ItemPublic, responses=problem_responses(404))
def get_item(
    item_id: Annotated[str, Path(description='Hub id, e.g. "acme-gh:org/repo#7" (URL-encoded).', pattern=NO_NUL)],
    store: StoreDep,
    include: Annotated[list[Literal["raw"]] | None, Query(description="`raw` adds the tool's payload.")] = None,
) -> Response:
    """One item by hub id, tombstoned or not."""
    doc = store.queries.get_item(item_id, include_raw="raw" in (include or []))
    if doc is None:
        raise ProblemError(404, detail=f"no item with id {item_id!r}")
    return _json(doc)
