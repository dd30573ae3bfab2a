"""Stored mapping contexts: what each source's mapping needs from its tool.

A connector's `mapping_context()` (Jira: the field catalog, `GET /rest/api/3/field`,
https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-fields/) is
a network call. Kept here per source, refreshed by every sync and by the inbox worker once
older than `HUB_CONTEXT_MAX_AGE_SECONDS`, it lets webhooks that carry the whole record be
mapped while the tool is unreachable.

A source that never synced and whose tool is unreachable has no stored context: the worker
maps what it can with the base context (source, tool, base URL) and records those items as
provisional; `remap_provisional` maps them again from their stored raw record once the
context is known, so nothing stays mapped with less than its source's context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from hub.db.engine import write_transaction
from hub.db.tables import items, provisional_items, source_contexts
from hub.schema import WorkItem
from hub.store.clock import utcnow
from hub.store.items import ItemStore
from mappings import MappingError

RecordMapper = Callable[[dict[str, Any]], WorkItem]


@dataclass(frozen=True)
class StoredContext:
    context: dict[str, Any]
    fetched_at: datetime


class ContextStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _insert(self) -> Any:
        return postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert

    def save(self, source: str, context: dict[str, Any], now: datetime | None = None) -> None:
        """Store (replace) a source's context as just fetched from its tool."""
        doc, at = orjson.dumps(context).decode(), now or utcnow()
        stmt = self._insert()(source_contexts).values(source=source, context=doc, fetched_at=at)
        stmt = stmt.on_conflict_do_update(index_elements=["source"], set_={"context": doc, "fetched_at": at})
        with write_transaction(self.engine) as conn:
            conn.execute(stmt)

    def load(self, source: str) -> StoredContext | None:
        t = source_contexts.c
        with self.engine.connect() as conn:
            row = conn.execute(select(t.context, t.fetched_at).where(t.source == source)).first()
        return None if row is None else StoredContext(orjson.loads(row.context), row.fetched_at)

    # ------------------------------------------------------------------ provisional items

    def mark_provisional(self, conn: Connection, source: str, item_ids: Iterable[str]) -> None:
        """Inside the transaction that wrote them: these items were mapped without the context."""
        rows = [{"source": source, "item_id": item_id, "mapped_at": utcnow()} for item_id in dict.fromkeys(item_ids)]
        if rows:
            stmt = self._insert()(provisional_items).on_conflict_do_nothing(index_elements=["source", "item_id"])
            conn.execute(stmt, rows)

    def provisional_ids(self, source: str) -> list[str]:
        t = provisional_items.c
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.item_id).where(t.source == source).order_by(t.item_id)).scalars())

    def remap_provisional(self, item_store: ItemStore, source: str, map_record: RecordMapper) -> int:
        """Map this source's provisional items again from their stored raw records.

        Applied with `force` (same update time, fuller content). The provisional marks are
        cleared in the same transaction; a record that still fails to map keeps its
        provisional version (and is no longer retried: the error is the mapping's, not the
        context's). Returns how many items were mapped again.
        """
        ids = self.provisional_ids(source)
        if not ids:
            return 0
        with self.engine.connect() as conn:
            raws = conn.execute(select(items.c.id, items.c.raw).where(items.c.id.in_(ids))).all()
        remapped: list[WorkItem] = []
        for _item_id, raw in raws:
            if not raw:
                continue
            try:
                remapped.append(map_record(orjson.loads(raw)))
            except MappingError:
                continue
        with write_transaction(self.engine) as conn:
            if remapped:
                item_store.apply(remapped, force=True, conn=conn)
            t = provisional_items.c
            conn.execute(delete(provisional_items).where(t.source == source, t.item_id.in_(ids)))
        return len(remapped)
