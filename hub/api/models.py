"""Response models of the read API: what each endpoint returns, named by role.

The item, person and change models are the shared schema's own models under public
names, so the OpenAPI document describes exactly the documents the store hands out.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hub.schema import Change, ItemKind, Link, Person, Status, WorkItem


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
    error: str | None
    cursor: str | None = Field(description="Where the next incremental run resumes (the tool's opaque cursor).")
    record_errors: list[dict[str, str]] = Field(description="Records that failed to map: native_id and error.")


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
