"""Raw tool records -> WorkItems, through the tool's declarative mapping (mappings/).

The hub's one place that calls the mapping engine: the sync engine, the webhook inbox
worker and `opshub mappings preview` all normalise through here. It also reads the status
history a record carries on its own (`Normaliser.carried_transitions`), so that the sync and
the inbox worker hand it to `apply` with the item, in the item's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.flow import jira
from hub.flow.history import Transition
from hub.schema import WorkItem
from mappings import Mapper, MappingError, mapper_for

CarriedHistory = Callable[[list[WorkItem], Mapping[str, Any] | None, Mapper], list[Transition]]
"""(items as mapped, with their raw records; the webhook delivery that carried them, if any;
the source's mapper) -> the status transitions they state on the tool's clock."""


class Normaliser:
    def __init__(self, tool: str, context: dict[str, Any], overrides: dict[str, Any]) -> None:
        self.tool = tool
        self._mapper: Mapper = mapper_for(tool, context, overrides)

    def map(self, record: dict[str, Any]) -> WorkItem:
        """One record; raises MappingError when it cannot be mapped."""
        return self._mapper.map(record)

    @property
    def mapper(self) -> Mapper:
        """The source's mapper (history readers file a changelog's statuses through it)."""
        return self._mapper

    @property
    def carries_history(self) -> bool:
        """Whether this tool's records or deliveries can carry status history at all (callers
        skip reading a delivery again for tools whose payloads never do)."""
        return self.tool in CARRIED_HISTORY

    def carried_transitions(
        self, items: Iterable[WorkItem], delivery: Mapping[str, Any] | None = None
    ) -> list[Transition]:
        """The status transitions the items' raw records state (a Jira issue pulled with
        `expand=changelog`), and `delivery`'s own (a Jira webhook's top-level `changelog`,
        about the one issue it carries): facts for `apply(..., transitions=...)`.

        Items mapped without their raw record state none. A fact that cannot be read is
        left out rather than failing the page: the hub still observes the status change.
        """
        reader = CARRIED_HISTORY.get(self.tool)
        return [] if reader is None else reader(list(items), delivery, self._mapper)

    def map_many(
        self, records: list[dict[str, Any]], native_id: Callable[[dict[str, Any]], str]
    ) -> tuple[list[WorkItem], list[dict[str, str]]]:
        """Map a page; a record that fails is reported with its error and skipped."""
        items: list[WorkItem] = []
        errors: list[dict[str, str]] = []
        for record in records:
            try:
                items.append(self._mapper.map(record))
            except MappingError as exc:
                errors.append({"native_id": exc.native_id or _safe_id(native_id, record), "error": exc.message})
            except Exception as exc:  # noqa: BLE001 - a bug on one record must not stop the run
                errors.append({"native_id": _safe_id(native_id, record), "error": f"{type(exc).__name__}: {exc}"})
        return items, errors


def _safe_id(native_id: Callable[[dict[str, Any]], str], record: dict[str, Any]) -> str:
    try:
        return native_id(record)
    except Exception:  # noqa: BLE001 - only used to label an error
        return "?"


def _jira_carried(items: list[WorkItem], delivery: Mapping[str, Any] | None, mapper: Mapper) -> list[Transition]:
    """Jira: `changelog.histories` of issues fetched with `expand=changelog` (at most the last
    100 entries each; the backfill pages the rest) and a webhook's `changelog`, timed by the
    issue's `fields.updated` (hub/flow/jira.py says why).
    https://developer.atlassian.com/cloud/jira/platform/webhooks/#example-callback-for-an-issue-related-event

    A changelog names statuses without their category: the statuses of every issue in the batch
    (each with its `statusCategory`) place them, after the mapping's own `status` table; a
    status none of them is in is left out (the backfill reads the site's full status list).
    """
    raws = [item.raw if isinstance(item.raw, Mapping) else {} for item in items]
    # Most records and deliveries state no status change: a webhook's changelog is mostly
    # about other fields (summary, assignee...), and a record fetched without
    # `expand=changelog` has no histories. Their facts are none, so the lookups below (status
    # tables, resolvers, time parsing: ~15 % of a Jira delivery's mapping on the inbox
    # worker, bench/README.md branch i13wmap) are built only when some entry can state one.
    if delivery is not None and not jira.webhook_names_status(delivery):
        delivery = None
    if delivery is None and not any(jira.has_histories(raw) for raw in raws):
        return []
    statuses = [status for raw in raws if isinstance(status := (raw.get("fields") or {}).get("status"), Mapping)]
    by_mapping = jira.status_resolver(mapper, statuses)
    resolution = jira.resolution_resolver(mapper)
    facts: list[Transition] = []
    for item, raw in zip(items, raws, strict=True):
        resolve = jira.own_status_fallback(by_mapping, item)
        facts.extend(jira.transitions_from_issue(item.id, raw, resolve, resolution=resolution).transitions)
        if delivery is not None and _delivers(delivery, item):
            facts.extend(jira.transitions_from_webhook(item.id, delivery, resolve, resolution=resolution).transitions)
    return facts


def _delivers(delivery: Mapping[str, Any], item: WorkItem) -> bool:
    """The delivery is about this item (a webhook's changelog belongs to its own issue only)."""
    issue = delivery.get("issue")
    return isinstance(issue, Mapping) and str(issue.get("id")) == item.native_id


CARRIED_HISTORY: dict[str, CarriedHistory] = {"jira": _jira_carried}
"""Tool -> reader of the history its records and deliveries carry (none for the others:
their webhooks and list endpoints state the current status only)."""
