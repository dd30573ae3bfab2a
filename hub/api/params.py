"""Constrained request parameter types, checked at the edge so bad input is a 422, not a 500."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, StringConstraints

from hub.schema import to_utc

# PostgreSQL text cannot hold NUL characters; refuse them here instead of failing in the driver.
NO_NUL = r"^[^\x00]*$"

MAX_FILTER_VALUES = 50
"""Most values one repeated filter (`label=a&label=b ...`) takes: 422 past it, and stated in
the OpenAPI document as maxItems. Each value costs the database work (an index walk, a bind
parameter); without a bound, 5,000 labels kept PostgreSQL busy for minutes after the client
had left. Fifty covers any filter a person builds; a service needing more pages by value."""

FilterText = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=NO_NUL)]
"""A string filter value (source, tool, ids ...)."""

StoredValueText = Annotated[str, StringConstraints(min_length=1, max_length=2_000, pattern=NO_NUL)]
"""A filter value matched against what a tool wrote and the store keeps whole (labels,
containers, parents, people's emails and ids: migration 0025), so longer than FilterText's
320. Bounded still, below the ~2.7 KB past which PostgreSQL cannot index a value, so cannot
have stored it (https://www.postgresql.org/docs/current/btree.html#BTREE-IMPLEMENTATION)."""

SearchText = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]
"""Free text matched inside item keys and titles."""

CursorText = Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=NO_NUL)]
"""An opaque page cursor, exactly as a previous page returned it."""


def _as_utc(value: datetime) -> datetime:
    try:
        return to_utc(value)
    except OverflowError as exc:  # e.g. 9999-12-31T23:00:00-05:00 lies past datetime.max in UTC
        raise ValueError("datetime is out of range once converted to UTC") from exc


UtcDateTime = Annotated[datetime, AfterValidator(_as_utc)]
"""A datetime, normalised to UTC (one without an offset is taken to be UTC)."""


# The repeated /v1/items filters, declared once for every route that takes them (items,
# roadmap, insights): OR within one filter, AND across filters, at most MAX_FILTER_VALUES each.
SourceFilter = Annotated[
    list[FilterText] | None, Query(description="Configured source name.", max_length=MAX_FILTER_VALUES)
]
ToolFilter = Annotated[
    list[FilterText] | None, Query(description="Tool kind, e.g. jira.", max_length=MAX_FILTER_VALUES)
]
ContainerFilter = Annotated[
    list[StoredValueText] | None, Query(description="Container id or key.", max_length=MAX_FILTER_VALUES)
]
LabelFilter = Annotated[
    list[StoredValueText] | None, Query(description="Carries this label.", max_length=MAX_FILTER_VALUES)
]
AssigneeFilter = Annotated[
    list[StoredValueText] | None, Query(description="Hub person id or email.", max_length=MAX_FILTER_VALUES)
]
