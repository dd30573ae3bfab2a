"""Report facts: the few document fields the insight reports need, kept in narrow columns.

Why: the quality, digest and priorities reports (issue 10) must answer in under a second at
100,000 items, and the facts they need (due and release dates, which fields are filled, the
vocabulary fallbacks, the URL and container name) otherwise live only inside the stored JSON
document. Extracting them per request means parsing every document (json_extract on SQLite,
a cast to jsonb on PostgreSQL: most of the 17 s the quality report took there). So
`ItemStore.apply` writes one `item_report_facts` row per item it writes, in the same
transaction as the items row (`write_report_facts`), and the reports join it by primary key.

Two derivations, one result: `facts_of_item` (from the WorkItem, on the write path: no
document parse) and `facts_of_document` (from the stored JSON, for migration 0006's backfill
of existing rows). tests/test_report_facts.py checks they agree with the stored document after
upserts in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection

from hub.db.tables import item_report_facts
from hub.schema import RICE_INPUTS, WorkItem
from mappings.engine import FALLBACKS_KEY

if TYPE_CHECKING:
    from hub.store.items import _Bulk

FACT_COLUMNS = tuple(c.name for c in item_report_facts.columns)
"""(item_id, url, container_name, due_on, release_on, has_assignee, has_estimate,
has_description, has_iteration, has_rice, fallbacks)."""

ReportFacts = tuple[str, str | None, str | None, str | None, str | None, bool, bool, bool, bool, bool, str | None]


def _fallbacks_json(found: Any) -> str | None:
    """The recorded fallbacks (`[{field, raw}]`, mappings.engine) as JSON text, None when none."""
    if not isinstance(found, list):
        return None
    kept = [entry for entry in found if isinstance(entry, dict)]
    return orjson.dumps(kept).decode() if kept else None


def facts_of_item(item: WorkItem) -> ReportFacts:
    """The item's report facts (see the module doc), as an `item_report_facts` row."""
    container, release, rice = item.container, item.release, item.rice
    return (
        item.id,
        item.url,
        container.name if container else None,
        item.due_on.isoformat() if item.due_on else None,
        release.release_on.isoformat() if release and release.release_on else None,
        bool(item.assignees),
        item.estimate is not None,
        bool(item.description and item.description.strip()),
        item.iteration is not None,
        rice is not None and all(getattr(rice, name) is not None for name in RICE_INPUTS),
        _fallbacks_json(item.custom.get(FALLBACKS_KEY)),
    )


def facts_of_document(doc: Mapping[str, Any]) -> ReportFacts:
    """The same facts from a stored document (the JSON `apply` writes to `items.doc`)."""
    container = doc.get("container") or {}
    release = doc.get("release") or {}
    rice = doc.get("rice") or {}
    description = doc.get("description")
    custom = doc.get("custom") or {}
    return (
        doc["id"],
        doc.get("url"),
        container.get("name"),
        doc.get("due_on"),
        release.get("release_on"),
        bool(doc.get("assignees")),
        doc.get("estimate") is not None,
        bool(description and description.strip()),
        doc.get("iteration") is not None,
        bool(rice) and all(rice.get(name) is not None for name in RICE_INPUTS),
        _fallbacks_json(custom.get(FALLBACKS_KEY)) if isinstance(custom, dict) else None,
    )


def write_report_facts(conn: Connection, bulk: _Bulk, written: Iterable[WorkItem]) -> None:
    """Upsert the facts of the items `apply` just wrote (same transaction, same bulk path)."""
    rows = [facts_of_item(item) for item in written]
    bulk.insert(conn, item_report_facts, FACT_COLUMNS, rows, conflict=("item_id",))

