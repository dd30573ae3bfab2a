"""Response models of the read API: what each endpoint returns, named by role.

The item, person and change models are the shared schema's own models under public
names, so the OpenAPI document describes exactly the documents the store hands out.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from hub.flow.history import StartFact, TransitionSource
from hub.schema import Change, ItemKind, Link, Person, Status, StatusCategory, WorkItem


class ItemPublic(WorkItem):
    """A work item in the shared schema v1 (`raw` only with `include=raw`)."""


class ItemPage(BaseModel):
    """One page of items; pass `next_cursor` as `cursor` to get the next one."""

    items: list[ItemPublic]
    next_cursor: str | None = Field(description="Cursor of the next page; null on the last page.")


class PersonPublic(Person):
    """One person, merged across tools by email, with their per-tool identities."""


class PersonPage(BaseModel):
    """One page of people, ordered by id; pass `next_cursor` as `cursor` for the next one."""

    people: list[PersonPublic]
    next_cursor: str | None = Field(description="Cursor of the next page; null on the last page.")


class SourcePublic(BaseModel):
    """A configured source (one tool account) and how many live items the hub holds for it."""

    name: str
    tool: str
    status: str
    status_message: str | None
    item_count: int = Field(ge=0, description="Items of this source that are not tombstoned.")
    created_at: AwareDatetime
    updated_at: AwareDatetime


class SourceList(BaseModel):
    """Every configured source, ordered by name."""

    sources: list[SourcePublic]


class ChangePublic(Change):
    """One change-log entry."""


class ChangePage(BaseModel):
    """Changes after a sequence number, oldest first."""

    changes: list[ChangePublic]
    next_after: int = Field(
        ge=0, description="Pass as `after` to poll for what comes next (the last seq seen, or the `after` given)."
    )


class HealthStatus(BaseModel):
    """The process (healthz) or the process and its database (readyz) are fine."""

    status: str = Field(examples=["ok"])


class ProblemFieldError(BaseModel):
    """One invalid request parameter."""

    model_config = ConfigDict(populate_by_name=True)

    in_: str = Field(alias="in", description="Where the parameter is: query, path or header.")
    name: str = Field(description="The parameter's name.")
    detail: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An error as RFC 9457 `application/problem+json`."""

    type: str = Field(default="about:blank", description="URI of the problem type.")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(ge=400, le=599, description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong this time.")
    errors: list[ProblemFieldError] | None = Field(default=None, description="Each invalid parameter (422 only).")


class RunPublic(BaseModel):
    """One sync run of a source."""

    id: str
    source: str
    mode: str = Field(description="full or incremental")
    status: str = Field(description="running, succeeded, failed or abandoned")
    started_at: AwareDatetime
    finished_at: AwareDatetime | None
    counts: dict[str, float] = Field(
        description="fetched, changed, unchanged, deleted, failed_records, pages, requests, retries, seconds"
    )
    history: RunHistoryCounts | None = Field(
        default=None, description="What the run's status history backfill did (sources with `history = true`)."
    )
    error: str | None
    cursor: str | None = Field(description="Where the next incremental run resumes (the tool's opaque cursor).")
    record_errors: list[dict[str, str]] = Field(description="Records that failed to map: native_id and error.")

    @model_validator(mode="before")
    @classmethod
    def _history_apart(cls, data: Any) -> Any:
        # The store keeps the backfill's figures inside the run's counts (hub/sync.py
        # RunSummary.counts); here they are a field of their own, so `counts` stays flat.
        if isinstance(data, dict) and isinstance(data.get("counts"), dict) and "history" in data["counts"]:
            counts = dict(data["counts"])
            data = {**data, "counts": counts, "history": counts.pop("history")}
        return data


class RunHistoryCounts(BaseModel):
    items: int = Field(description="Items whose history was read and stored.")
    transitions: int = Field(description="Transitions read from those histories.")
    skipped: int = Field(description="Changed items left without backfill: the run's request budget was spent.")
    failed: int = Field(description="Items whose history the tool did not give (the item is stored regardless).")


class RunList(BaseModel):
    runs: list[RunPublic]


class SyncStarted(BaseModel):
    run: RunPublic


class WebhookAccepted(BaseModel):
    delivery_id: str = Field(description="The tool's delivery id (or a hash of the body when it sends none).")
    duplicate: bool = Field(description="True when this delivery was received before; it has no second effect.")


class ItemSummary(BaseModel):
    """The few fields of an item that rollups and trees show."""

    id: str
    source: str
    tool: str
    key: str | None
    title: str
    kind: ItemKind
    status: Status
    url: str | None
    updated_at: AwareDatetime


class RoadmapProgress(BaseModel):
    by_count: float | None = Field(description="Done / (all - cancelled) delivery items; null when there are none.")
    by_estimate: float | None = Field(description="Estimate of done items / estimate of all non-cancelled ones.")
    estimate_done: float
    estimate_total: float
    estimated_items: int = Field(description="Delivery items that carry an estimate.")


class RoadmapEntry(BaseModel):
    item: ItemSummary
    delivery_total: int = Field(description="Delivery items covered (children and implementers, any depth).")
    by_status: dict[str, int] = Field(description="Delivery items per status category.")
    progress: RoadmapProgress
    blocked: list[str] = Field(description="Open delivery items blocked by an open (or unknown) item.")
    newest_activity: AwareDatetime = Field(description="Latest tool update of the item or anything it covers.")
    delivery_items: list[ItemSummary]


class UncoveredItems(BaseModel):
    count: int = Field(description="Delivery items no roadmap item covers.")
    items: list[ItemSummary] = Field(description="The most recently updated of them.")


class Roadmap(BaseModel):
    roadmap: list[RoadmapEntry]
    uncovered: UncoveredItems


class TreeNode(ItemSummary):
    via: str | None = Field(description="How the parent covers it: parent, implemented_by or implements.")
    links: list[Link]
    children: list[TreeNode]


class HistoryTransition(BaseModel):
    """The item entered `to_*` at `at` (the tool's clock, never the hub's sync time)."""

    at: AwareDatetime
    from_category: StatusCategory | None = Field(description="Null where the source does not say.")
    from_name: str | None
    to_category: StatusCategory
    to_name: str | None
    source: TransitionSource = Field(
        description=(
            "changelog: the tool's own history; webhook: a delivery's changelog; observed: the hub saw "
            "the status differ between two versions (at = the newer version's update time, so it may be "
            "later than the change); first_seen: the hub saw the item in this status at `at`, "
            "not when it got there."
        )
    )


class ItemHistoryPublic(BaseModel):
    """An item's canonical status history and the facts flow metrics read from it."""

    item_id: str
    start: StartFact = Field(
        description=(
            "seen: started_at is the first entry into in_progress; before_history: the history begins "
            "with the item already in progress or done, so its start is unknown (never guessed); "
            "not_started: it never entered in_progress in its known history."
        )
    )
    started_at: AwareDatetime | None
    done_at: AwareDatetime | None = Field(
        description="Final completion: the last entry into done, if the item is done now and that entry was seen."
    )
    reopened: bool = Field(description="It left done for backlog, todo or in_progress at least once.")
    transitions: list[HistoryTransition] = Field(description="Oldest first; duplicates and no-op repeats removed.")
