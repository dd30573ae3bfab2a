"""GET /v1/changes: the change log, for clients that follow the hub incrementally."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.api.deps import PageLimit, StoreDep
from hub.api.models import ChangePage

router = APIRouter(tags=["changes"])

# seq is a BIGINT; a larger `after` would fail in the driver instead of meaning "nothing yet".
_MAX_SEQ = 2**63 - 1


@router.get("/changes")
def list_changes(
    store: StoreDep,
    limit: PageLimit,
    after: Annotated[int, Query(ge=0, le=_MAX_SEQ, description="Only changes with a larger seq.")] = 0,
) -> ChangePage:
    """Changes with seq > `after`, oldest first. Seqs are gap-free, so none is ever skipped."""
    found = store.queries.list_changes(after=after, limit=limit)
    next_after = found[-1]["seq"] if found else after
    return ChangePage.model_validate({"changes": found, "next_after": next_after})
