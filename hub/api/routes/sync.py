"""Sync runs: POST /v1/sources/{name}/sync (admin) and GET /v1/sources/{name}/runs."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query

from hub.api.deps import RuntimeDep, StoreDep, require_scope
from hub.api.models import RunList, RunPublic, SyncStarted
from hub.api.params import NO_NUL
from hub.api.problems import ProblemError, problem_responses
from hub.store.keys import Scope
from hub.store.runs import RunInProgress

router = APIRouter(tags=["sync"])

SourceName = Annotated[str, Path(description="Configured source name.", pattern=NO_NUL, max_length=100)]


@router.post(
    "/sources/{name}/sync",
    status_code=202,
    dependencies=[Depends(require_scope(Scope.admin))],
    responses=problem_responses(404, 409),
)
async def start_sync(
    name: SourceName,
    runtime: RuntimeDep,
    full: Annotated[bool, Query(description="Re-read everything instead of resuming from the cursor.")] = False,
) -> SyncStarted:
    """Start a sync run of one source now; it carries on in the background."""
    if name not in runtime.config.sources:
        raise ProblemError(404, detail=f"no source named {name!r} is configured")
    try:
        summary = await runtime.start_sync(name, full=full)
    except RunInProgress as exc:
        raise ProblemError(409, title="Run in progress", detail=str(exc)) from None
    run = await to_thread.run_sync(runtime.store.runs.get, summary.run_id)
    assert run is not None
    return SyncStarted(run=RunPublic.model_validate(run.as_dict()))


@router.get("/sources/{name}/runs", responses=problem_responses(404))
def list_runs(
    name: SourceName,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Newest runs first.")] = 20,
) -> RunList:
    """The source's newest runs with status, counts, errors and cursor."""
    if store.queries.get_source(name) is None:
        raise ProblemError(404, detail=f"no source named {name!r}")
    runs = store.runs.list(name, limit)
    return RunList(runs=[RunPublic.model_validate(r.as_dict()) for r in runs])
