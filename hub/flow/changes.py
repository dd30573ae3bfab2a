"""Parts the per-tool history readers share: mapping tables as lookups, and open/closed
state changes chained into transitions.

GitLab's resource state events and GitHub's issue events say only that an issue was closed
or reopened, and when. `chain_transitions` turns such changes into `Transition`s on the
tool's clock: sorted by time (ties by the tool's event id), each change's `from` is the
change before it, and the first change's `from` names the state it left but not its category
(before the first change the issue's labels, which the mapping reads for an open issue's
category, are unknown: stated as unknown, never guessed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hub.flow.history import Transition, TransitionSource
from hub.schema import StatusCategory, WorkItem, to_utc
from mappings.engine import Mapper
from mappings.transforms.common import parse_datetime

TableLookup = Callable[[Any], StatusCategory | None]
"""A value (a state name, a state type ...) -> the category a mapping table files it under."""


def mapping_table(mapper: Mapper, name: str) -> TableLookup:
    """Look values up in the source's mapping table `name` (the tool's spec with the source's
    overrides) as the mapping engine does: the exact key first, then the case-folded one."""
    raw: Mapping[Any, Any] = mapper.spec.tables.get(name, {})
    table = {str(key).strip().casefold(): value for key, value in raw.items()}
    table.update({str(key): value for key, value in raw.items()})

    def lookup(value: Any) -> StatusCategory | None:
        if value is None or value == "":
            return None
        text = str(value)
        hit = table.get(text)
        if hit is None:
            hit = table.get(text.strip().casefold())
        return None if hit is None else StatusCategory(hit)

    return lookup


def tool_time(value: Any) -> datetime | None:
    """A tool's timestamp as aware UTC, or None when absent or unreadable."""
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    return None if parsed is None else to_utc(parsed)


@dataclass(frozen=True, slots=True)
class StateChange:
    """The tool says the issue entered state `name` (category `category`) at `at`.

    `closing`: the change closes the issue. `decided`: the tool's event itself says which
    category (GitHub's `state_reason`); when not, the final closing of an issue that is still
    closed takes the category the mapping gives the item now (`closed_label`, `state_reason`
    on the issue), which is what that closing made it."""

    at: datetime
    native_id: str | None
    name: str
    category: StatusCategory
    closing: bool
    left: str | None
    """The state the change left (`opened`/`open` for a closing, `closed` for a reopening;
    None for GitLab's `opened` at creation, which left no state)."""
    decided: bool = False


def chain_transitions(item: WorkItem, changes: Iterable[StateChange]) -> list[Transition]:
    """Transitions of one issue from its open/closed state changes (module doc); repeated
    changes count once."""
    # A change read twice (a page repeated, two backfills in one list) is one change: chained
    # as two, the second would claim the issue left the state it entered.
    ordered = sorted(set(changes), key=lambda change: (change.at, _event_order(change.native_id), change.name))
    out: list[Transition] = []
    for position, change in enumerate(ordered):
        category = change.category
        final = position == len(ordered) - 1
        if final and change.closing and not change.decided and item.status.category in _CLOSED:
            category = item.status.category
        before = out[-1] if out else None
        out.append(
            Transition(
                item_id=item.id,
                at=change.at,
                to_category=category,
                to_name=change.name,
                from_category=None if before is None else before.to_category,
                from_name=change.left if before is None else before.to_name,
                source=TransitionSource.changelog,
                native_id=change.native_id,
            )
        )
    return out


_CLOSED = frozenset({StatusCategory.done, StatusCategory.cancelled})


def _event_order(native_id: str | None) -> tuple[int, str]:
    """Numeric ids in number order (GitHub and GitLab ids grow with time), others as text."""
    if native_id is not None and native_id.isdigit():
        return (0, native_id.zfill(20))
    return (1, native_id or "")
