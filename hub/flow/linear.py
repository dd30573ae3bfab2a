"""Linear status history: an issue's `history` entries -> transitions on Linear's clock.

`Issue.history` (an `IssueHistoryConnection`) lists `IssueHistory` entries, one per change,
oldest first; a change of workflow state has `fromState` and `toState` (`WorkflowState`:
`id`, `name` and its fixed `type`: triage, backlog, unstarted, started, completed,
canceled) and `createdAt`. Entries about anything else have no `toState` and are skipped.
https://linear.app/developers/graphql (schema: `IssueHistory`, `WorkflowState`)

Categories come from the source's mapping (mappings/linear.yaml, with overrides) in its
order: the `status` table by state name first (a source's "In Review" = in_progress), then
the `state_type` table by type. A state neither places is left out (its name reported by
`unresolved_states`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.flow.changes import mapping_table, tool_time
from hub.flow.history import Transition, TransitionSource
from hub.schema import StatusCategory, WorkItem
from mappings.engine import Mapper

StateResolver = Callable[[Any], StatusCategory | None]


def state_category(mapper: Mapper) -> StateResolver:
    """WorkflowState (`{name, type}`) -> category, as the mapping files an issue's state."""
    by_name = mapping_table(mapper, "status")
    by_type = mapping_table(mapper, "state_type")

    def resolve(state: Any) -> StatusCategory | None:
        if not isinstance(state, Mapping):
            return None
        return by_name(state.get("name")) or by_type(state.get("type"))

    return resolve


def transitions_from_history(item: WorkItem, entries: Iterable[Mapping[str, Any]], mapper: Mapper) -> list[Transition]:
    """Transitions of one issue from its history entries (module doc)."""
    resolve = state_category(mapper)
    out: list[Transition] = []
    for entry in entries:
        to_state, at = entry.get("toState"), tool_time(entry.get("createdAt"))
        to_category = resolve(to_state)
        if at is None or to_category is None or not isinstance(to_state, Mapping):
            continue
        from_state = entry.get("fromState")
        from_name = from_state.get("name") if isinstance(from_state, Mapping) else None
        out.append(
            Transition(
                item_id=item.id,
                at=at,
                to_category=to_category,
                to_name=_text(to_state.get("name")),
                from_category=resolve(from_state),
                from_name=_text(from_name),
                source=TransitionSource.changelog,
                native_id=_text(entry.get("id")),
            )
        )
    return out


def unresolved_states(entries: Iterable[Mapping[str, Any]], mapper: Mapper) -> list[str]:
    """Names of states changed to that the mapping cannot place (for a mapping report)."""
    resolve = state_category(mapper)
    names = {
        str(state.get("name") or state.get("id") or "?")
        for entry in entries
        if isinstance(state := entry.get("toState"), Mapping) and resolve(state) is None
    }
    return sorted(names)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
