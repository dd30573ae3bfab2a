"""Jira status history: changelog entries (REST and webhook) -> transitions on Jira's clock.

Where Jira states status changes:

- `GET /rest/api/3/issue/{key}?expand=changelog` -> `changelog.histories[]` and
  `GET /rest/api/3/issue/{key}/changelog` -> `values[]` (paged): each history entry has its
  own `created` time and `items[]`; a status change is the item with `fieldId` (or `field`)
  "status", carrying `from`/`to` status ids and `fromString`/`toString` names.
  https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-changelog-get
- `jira:issue_updated` / `jira:issue_created` webhooks -> a top-level `changelog`
  (`{id, items[]}`, the same items; `field` is "Status" on creation) without a time of its
  own. Its time is the issue's `fields.updated` in the same payload (the change is what
  updated the issue), else the delivery's `timestamp` (epoch ms).
  https://developer.atlassian.com/cloud/jira/platform/webhooks/#example-callback-for-an-issue-related-event

Why `fields.updated` before `timestamp`: Jira stamps the history entry and the issue's
`updated` in the same write, while `timestamp` is when the delivery was built (tens of ms
later). With `updated`, the webhook's fact and the backfilled changelog's fact for one change
have the same time, so `hub.flow.history` sees one change, not two.

Categories come from the caller's `StatusResolver`, normally `status_resolver()` built from
the source's Jira mapper (its `status` and `status_category` tables with the source's
overrides) and the site's statuses (`GET /rest/api/3/status`, or the statuses seen on issues),
because a changelog names statuses but does not say their category. A change to a status
the resolver cannot place is not turned into a transition; its name is reported in
`unresolved`. A resolution that means "not done" (the mapping's `resolution` table, e.g.
Won't Do) set in the same entry as the move to a done status makes it `cancelled`, as the
mapping does for the item itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hub.flow.history import Transition, TransitionSource
from hub.schema import StatusCategory, WorkItem, to_utc
from mappings.engine import Mapper
from mappings.transforms.common import parse_datetime

StatusResolver = Callable[[str | None, str | None], StatusCategory | None]
"""(status name, status id) -> category, or None when it cannot be placed."""
ResolutionResolver = Callable[[str | None], StatusCategory | None]
"""resolution name -> the category it forces (cancelled), or None."""


@dataclass(frozen=True, slots=True)
class ExtractedTransitions:
    transitions: tuple[Transition, ...]
    unresolved: tuple[str, ...] = ()
    """Status names (or ids) of changes left out because no category could be found."""


def status_resolver(mapper: Mapper, statuses: Iterable[Mapping[str, Any]] = ()) -> StatusResolver:
    """A resolver that files status names as the source's mapping does: the `status` name
    table first (it wins over Jira's category, e.g. "Backlog" is in Jira's "To Do"), then the
    status's `statusCategory.key` through the `status_category` table, looked up by id, then by
    name, in `statuses` (Jira status objects: `{id, name, statusCategory: {key}}`)."""
    tables = _tables_of(mapper)
    by_name, by_category_key = tables.status, tables.status_category
    key_by_id: dict[str, str] = {}
    key_by_name: dict[str, str] = {}
    for status in statuses:
        key = (status.get("statusCategory") or {}).get("key")
        if not isinstance(key, str):
            continue
        if status.get("id") is not None:
            key_by_id[str(status["id"])] = key
        if isinstance(status.get("name"), str):
            key_by_name[status["name"]] = key
            key_by_name.setdefault(status["name"].casefold(), key)

    def resolve(name: str | None, status_id: str | None) -> StatusCategory | None:
        named = _lookup(by_name, name)
        if named is not None:
            return StatusCategory(named)
        key = key_by_id.get(status_id or "") or (_lookup(key_by_name, name) if name else None)
        category = _lookup(by_category_key, key)
        return None if category is None else StatusCategory(category)

    return resolve


def resolution_resolver(mapper: Mapper) -> ResolutionResolver:
    """Resolution name -> the category the mapping's `resolution` table forces, if any."""
    table = _tables_of(mapper).resolution

    def resolve(name: str | None) -> StatusCategory | None:
        category = _lookup(table, name)
        return None if category is None else StatusCategory(category)

    return resolve


def transitions_from_histories(
    item_id: str,
    histories: Iterable[Mapping[str, Any]],
    resolve: StatusResolver,
    *,
    resolution: ResolutionResolver | None = None,
) -> ExtractedTransitions:
    """Transitions from REST changelog entries (`changelog.histories` or a changelog page's
    `values`); each entry's `created` is the time."""
    transitions: list[Transition] = []
    unresolved: list[str] = []
    for entry in histories:
        at = parse_datetime(entry.get("created"))
        if at is None:
            continue
        _from_items(item_id, entry, at, TransitionSource.changelog, resolve, resolution, transitions, unresolved)
    return ExtractedTransitions(tuple(transitions), tuple(unresolved))


def transitions_from_issue(
    item_id: str, issue: Mapping[str, Any], resolve: StatusResolver, *, resolution: ResolutionResolver | None = None
) -> ExtractedTransitions:
    """Transitions from an issue fetched with `expand=changelog` (none if it has no changelog).

    Jira embeds at most 100 history entries; when `changelog.total` says there are more, the
    caller pages `GET /rest/api/3/issue/{key}/changelog` and passes the pages' `values` to
    `transitions_from_histories`."""
    changelog = issue.get("changelog") or {}
    return transitions_from_histories(item_id, changelog.get("histories") or (), resolve, resolution=resolution)


def has_histories(issue: Mapping[str, Any]) -> bool:
    """Whether `transitions_from_issue` has entries to read (it finds none otherwise)."""
    return bool((issue.get("changelog") or {}).get("histories"))


def webhook_names_status(payload: Mapping[str, Any]) -> bool:
    """Whether a delivery's `changelog` has a status item: `transitions_from_webhook` finds
    none otherwise (resolution items only qualify a status change)."""
    changelog = payload.get("changelog")
    return isinstance(changelog, Mapping) and any(
        isinstance(item, Mapping) and _is_field(item, "status") for item in changelog.get("items") or ()
    )


def transitions_from_webhook(
    item_id: str, payload: Mapping[str, Any], resolve: StatusResolver, *, resolution: ResolutionResolver | None = None
) -> ExtractedTransitions:
    """Transitions from a webhook delivery's top-level `changelog` (module doc for the time)."""
    changelog = payload.get("changelog")
    if not isinstance(changelog, Mapping):
        return ExtractedTransitions(())
    fields = (payload.get("issue") or {}).get("fields") or {}
    at = parse_datetime(fields.get("updated")) or parse_datetime(payload.get("timestamp"))
    if at is None:
        return ExtractedTransitions(())
    transitions: list[Transition] = []
    unresolved: list[str] = []
    _from_items(item_id, changelog, at, TransitionSource.webhook, resolve, resolution, transitions, unresolved)
    return ExtractedTransitions(tuple(transitions), tuple(unresolved))


def _from_items(
    item_id: str,
    entry: Mapping[str, Any],
    at: Any,
    source: TransitionSource,
    resolve: StatusResolver,
    resolution: ResolutionResolver | None,
    out: list[Transition],
    unresolved: list[str],
) -> None:
    items = [item for item in entry.get("items") or () if isinstance(item, Mapping)]
    res = next((item for item in items if _is_field(item, "resolution")), None)
    for item in items:
        if not _is_field(item, "status"):
            continue
        to_name, to_id = item.get("toString"), _text(item.get("to"))
        to_category = resolve(to_name, to_id)
        if to_category is None:
            unresolved.append(to_name or to_id or "?")
            continue
        from_name, from_id = item.get("fromString"), _text(item.get("from"))
        from_category = resolve(from_name, from_id) if (from_name or from_id) else None
        if resolution is not None and res is not None:
            # Only a done status is overruled: "Done + Won't Do" is cancelled work, as in the mapping.
            to_forced, from_forced = resolution(res.get("toString")), resolution(res.get("fromString"))
            if to_forced is not None and to_category is StatusCategory.done:
                to_category = to_forced
            if from_forced is not None and from_category is StatusCategory.done:
                from_category = from_forced
        out.append(
            Transition(
                item_id=item_id,
                at=to_utc(at),
                to_category=to_category,
                to_name=to_name,
                from_category=from_category,
                from_name=from_name,
                source=source,
                native_id=_text(entry.get("id")),
            )
        )


def _is_field(item: Mapping[str, Any], name: str) -> bool:
    field_id = item.get("fieldId")
    if isinstance(field_id, str):
        return field_id == name
    label = item.get("field")
    return isinstance(label, str) and label.casefold() == name


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class _LookupTables:
    """A mapper's `status`, `status_category` and `resolution` tables, ready for `_lookup`."""

    status: dict[str, Any]
    status_category: dict[str, Any]
    resolution: dict[str, Any]


@functools.lru_cache(maxsize=64)
def _tables_of(mapper: Mapper) -> _LookupTables:
    """Built once per mapper: the inbox worker reads a webhook's changelog per delivery, and
    rebuilding the case-folded tables each time cost more than the lookups. A mapper is built
    for one source's mapping and context and never changes (a new context builds a new one;
    the cache keeps the last 64, by identity)."""
    tables = mapper.spec.tables
    return _LookupTables(
        _casefold_table(tables.get("status", {})),
        _casefold_table(tables.get("status_category", {})),
        _casefold_table(tables.get("resolution", {})),
    )


def _casefold_table(table: Mapping[Any, Any]) -> dict[str, Any]:
    # As the mapping engine does: exact keys win, then case-folded ones.
    out = {str(key).strip().casefold(): value for key, value in table.items()}
    out.update({str(key): value for key, value in table.items()})
    return out


def _lookup(table: Mapping[str, Any], name: str | None) -> Any:
    if not name:
        return None
    hit = table.get(name)
    return hit if hit is not None else table.get(name.strip().casefold())


def own_status_fallback(by_mapping: StatusResolver, item: WorkItem) -> StatusResolver:
    """`by_mapping`, and failing it the item's own mapped status for its own status name: a
    name the mapping's tables cannot place is still known when it is the item's current one."""
    current_name = (item.status.name or "").casefold()

    def resolve(name: str | None, status_id: str | None) -> StatusCategory | None:
        found = by_mapping(name, status_id)
        if found is None and name and name.casefold() == current_name:
            return item.status.category
        return found

    return resolve
