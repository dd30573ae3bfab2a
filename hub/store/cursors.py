"""Sync cursors (`cursors` table): saved in the same transaction as the page they follow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from hub.db.tables import cursors
from hub.store.bulk import dialect_insert
from hub.store.clock import utcnow


@dataclass(frozen=True)
class Checkpoint:
    """A sync cursor to save in the same transaction as the page it belongs to."""

    source: str
    stream: str
    value: str


def save_cursor(conn: Connection, checkpoint: Checkpoint, now: datetime | None = None) -> None:
    stmt = dialect_insert(conn.dialect.name, cursors).values(
        source=checkpoint.source, stream=checkpoint.stream, value=checkpoint.value, updated_at=now or utcnow()
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["source", "stream"],
            set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
        )
    )


def load_cursor(engine: Engine, source: str, stream: str) -> str | None:
    with engine.connect() as conn:
        value: str | None = conn.execute(
            select(cursors.c.value).where(cursors.c.source == source, cursors.c.stream == stream)
        ).scalar_one_or_none()
    return value
