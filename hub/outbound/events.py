"""Hub events that are not item changes: `sync.failed`, `source.failing`, `subscription.disabled`.

They go to `hub_events`, which subscriptions follow with their own cursor (`event_cursor`).
Each id is allocated while holding the change counter's row lock (the lock `store.apply`
takes), so, as with change seqs, commit order is id order: a deliverer that has seen id N
never later finds a new event below N. Events are rare, so sharing that lock costs nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

from hub.db.engine import write_transaction
from hub.db.tables import change_counter, hub_events
from hub.store.items import utcnow

SYNC_FAILED = "sync.failed"
SOURCE_FAILING = "source.failing"
SUBSCRIPTION_DISABLED = "subscription.disabled"


def record_event(
    engine: Engine,
    type_: str,
    data: dict[str, Any],
    *,
    source: str | None = None,
    subject: str | None = None,
    conn: Connection | None = None,
    at: datetime | None = None,
) -> None:
    if conn is None:
        with write_transaction(engine) as own:
            record_event(engine, type_, data, source=source, subject=subject, conn=own, at=at)
        return
    lock = select(change_counter.c.last_seq).where(change_counter.c.id == 1)
    if engine.dialect.name == "postgresql":
        lock = lock.with_for_update()
    conn.execute(lock)  # SQLite: BEGIN IMMEDIATE already serialises writers
    conn.execute(
        hub_events.insert().values(
            type=type_, source=source, subject=subject, data=orjson.dumps(data).decode(), at=at or utcnow()
        )
    )
