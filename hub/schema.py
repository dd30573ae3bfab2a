"""OpsHub shared schema v1: the normalised shape every tool's records are mapped into.

The schema is the product (see DESIGN.md): besides status and priority it normalises
estimates, iterations, releases, RICE inputs and the roadmap chain (parent / links), which
is what ProductOps needs and what generic unified APIs leave out.

Times are always the tool's own (never the hub's sync time) and always UTC-aware; a naive
datetime is taken to be UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    computed_field,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = "1"


class ItemKind(StrEnum):
    initiative = "initiative"
    epic = "epic"
    feature = "feature"
    story = "story"
    task = "task"
    bug = "bug"
    subtask = "subtask"
    idea = "idea"
    other = "other"


class StatusCategory(StrEnum):
    backlog = "backlog"
    todo = "todo"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


class PriorityLevel(StrEnum):
    urgent = "urgent"
    high = "high"
    medium = "medium"
    low = "low"
    none = "none"


class LinkType(StrEnum):
    blocks = "blocks"
    blocked_by = "blocked_by"
    relates = "relates"
    duplicates = "duplicates"
    duplicated_by = "duplicated_by"
    implements = "implements"
    implemented_by = "implemented_by"


class EstimateUnit(StrEnum):
    points = "points"
    hours = "hours"
    days = "days"


class ChangeOp(StrEnum):
    upsert = "upsert"
    delete = "delete"


def to_utc(value: datetime) -> datetime:
    """Normalise a datetime to aware UTC (naive values are taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, use_enum_values=False)


class Status(_Model):
    category: StatusCategory
    name: str | None = Field(default=None, description="The tool's own status name.")


class Priority(_Model):
    level: PriorityLevel = PriorityLevel.none
    name: str | None = Field(default=None, description="The tool's own priority name.")


class PersonRef(_Model):
    """A person as one tool names them. The store fills `id` with the hub person id."""

    id: str | None = Field(default=None, description="Hub person id (set by the hub).")
    native_id: str | None = Field(default=None, description="The tool's id for this person.")
    name: str | None = None
    email: str | None = None

    @model_validator(mode="after")
    def _identified(self) -> PersonRef:
        # The email lower-cased here rather than in a field validator of its own: one Python
        # call per person instead of two (each costs a trip out of pydantic-core; a Jira issue
        # validates two or more people). https://docs.pydantic.dev/latest/concepts/performance/
        email = self.email
        if email is not None:
            lowered = email.strip().lower() if email else None
            if lowered != email:
                self.email = lowered
        if not (self.id or self.native_id or self.email):
            raise ValueError("a person needs at least one of id, native_id or email")
        return self


class Container(_Model):
    """Project / repository / team / product the item lives in."""

    id: str
    key: str | None = None
    name: str | None = None


class Link(_Model):
    type: LinkType
    target_id: str | None = Field(default=None, description="Hub id of the linked item.")
    url: str | None = Field(default=None, description="Where the target is not (yet) in the hub.")

    @model_validator(mode="after")
    def _has_target(self) -> Link:
        if not (self.target_id or self.url):
            raise ValueError("a link needs target_id or url")
        return self


class Estimate(_Model):
    value: NonNegativeFloat
    unit: EstimateUnit = EstimateUnit.points


class Iteration(_Model):
    """Sprint (Jira), cycle (Linear), milestone/iteration (GitHub, GitLab)."""

    id: str
    name: str | None = None
    starts_on: date | None = None
    ends_on: date | None = None


class Release(_Model):
    """Fix version (Jira), release (Productboard, Aha!), version (Redmine)."""

    id: str
    name: str | None = None
    release_on: date | None = None


RICE_INPUTS = ("reach", "impact", "confidence", "effort")


class Rice(_Model):
    """RICE inputs as the tool holds them; the score is always computed, never stored."""

    reach: NonNegativeFloat | None = None
    impact: NonNegativeFloat | None = None
    confidence: NonNegativeFloat | None = None
    effort: NonNegativeFloat | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def missing(self) -> list[str]:
        """Inputs the score needs that this item lacks (effort 0 counts as missing)."""
        gaps = [name for name in RICE_INPUTS if getattr(self, name) is None]
        if self.effort == 0:
            gaps.append("effort")
        return gaps

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> float | None:
        """reach x impact x confidence / effort, or None while an input is missing."""
        reach, impact, confidence, effort = self.reach, self.impact, self.confidence, self.effort
        if reach is None or impact is None or confidence is None or not effort:
            return None
        return reach * impact * confidence / effort

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        # Stored/serialised items carry the computed fields; accept them back on input.
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k not in ("score", "missing")}
        return data


class WorkItem(_Model):
    """One issue, ticket, epic, feature, idea ... in the shared schema v1."""

    id: str = Field(default="", description='Hub id: "{source}:{native_id}".')
    source: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    tool: str = Field(min_length=1, max_length=50)
    native_id: str = Field(min_length=1, max_length=200)
    key: str | None = None
    url: str | None = None
    kind: ItemKind = ItemKind.other
    kind_raw: str | None = None
    title: str = ""
    description: str | None = Field(default=None, description="Markdown.")
    status: Status
    priority: Priority = Field(default_factory=Priority)
    assignees: list[PersonRef] = Field(default_factory=list)
    reporter: PersonRef | None = None
    labels: list[str] = Field(default_factory=list)
    container: Container | None = None
    parent_id: str | None = None
    links: list[Link] = Field(default_factory=list)
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime
    completed_at: AwareDatetime | None = None
    start_on: date | None = None
    due_on: date | None = None
    estimate: Estimate | None = None
    iteration: Iteration | None = None
    release: Release | None = None
    rice: Rice | None = None
    custom: dict[str, Any] = Field(default_factory=dict)
    raw: dict[str, Any] | None = Field(default=None, description="Only with include=raw.")
    deleted: bool = False
    version: int | None = Field(default=None, description="Hub change number (set by the hub).")
    synced_at: AwareDatetime | None = Field(default=None, description="When the hub wrote it.")

    @field_validator("created_at", "updated_at", "completed_at", "synced_at", mode="before")
    @classmethod
    def _assume_utc(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if isinstance(value, datetime):
            return to_utc(value)
        return value

    @model_validator(mode="after")
    def _hub_id(self) -> WorkItem:
        # Labels are made unique here rather than in a field validator of their own: that could
        # never fail (the list is already `list[str]`), so no error moves, and it saves a trip
        # out of pydantic-core per item (bench/README.md, "i13norm").
        labels = self.labels
        if len(labels) > 1 and len(set(labels)) != len(labels):
            self.labels = list(dict.fromkeys(labels))
        expected = f"{self.source}:{self.native_id}"
        if not self.id:
            self.id = expected
        elif self.id != expected:
            raise ValueError(f"id must be {expected!r} (source:native_id), got {self.id!r}")
        return self


class ItemDeletion(_Model):
    """A tool said this item is gone. Applied as a tombstone, never a hard delete."""

    source: str
    native_id: str
    deleted_at: AwareDatetime | None = Field(
        default=None, description="The tool's deletion time, if it says; else the hub's now."
    )
    reported: bool = Field(
        default=True,
        description="The tool reported the deletion (a webhook's delete event). False when the hub only "
        "failed to find the record (a refetch answered 'not found'): that never tombstones an id the hub "
        "has not stored, since a record can be briefly invisible (replication, permissions) and a "
        "tombstone would hide it from every later sync.",
    )

    @property
    def id(self) -> str:
        return f"{self.source}:{self.native_id}"


class Identity(_Model):
    source: str
    native_id: str | None = None
    name: str | None = None
    email: str | None = None


class Person(_Model):
    """One human, merged across tools by email."""

    id: str
    name: str | None = None
    email: str | None = None
    identities: list[Identity] = Field(default_factory=list)


class Change(_Model):
    """One entry of the change log: written in the same transaction as the item."""

    seq: int
    item_id: str
    op: ChangeOp
    fields: list[str]
    at: AwareDatetime
