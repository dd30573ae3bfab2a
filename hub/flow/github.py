"""GitHub status history: issue events (closed / reopened) -> transitions on GitHub's clock.

`GET /repos/{owner}/{repo}/issues/{number}/events` lists every event of an issue (labeled,
assigned, referenced ...); the state changes are `closed` and `reopened`, each with its
`created_at` and, since 2022, the `state_reason` (`completed`, `not_planned`, `duplicate`
on a closing; `reopened` on a reopening).
https://docs.github.com/en/rest/issues/events#list-issue-events and
https://docs.github.com/en/rest/using-the-rest-api/issue-event-types#closed

Categories come from the source's mapping (mappings/github.yaml, with overrides), read as it
reads an issue: a closing through the `state_reason` table (completed -> done, not_planned ->
cancelled), else the `state` table (a closing without a reason: done); a reopening through
`open_state` (an open issue without a status label: todo). Names are the ones the mapping
gives the issue (`github_status_name`): `closed: <reason>`, `closed`, `open`. A closing
without a `state_reason` that is the issue's final one takes the item's mapped category
(`hub.flow.changes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.flow.changes import StateChange, chain_transitions, mapping_table, tool_time
from hub.flow.history import Transition
from hub.schema import WorkItem
from mappings.engine import Mapper

CLOSED = "closed"
REOPENED = "reopened"
OPEN = "open"


def transitions_from_events(item: WorkItem, events: Iterable[Mapping[str, Any]], mapper: Mapper) -> list[Transition]:
    """Transitions of one issue from its events (module doc); other events, events without a
    time and closings the mapping cannot file are left out."""
    by_reason = mapping_table(mapper, "state_reason")
    by_state = mapping_table(mapper, "state")
    open_category = mapping_table(mapper, "open_state")
    changes: list[StateChange] = []
    for event in events:
        kind, at = event.get("event"), tool_time(event.get("created_at"))
        if at is None or kind not in (CLOSED, REOPENED):
            continue
        native_id = None if event.get("id") is None else str(event["id"])
        if kind == CLOSED:
            reason = event.get("state_reason")
            reason = reason if isinstance(reason, str) and reason else None
            decided = by_reason(reason) if reason else None
            category = decided or by_state(CLOSED)
            name = f"{CLOSED}: {reason}" if reason else CLOSED
            if category is not None:
                changes.append(StateChange(at, native_id, name, category, True, OPEN, decided=decided is not None))
        else:
            category = open_category(OPEN)
            if category is not None:
                changes.append(StateChange(at, native_id, OPEN, category, False, CLOSED))
    return chain_transitions(item, changes)
