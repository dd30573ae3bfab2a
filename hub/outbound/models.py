"""What a subscription is, as the API takes and shows it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints

from hub.schema import ItemKind, PriorityLevel, StatusCategory

# The bounds of the /v1/items filters (hub/api/params.py MAX_FILTER_VALUES, NO_NUL), restated
# here because importing hub.api from the deliverer's modules would be an import cycle.
MAX_FILTER_VALUES = 50
NO_NUL = r"^[^\x00]*$"


class EventType(StrEnum):
    item_created = "item.created"
    item_updated = "item.updated"
    item_deleted = "item.deleted"
    item_status_changed = "item.status_changed"
    sync_failed = "sync.failed"
    source_failing = "source.failing"


ITEM_EVENTS = frozenset(
    {EventType.item_created, EventType.item_updated, EventType.item_deleted, EventType.item_status_changed}
)

_Text = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=NO_NUL)]
_Values = Annotated[list[_Text], Field(max_length=MAX_FILTER_VALUES)]


class SubscriptionFilter(BaseModel):
    """The GET /v1/items filters (OR within one, AND across), matched against the item as it
    now is. Events that are not about items (sync.failed, source.failing) match on `source`."""

    model_config = ConfigDict(extra="forbid")

    source: _Values = []
    tool: _Values = []
    kind: Annotated[list[ItemKind], Field(max_length=MAX_FILTER_VALUES)] = []
    status_category: Annotated[list[StatusCategory], Field(max_length=MAX_FILTER_VALUES)] = []
    priority_level: Annotated[list[PriorityLevel], Field(max_length=MAX_FILTER_VALUES)] = []
    assignee: _Values = []
    label: _Values = []
    container: _Values = []
    parent_id: _Values = []

    def is_empty(self) -> bool:
        return not any(self.model_dump().values())


_Events = Annotated[list[EventType], Field(min_length=1, max_length=len(EventType))]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="Where to POST; https, or http with HUB_EGRESS_ALLOW_HTTP=true.")
    description: Annotated[str, StringConstraints(max_length=500, pattern=NO_NUL)] = ""
    event_types: _Events = Field(description="Event types to receive: " + ", ".join(e.value for e in EventType))
    filter: SubscriptionFilter = SubscriptionFilter()


class SubscriptionStatus(StrEnum):
    active = "active"
    disabled = "disabled"


class SubscriptionPatch(BaseModel):
    """Fields to change; `status: active` re-enables a disabled subscription where it stopped."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl | None = None
    description: Annotated[str, StringConstraints(max_length=500, pattern=NO_NUL)] | None = None
    event_types: _Events | None = None
    filter: SubscriptionFilter | None = None
    status: SubscriptionStatus | None = None


class Subscription(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[EventType]
    filter: SubscriptionFilter
    status: SubscriptionStatus
    disabled_reason: str | None
    cursor: int = Field(description="Last change seq settled (delivered, or not matching the filter).")
    event_cursor: int = Field(description="Last hub event id settled.")
    attempts: int = Field(description="Failed attempts of the message at the head (0 when healthy).")
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SubscriptionWithSecret(Subscription):
    secret: str = Field(description="The signing secret (`whsec_...`): shown only now, store it.")


class Delivery(BaseModel):
    id: int
    msg_id: str
    event_type: str
    seq: int | None
    event_id: int | None
    attempt: int
    status: str
    response_code: int | None
    latency_ms: float
    error: str | None
    at: datetime


class DeliveryPage(BaseModel):
    deliveries: list[Delivery]
    next_before: int | None = Field(description="Pass as `before` for older deliveries; null on the last page.")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_seq: int = Field(ge=1, le=2**63 - 1, description="Deliver again every matching change with seq >= this.")
