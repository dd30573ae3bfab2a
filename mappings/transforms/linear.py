"""Linear transforms: issue key, people, cycles, priorities, presence flags.

Linear reaches OpsHub in two shapes (see mappings/linear.yaml): the GraphQL `Issue` node the
connector queries, and the `data` object of an `Issue` webhook, which carries flat ids
(`stateId`, `teamId`, `assigneeId`, `creatorId`, `cycleId`, `parentId`, `labelIds`) beside some
nested objects, and in 2021-era deliveries no `identifier` or `url`. Every transform accepts
both and treats an unexpected shape as "no value".
"""

from __future__ import annotations

from typing import Any

from mappings.context import MappingContext
from mappings.transforms import transform


@transform("linear_key")
def linear_key(value: Any, ctx: MappingContext) -> str | None:
    """`identifier` (`ENG-42`), else the team key and the issue number (webhook data)."""
    if not isinstance(value, dict):
        return None
    identifier = value.get("identifier")
    if isinstance(identifier, str) and identifier:
        return identifier
    team, number = value.get("team"), value.get("number")
    if isinstance(team, dict) and team.get("key") and isinstance(number, int | float) and not isinstance(number, bool):
        return f"{team['key']}-{int(number)}"
    return None


def _person(user: Any) -> dict[str, Any] | None:
    if isinstance(user, str) and user:  # a flat id (assigneeId, creatorId)
        return {"native_id": user}
    if not isinstance(user, dict) or not (user.get("id") or user.get("email")):
        return None
    out: dict[str, Any] = {"native_id": user.get("id"), "name": user.get("displayName") or user.get("name")}
    if user.get("email"):
        out["email"] = user["email"]
    return out


@transform("linear_person")
def linear_person(value: Any, ctx: MappingContext) -> dict[str, Any] | None:
    """A Linear user (or a bare user id) as a PersonRef: id, displayName (else name), email."""
    return _person(value)


@transform("linear_people")
def linear_people(value: Any, ctx: MappingContext) -> list[dict[str, Any]] | None:
    """The assignee (Linear issues have one) as a list of PersonRefs."""
    person = _person(value)
    return [person] if person else None


@transform("linear_cycle_name")
def linear_cycle_name(value: Any, ctx: MappingContext) -> str | None:
    """A cycle's name, else `Cycle N` (cycles are often unnamed)."""
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    if isinstance(name, str) and name:
        return name
    number = value.get("number")
    if isinstance(number, int | float) and not isinstance(number, bool):
        return f"Cycle {int(number)}"
    return None


@transform("integer")
def integer(value: Any, ctx: MappingContext) -> int | None:
    """A whole number from a number or numeric text (Linear's priority is a Float: 2.0 -> 2)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


@transform("present")
def present(value: Any, ctx: MappingContext, then: Any = True) -> Any:
    """`then` when the value is there and not empty (a timestamp, an id), else None."""
    if value is None or value == "" or value == [] or value == {} or value is False:
        return None
    return then
