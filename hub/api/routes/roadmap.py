"""GET /v1/roadmap (rollup of roadmap items across tools) and GET /v1/items/{id}/tree."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hub.api.deps import StoreDep
from hub.api.models import Roadmap, TreeNode
from hub.api.params import MAX_FILTER_VALUES, NO_NUL, ContainerFilter, FilterText
from hub.api.problems import ProblemError, problem_responses
from hub.roadmap import RoadmapQuery
from hub.schema import StatusCategory

router = APIRouter(tags=["roadmap"])

Filter = Annotated[list[FilterText] | None, Query(max_length=MAX_FILTER_VALUES)]


@router.get("/roadmap")
def get_roadmap(
    store: StoreDep,
    source: Annotated[
        list[FilterText] | None, Query(description="Roadmap items from these sources.", max_length=MAX_FILTER_VALUES)
    ] = None,
    container: ContainerFilter = None,
    release: Annotated[
        list[FilterText] | None, Query(description="Release id or name.", max_length=MAX_FILTER_VALUES)
    ] = None,
    status_category: Annotated[
        list[StatusCategory] | None, Query(description="Of the roadmap item.", max_length=MAX_FILTER_VALUES)
    ] = None,
    uncovered_limit: Annotated[int, Query(ge=0, le=500, description="How many uncovered items to list.")] = 50,
) -> Roadmap:
    """For each roadmap item (initiative, epic, feature): the delivery items it covers in every
    tool, counts by status, progress by count and by estimate, blocked items, newest activity;
    and the delivery items no roadmap item covers."""
    query = RoadmapQuery(
        source=source or [],
        container=container or [],
        release=release or [],
        status_category=[c.value for c in status_category or []],
    )
    return Roadmap.model_validate(store.roadmap.roadmap(query, uncovered_limit=uncovered_limit))


@router.get("/items/{item_id:path}/tree", responses=problem_responses(404))
def get_item_tree(
    item_id: Annotated[str, Path(description="Hub id (URL-encoded).", pattern=NO_NUL)],
    store: StoreDep,
    depth: Annotated[int, Query(ge=1, le=8, description="Levels below the item.")] = 5,
) -> TreeNode:
    """One item and everything below it: children and implementing items, across tools."""
    tree = store.roadmap.tree(item_id, depth=depth)
    if tree is None:
        raise ProblemError(404, detail=f"no item with id {item_id!r}")
    return TreeNode.model_validate(tree)
