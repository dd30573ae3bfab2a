"""GET /v1/sources and GET /v1/sources/{name}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from hub.api.deps import StoreDep
from hub.api.models import SourceList, SourcePublic
from hub.api.params import NO_NUL
from hub.api.problems import ProblemError, problem_responses

router = APIRouter(tags=["sources"])


@router.get("/sources")
def list_sources(store: StoreDep) -> SourceList:
    """Every configured source with its live item count."""
    return SourceList.model_validate({"sources": store.queries.list_sources()})


@router.get("/sources/{name}", responses=problem_responses(404))
def get_source(name: Annotated[str, Path(description="Source name.", pattern=NO_NUL)], store: StoreDep) -> SourcePublic:
    """One source by its configured name."""
    found = store.queries.get_source(name)
    if found is None:
        raise ProblemError(404, detail=f"no source named {name!r}")
    return SourcePublic.model_validate(found)
