"""The webhook inbox: raw deliveries, committed before the hub answers 202.

Intake appends; workers claim pending rows, apply their events and mark them done. On
PostgreSQL several workers (in several processes) claim disjoint rows with
`FOR UPDATE SKIP LOCKED`; a row claimed by a worker that died is claimable again after
`CLAIM_TIMEOUT`. A delivery that fails is retried with backoff, then parked as `dead`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from hub.db.engine import write_transaction
from hub.db.tables import webhook_inbox
from hub.store.items import utcnow

PENDING, PROCESSING, DONE, IGNORED, FAILED, DEAD = "pending", "processing", "done", "ignored", "failed", "dead"
CLAIM_TIMEOUT = timedelta(minutes=5)
MAX_ATTEMPTS = 8


@dataclass
class InboxDelivery:
    id: int
    source: str
    delivery_id: str
    headers: dict[str, str]
    body: bytes
    attempts: int


class InboxStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, source: str, delivery_id: str, headers: dict[str, str], body: bytes) -> bool:
        """Store a delivery; False when this (source, delivery id) was stored before."""
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        stmt = (
            insert(webhook_inbox)
            .values(
                source=source,
                delivery_id=delivery_id,
                received_at=utcnow(),
                headers=orjson.dumps(headers).decode(),
                body=body,
                status=PENDING,
            )
            .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
        )
        # RETURNING, not rowcount: psycopg reports a row count for a skipped conflicting insert.
        with write_transaction(self.engine) as conn:
            inserted = conn.execute(stmt.returning(webhook_inbox.c.id)).first()
        return inserted is not None

    def claim(self, limit: int = 50) -> list[InboxDelivery]:
        now = utcnow()
        t = webhook_inbox.c
        claimable = or_(
            and_(t.status.in_([PENDING, FAILED]), or_(t.next_attempt_at.is_(None), t.next_attempt_at <= now)),
            and_(t.status == PROCESSING, t.claimed_at < now - CLAIM_TIMEOUT),
        )
        pick = select(t.id).where(claimable).order_by(t.id).limit(limit)
        if self.engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        with write_transaction(self.engine) as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                update(webhook_inbox)
                .where(t.id.in_(ids))
                .values(status=PROCESSING, claimed_at=now, attempts=t.attempts + 1)
            )
            rows = conn.execute(select(webhook_inbox).where(t.id.in_(ids)).order_by(t.id)).all()
        return [
            InboxDelivery(r.id, r.source, r.delivery_id, orjson.loads(r.headers), bytes(r.body), r.attempts)
            for r in rows
        ]

    def finish(self, delivery: InboxDelivery, status: str, error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "error": error, "processed_at": utcnow()}
        if status == FAILED:
            if delivery.attempts >= MAX_ATTEMPTS:
                values["status"] = DEAD
            else:
                values["next_attempt_at"] = utcnow() + timedelta(seconds=min(2**delivery.attempts, 600))
        with write_transaction(self.engine) as conn:
            conn.execute(update(webhook_inbox).where(webhook_inbox.c.id == delivery.id).values(**values))

    def counts(self, source: str | None = None) -> dict[str, int]:
        stmt = select(webhook_inbox.c.status, func.count()).group_by(webhook_inbox.c.status)
        if source:
            stmt = stmt.where(webhook_inbox.c.source == source)
        with self.engine.connect() as conn:
            return {status: int(n) for status, n in conn.execute(stmt).all()}

    def get(self, source: str, delivery_id: str) -> dict[str, Any] | None:
        t = webhook_inbox.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.status, t.error, t.attempts).where(t.source == source, t.delivery_id == delivery_id)
            ).first()
        return None if row is None else {"status": row.status, "error": row.error, "attempts": row.attempts}
