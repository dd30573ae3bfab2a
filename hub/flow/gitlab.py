"""GitLab status history: resource state events -> transitions on GitLab's clock.

`GET /projects/:id/issues/:iid/resource_state_events` lists an issue's state changes:
`{id, state, created_at, resource_type: "Issue", resource_id, user}` with `state` one of
`opened`, `closed`, `reopened` (merge requests also have `merged`, never on an issue).
https://docs.gitlab.com/api/resource_state_events/#list-project-issue-state-events

Categories come from the source's mapping (mappings/gitlab.yaml, with overrides): `closed`
through the `state` table (done), `reopened`/`opened` through `open_state` (what the mapping
gives an open issue without a workflow label: todo). The issue's name after the change is
the REST `state` the mapping names it by: `closed`, or `opened` after a reopening. The final
closing of an issue that is still closed takes the item's mapped category (a `closed_label`
such as "won't do" makes it cancelled); see `hub.flow.changes`. Labels changed between state
events (`workflow::in progress`) are resource *label* events, not read here: the hub's own
observations of the item add those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.flow.changes import StateChange, chain_transitions, mapping_table, tool_time
from hub.flow.history import Transition
from hub.schema import WorkItem
from mappings.engine import Mapper

CLOSED = "closed"
OPENED = "opened"
REOPENED = "reopened"
OPENING_STATES = frozenset({OPENED, REOPENED})


def transitions_from_state_events(
    item: WorkItem, events: Iterable[Mapping[str, Any]], mapper: Mapper
) -> list[Transition]:
    """Transitions of one issue from its resource state events (module doc); events with an
    unknown state, no time or a category the mapping cannot give are left out."""
    closed_category = mapping_table(mapper, "state")
    open_category = mapping_table(mapper, "open_state")
    changes: list[StateChange] = []
    for event in events:
        state, at = event.get("state"), tool_time(event.get("created_at"))
        if at is None or not isinstance(state, str):
            continue
        native_id = None if event.get("id") is None else str(event["id"])
        left: str | None
        if state == CLOSED:
            category = closed_category(CLOSED)
            name, left = CLOSED, OPENED
        elif state in OPENING_STATES:
            category = open_category(state) or open_category(OPENED)
            name, left = OPENED, (CLOSED if state == REOPENED else None)
        else:
            continue
        if category is None:
            continue
        changes.append(StateChange(at, native_id, name, category, closing=state == CLOSED, left=left))
    return chain_transitions(item, changes)
