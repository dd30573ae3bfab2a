"""The webhook inbox for operators (admin keys): list deliveries, replay dead ones.

GET /v1/inbox lists deliveries (e.g. `?status=dead`) with their last error; POST
/v1/inbox/{id}/replay and POST /v1/inbox/dead/replay queue them again with fresh attempts.
The CLI twin is `opshub inbox list|replay`. Bodies and headers are never returned.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from hub.api.deps import PageLimit, StoreDep, require_scope
from hub.api.params import FilterText
from hub.api.problems import ProblemError, problem_responses
from hub.store.inbox import InboxEntry, InboxStore, ReplayRefused
from hub.store.keys import Scope

router = APIRouter(tags=["inbox"], dependencies=[Depends(require_scope(Scope.admin))], responses=problem_responses(403))

InboxStatus = Literal["pending", "processing", "done", "ignored", "failed", "dead"]  # hub.store.inbox.STATUSES
InboxId = Annotated[int, Path(ge=1, le=2**62, description="The delivery's inbox id (as listed).")]


class InboxDeliveryPublic(BaseModel):
    """One stored webhook delivery and where it stands."""

    id: int = Field(description="Inbox id: give it to replay.")
    source: str
    delivery_id: str = Field(description="The tool's delivery id.")
    status: str = Field(description="pending, processing, done, ignored, failed (will retry) or dead (gave up).")
    attempts: int
    error: str | None = Field(description="Last error (for pending: what it waits for).")
    received_at: datetime
    next_attempt_at: datetime | None
    processed_at: datetime | None


class InboxList(BaseModel):
    deliveries: list[InboxDeliveryPublic]
    next_after: int | None = Field(description="Pass as `after` for the next page; null on the last page.")


class InboxReplayed(BaseModel):
    replayed: int = Field(ge=0, description="How many deliveries were queued again.")


def _public(entry: InboxEntry) -> InboxDeliveryPublic:
    return InboxDeliveryPublic.model_validate(entry, from_attributes=True)


@router.get("/inbox", responses=problem_responses(422))
def list_inbox(
    store: StoreDep,
    limit: PageLimit,
    status: Annotated[InboxStatus | None, Query(description="Only deliveries in this state.")] = None,
    source: Annotated[FilterText | None, Query(description="Only this source's deliveries.")] = None,
    after: Annotated[int, Query(ge=0, le=2**62, description="Inbox id to list after (paging).")] = 0,
) -> InboxList:
    """Stored deliveries in arrival order."""
    entries = InboxStore(store.engine).entries(status=status, source=source, after_id=after, limit=limit)
    next_after = entries[-1].id if len(entries) == limit else None
    return InboxList(deliveries=[_public(e) for e in entries], next_after=next_after)


@router.post("/inbox/dead/replay", responses=problem_responses(422))
async def replay_dead(
    store: StoreDep,
    source: Annotated[FilterText | None, Query(description="Only this source's dead deliveries.")] = None,
) -> InboxReplayed:
    """Queue every dead delivery (of one source) again with fresh attempts."""
    replayed = await to_thread.run_sync(InboxStore(store.engine).replay_dead, source)
    return InboxReplayed(replayed=replayed)


@router.post("/inbox/{inbox_id}/replay", responses=problem_responses(404, 409, 422))
async def replay_delivery(inbox_id: InboxId, store: StoreDep) -> InboxDeliveryPublic:
    """Queue one delivery again with fresh attempts (409 while it is being processed)."""
    inbox = InboxStore(store.engine)
    try:
        entry = await to_thread.run_sync(inbox.replay, inbox_id)
    except ReplayRefused as exc:
        exists = await to_thread.run_sync(inbox.entry, inbox_id)
        raise ProblemError(404 if exists is None else 409, detail=str(exc)) from None
    return _public(entry)
