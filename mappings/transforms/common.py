"""Tool-neutral transforms: scalars, dates and times, ids, lists of names."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform

# A tuple, not `int | float`: that expression builds a `types.UnionType` at every call, and
# isinstance() checks a tuple faster (~1k instructions per `number` call; bench/README.md
# "Normalisation, round 4"). The same types either way.
_NUMBERS = (int, float)


@transform("string", text_unchanged=True)
def to_string(value: Any, ctx: MappingContext) -> str | None:
    """Any scalar as text; an option object (`{"value": ...}` / `{"name": ...}`) as its label."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        label = value.get("value", value.get("name"))
        return None if label is None else str(label)
    if isinstance(value, list):
        return None
    return str(value)


@transform("number")
def to_number(value: Any, ctx: MappingContext) -> float | None:
    """A number from a number, numeric text or a select option whose label is numeric."""
    if isinstance(value, bool):
        return None
    if isinstance(value, _NUMBERS):
        return float(value)
    if isinstance(value, dict):
        value = value.get("value", value.get("name"))
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


@transform("datetime")
def parse_datetime(value: Any, ctx: MappingContext | None = None) -> datetime | None:
    """Timestamp with zone: ISO 8601 text (`2019-02-15T19:01:52.971-0800`, `...Z`) or epoch
    milliseconds (as Jira sends in places), aware (naive text is taken as UTC).

    Also the `datetime` transform itself (`ctx` unused), so that a spec's datetime costs one call."""
    if isinstance(value, str):
        if not value:
            return None
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
    if isinstance(value, _NUMBERS) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, datetime):
        return value
    return None


@transform("date")
def to_date(value: Any, ctx: MappingContext) -> date | None:
    """A calendar date from `YYYY-MM-DD` or from a timestamp (its date in its own zone)."""
    if isinstance(value, str) and len(value) == 10:
        return date.fromisoformat(value)
    moment = parse_datetime(value)
    return None if moment is None else moment.date()


@transform("hub_id")
def hub_id(value: Any, ctx: MappingContext) -> str | None:
    """A native id as the hub id of an item of the same source: `{source}:{id}`."""
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    return f"{ctx.source}:{value}"


@transform("names")
def names(value: Any, ctx: MappingContext, attribute: str = "name") -> list[str] | None:
    """A list of objects (components, versions ...) as the list of their names."""
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        name = item.get(attribute) if isinstance(item, dict) else item
        if name is not None and name != "":
            out.append(str(name))
    return out or None


@transform("seconds_to_hours")
def seconds_to_hours(value: Any, ctx: MappingContext) -> float | None:
    """Seconds (Jira's time tracking) as hours."""
    if isinstance(value, _NUMBERS) and not isinstance(value, bool):
        return value / 3600
    return None


@transform("truthy")
def truthy(value: Any, ctx: MappingContext, then: Any = True) -> Any:
    """`then` when the value is true (e.g. an issue type's `subtask` flag), else None."""
    return then if value is True else None
