"""Report facts: the few document fields the insight reports need, kept in narrow columns.

Why: the quality, digest and priorities reports (issue 10) must answer in under a second at
100,000 items, and the facts they need (due and release dates, which fields are filled, the
vocabulary fallbacks, the URL and container name, the normalised title and container family) otherwise live only inside the stored JSON
document. Extracting them per request means parsing every document (json_extract on SQLite,
a cast to jsonb on PostgreSQL: most of the 17 s the quality report took there). So
`ItemStore.apply` writes one `item_report_facts` row per item it writes, in the same
transaction as the items row (`write_report_facts`), and the reports join it by primary key.

The row copies the items row's filter columns (source, container, kind, status, priority,
parent, RICE score, updated_at, deleted), so a report over every item reads only this narrow table: on
SQLite a scan of `items` reads every document's pages (about 1 KB an item in the benchmarks), this table
about 180 bytes. The document facts have two derivations, one result: `facts_of_item` (from
the WorkItem, on the write path: no document parse) and `facts_of_document` (from the stored
JSON, for migration 0006's backfill of existing rows). tests/test_report_facts.py checks the
stored row against the items row and its document after upserts and deletions in any order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Column, ColumnElement, Connection, select, update
from sqlalchemy.sql.visitors import replacement_traverse

from hub.db.tables import item_report_facts, items
from hub.schema import RICE_INPUTS, WorkItem
from mappings.engine import FALLBACKS_KEY

if TYPE_CHECKING:
    from hub.store.bulk import _Bulk

FACT_COLUMNS = tuple(c.name for c in item_report_facts.columns)
COPIED_COLUMNS = (
    "source",
    "container_id",
    "container_key",
    "kind",
    "status_category",
    "priority_level",
    "parent_id",
    "rice_score",
    "updated_at",
    "deleted",
)
"""Copied from the items row (the columns the reports filter, group and rank on)."""
assert FACT_COLUMNS[1 : 1 + len(COPIED_COLUMNS)] == COPIED_COLUMNS
_COPIED_AT = tuple(c.name for c in items.columns).index  # position in an items row (apply's column order)

DocumentFacts = tuple[
    str | None, str | None, str | None, str | None, bool, bool, bool, bool, bool, str | None, str, str | None
]
"""The facts taken from the document: url, container_name, due_on, release_on, has_assignee,
has_estimate, has_description, has_iteration, has_rice, fallbacks, title_key, container_family."""

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalised_title(title: str) -> str:
    """Lower case, every run of non-alphanumeric characters one space, trimmed (the quality
    report's duplicate rule). Stored as `title_key`: changing this rule needs a data migration."""
    return _NON_ALNUM.sub(" ", title.casefold()).strip()


def container_family(container: Mapping[str, Any] | None) -> str | None:
    """The container's name (else key, else id) after its last '/', normalised like a title:
    `acme/payments` (GitHub) and `Payments` (Jira) are one family. Stored as `container_family`."""
    if not container:
        return None
    name = container.get("name") or container.get("key") or container.get("id")
    if not name:
        return None
    return normalised_title(str(name).rsplit("/", 1)[-1]) or None


def _fallbacks_json(found: Any) -> str | None:
    """The recorded fallbacks (`[{field, raw}]`, mappings.engine) as JSON text, None when none."""
    if not isinstance(found, list):
        return None
    kept = [entry for entry in found if isinstance(entry, dict)]
    return orjson.dumps(kept).decode() if kept else None


def facts_of_item(item: WorkItem) -> DocumentFacts:
    """The document facts of an item (see the module doc)."""
    container, release, rice = item.container, item.release, item.rice
    return (
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
        normalised_title(item.title),
        container_family({"id": container.id, "key": container.key, "name": container.name}) if container else None,
    )


def facts_of_document(doc: Mapping[str, Any]) -> DocumentFacts:
    """The same facts from a stored document (the JSON `apply` writes to `items.doc`)."""
    container = doc.get("container") or {}
    release = doc.get("release") or {}
    rice = doc.get("rice") or {}
    description = doc.get("description")
    custom = doc.get("custom") or {}
    return (
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
        normalised_title(doc.get("title") or ""),
        container_family(doc.get("container")),
    )


def write_report_facts(
    conn: Connection,
    bulk: _Bulk,
    item_rows: Sequence[Sequence[Any]],
    written: Mapping[str, WorkItem | None],
    tombstoned: Sequence[str],
) -> None:
    """Keep the facts in step with what `apply` just wrote (same transaction, same bulk path):
    `item_rows` are the items rows written (in `items` column order, values as bound) and
    `written` their items by id; `tombstoned` the ids whose row only had `deleted` set."""
    positions = [_COPIED_AT(name) for name in COPIED_COLUMNS]
    rows = [
        (row[0], *(row[i] for i in positions), *facts_of_item(item))
        for row in item_rows
        if (item := written[row[0]]) is not None  # always: apply writes an items row only with its item
    ]
    bulk.insert(conn, item_report_facts, FACT_COLUMNS, rows, conflict=("item_id",))
    if tombstoned:
        conn.execute(
            update(item_report_facts).where(item_report_facts.c.item_id.in_(list(tombstoned))).values(deleted=True)
        )


def conditions_on_facts(conditions: Sequence[ColumnElement[bool]]) -> list[ColumnElement[bool]]:
    """The /v1/items filter terms (hub/store/queries.py, on `items`) as terms on
    `item_report_facts`: each column is replaced by its copy there, so a report reads only the
    narrow rows. A filter on a column the facts do not copy (tool, key, title: `tool` and `q`)
    stays on `items`, joined by id (the report then reads those items rows too)."""
    copied = {"id": item_report_facts.c.item_id, **{name: item_report_facts.c[name] for name in COPIED_COLUMNS}}
    missing: list[str] = []

    def replace(element: Any, **_: Any) -> Any:
        if isinstance(element, Column) and element.table is items:
            if element.name in copied:
                return copied[element.name]
            missing.append(element.name)
        return None

    translated = [replacement_traverse(term, {}, replace) for term in conditions]
    if missing:
        return [item_report_facts.c.item_id.in_(select(items.c.id).where(*conditions))]
    return translated
