"""One entry point from a tool's raw history to transitions: `history_transitions()`.

The sync engine backfills an item's history with the source's connector
(`Connector.fetch_history`, opt-in per source with `history = true`) and hands the raw
records here with the item as mapped and the source's `Mapper`; each tool's reader in
`hub.flow.<tool>` turns them into `Transition`s on the tool's clock, categories filed by the
source's mapping. Every transition is a `TransitionSource.changelog` fact, so a webhook's or
the hub's own observation of the same change merges with it (`hub.flow.history`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.flow import github, gitlab, jira, linear
from hub.flow.history import Transition
from hub.schema import WorkItem
from mappings.engine import Mapper

HistoryReader = Callable[[WorkItem, list[dict[str, Any]], Mapper], list[Transition]]


def history_transitions(
    tool: str, item: WorkItem, raw_history: list[dict[str, Any]], mapper: Mapper
) -> list[Transition]:
    """The transitions in `raw_history` (what the tool's `fetch_history` returned for `item`).

    Raises `LookupError` for a tool without a reader (its connector has no history either)."""
    reader = READERS.get(tool)
    if reader is None:
        raise LookupError(f"no status history reader for tool {tool!r} (readers: {', '.join(sorted(READERS))})")
    return reader(item, raw_history, mapper)


def _jira(item: WorkItem, raw_history: list[dict[str, Any]], mapper: Mapper) -> list[Transition]:
    """Changelog entries through `hub.flow.jira`. A changelog names statuses without their
    category: the mapping's `status` name table places a name first, then the mapping's
    `status_category` table the `statusCategory.key` of the status objects known here: the
    ones the connector attached to each entry (`_opshub.statuses`, from the site's status
    list) and the issue's own (in the item's raw record). Failing both, the item's mapped
    status places its own name. Changes to statuses still unplaced are left out."""
    statuses: list[Mapping[str, Any]] = []
    fields = item.raw.get("fields") if isinstance(item.raw, Mapping) else None
    if isinstance(fields, Mapping) and isinstance(fields.get("status"), Mapping):
        statuses.append(fields["status"])
    for entry in raw_history:
        extra = entry.get("_opshub")
        attached = extra.get("statuses") if isinstance(extra, Mapping) else None
        statuses.extend(s for s in attached or () if isinstance(s, Mapping))
    resolve = jira.own_status_fallback(jira.status_resolver(mapper, statuses), item)
    extracted = jira.transitions_from_histories(
        item.id, raw_history, resolve, resolution=jira.resolution_resolver(mapper)
    )
    return list(extracted.transitions)


READERS: dict[str, HistoryReader] = {
    "jira": _jira,
    "linear": linear.transitions_from_history,
    "gitlab": gitlab.transitions_from_state_events,
    "github": github.transitions_from_events,
}
"""Tool -> its history reader; a tool whose connector sets `supports_history` has one here."""
