"""The webhook inbox: raw deliveries, committed before the hub answers 202.

Intake appends; workers claim pending rows, apply their events and mark them done. On
PostgreSQL several workers (in several processes) claim disjoint rows with
`FOR UPDATE SKIP LOCKED`.

Claims are short and renewed: a claim carries a token and lapses `claim_ttl` after its last
heartbeat (the worker renews the claims it holds every few seconds), so the deliveries of a
worker killed with -9 are retried within seconds, not minutes. A worker applies a delivery
and marks it done in one transaction that first checks (and on PostgreSQL locks) the row
still carries its token: a worker whose claim lapsed and was taken over applies nothing.

A delivery that fails is retried with backoff, then parked as `dead` (listed and replayed
with `opshub inbox` or the admin API). A delivery that waits for its tool (unreachable) is
released without counting an attempt: an outage never kills deliveries.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from hub.db.engine import write_transaction
from hub.db.tables import webhook_inbox
from hub.store.clock import utcnow

PENDING, PROCESSING, DONE, IGNORED, FAILED, DEAD = "pending", "processing", "done", "ignored", "failed", "dead"
STATUSES = (PENDING, PROCESSING, DONE, IGNORED, FAILED, DEAD)
CLAIM_TTL = timedelta(seconds=15)
MAX_ATTEMPTS = 8
MAX_BACKOFF_SECONDS = 600


@dataclass
class InboxDelivery:
    id: int
    source: str
    delivery_id: str
    headers: dict[str, str]
    body: bytes
    attempts: int
    claim_token: str = ""


@dataclass(frozen=True)
class InboxEntry:
    """One delivery as operators see it (no body, no headers)."""

    id: int
    source: str
    delivery_id: str
    status: str
    attempts: int
    error: str | None
    received_at: datetime
    next_attempt_at: datetime | None
    processed_at: datetime | None


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after a failed attempt: 2, 4, 8 ... seconds, at most 10 minutes."""
    return timedelta(seconds=min(2**attempts, MAX_BACKOFF_SECONDS))


class ReplayRefused(Exception):
    """The delivery is being processed right now (or does not exist): nothing was changed."""


class InboxStore:
    def __init__(self, engine: Engine, *, claim_ttl: timedelta = CLAIM_TTL) -> None:
        self.engine = engine
        self.claim_ttl = claim_ttl

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

    # ------------------------------------------------------------------ claims

    def claim(
        self, limit: int = 50, *, skip_sources: Iterable[str] = (), now: datetime | None = None
    ) -> list[InboxDelivery]:
        """Claim up to `limit` due deliveries (oldest first) under one new token.

        `skip_sources`: sources the caller will not work on now (busy, or waiting for their
        tool); their deliveries stay claimable by others and keep their attempts.
        """
        now = now or utcnow()
        t = webhook_inbox.c
        claimable = or_(
            and_(t.status.in_([PENDING, FAILED]), or_(t.next_attempt_at.is_(None), t.next_attempt_at <= now)),
            and_(t.status == PROCESSING, t.claimed_at < now - self.claim_ttl),
        )
        skip = sorted(set(skip_sources))
        if skip:
            claimable = and_(claimable, t.source.not_in(skip))
        pick = select(t.id).where(claimable).order_by(t.id).limit(limit)
        if self.engine.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        token = uuid.uuid4().hex
        with write_transaction(self.engine) as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            conn.execute(
                update(webhook_inbox)
                .where(t.id.in_(ids))
                .values(status=PROCESSING, claimed_at=now, claim_token=token, attempts=t.attempts + 1)
            )
            rows = conn.execute(select(webhook_inbox).where(t.id.in_(ids)).order_by(t.id)).all()
        return [
            InboxDelivery(r.id, r.source, r.delivery_id, orjson.loads(r.headers), bytes(r.body), r.attempts, token)
            for r in rows
        ]

    def renew(self, tokens: Sequence[str], now: datetime | None = None) -> int:
        """Heartbeat: keep these claims alive; returns how many rows are still held."""
        if not tokens:
            return 0
        t = webhook_inbox.c
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(webhook_inbox)
                .where(t.claim_token.in_(list(tokens)), t.status == PROCESSING)
                .values(claimed_at=now or utcnow())
            )
        return int(result.rowcount or 0)

    def holds(self, conn: Connection, delivery: InboxDelivery) -> bool:
        """Inside a write transaction: is the row still claimed with this delivery's token?

        On PostgreSQL the row is locked until the transaction ends, so no other worker can
        take the claim over between this check and `finish` (its claim skips locked rows).
        """
        t = webhook_inbox.c
        stmt = select(t.id).where(t.id == delivery.id, t.claim_token == delivery.claim_token, t.status == PROCESSING)
        if self.engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return conn.execute(stmt).first() is not None

    def finish(
        self, delivery: InboxDelivery, status: str, error: str | None = None, *, conn: Connection | None = None
    ) -> str | None:
        """Record the outcome; returns the status written (`dead` once attempts run out),
        or None when the claim was lost (another worker holds the row now: nothing written)."""
        now = utcnow()
        values: dict[str, Any] = {"status": status, "error": error, "processed_at": now, "claim_token": None}
        if status == FAILED:
            if delivery.attempts >= MAX_ATTEMPTS:
                values["status"] = DEAD
            else:
                values["next_attempt_at"] = now + retry_delay(delivery.attempts)
        return self._settle(delivery, values, conn)

    def release(
        self, delivery: InboxDelivery, retry_at: datetime, error: str, *, conn: Connection | None = None
    ) -> str | None:
        """Give a delivery back without counting its attempt (it waits for its tool)."""
        values: dict[str, Any] = {
            "status": PENDING,
            "error": error,
            "next_attempt_at": retry_at,
            "claim_token": None,
            "attempts": webhook_inbox.c.attempts - 1,
        }
        return self._settle(delivery, values, conn)

    def _settle(self, delivery: InboxDelivery, values: dict[str, Any], conn: Connection | None) -> str | None:
        t = webhook_inbox.c
        stmt = (
            update(webhook_inbox)
            .where(t.id == delivery.id, t.claim_token == delivery.claim_token, t.status == PROCESSING)
            .values(**values)
        )
        if conn is None:
            with write_transaction(self.engine) as tx:
                written = tx.execute(stmt).rowcount
        else:
            written = conn.execute(stmt).rowcount
        return str(values["status"]) if written else None

    # ------------------------------------------------------------------ operators

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

    def entries(
        self, *, status: str | None = None, source: str | None = None, after_id: int = 0, limit: int = 100
    ) -> list[InboxEntry]:
        """Deliveries in arrival order (by inbox id), optionally of one status and source."""
        t = webhook_inbox.c
        stmt = select(
            t.id,
            t.source,
            t.delivery_id,
            t.status,
            t.attempts,
            t.error,
            t.received_at,
            t.next_attempt_at,
            t.processed_at,
        ).where(t.id > after_id)
        if status:
            stmt = stmt.where(t.status == status)
        if source:
            stmt = stmt.where(t.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(t.id).limit(limit)).all()
        return [InboxEntry(*row) for row in rows]

    def entry(self, inbox_id: int) -> InboxEntry | None:
        found = [e for e in self.entries(after_id=inbox_id - 1, limit=1) if e.id == inbox_id]
        return found[0] if found else None

    def replay(self, inbox_id: int) -> InboxEntry:
        """Queue one delivery again with fresh attempts (any status but `processing`)."""
        t = webhook_inbox.c
        with write_transaction(self.engine) as conn:
            written = conn.execute(
                update(webhook_inbox).where(t.id == inbox_id, t.status != PROCESSING).values(**_REPLAYED)
            ).rowcount
        entry = self.entry(inbox_id)
        if entry is None:
            raise ReplayRefused(f"no inbox delivery with id {inbox_id}")
        if not written:
            raise ReplayRefused(f"inbox delivery {inbox_id} is being processed right now; it was left as is")
        return entry

    def replay_dead(self, source: str | None = None) -> int:
        """Queue every dead delivery (of one source) again; returns how many."""
        t = webhook_inbox.c
        where = [t.status == DEAD] + ([t.source == source] if source else [])
        with write_transaction(self.engine) as conn:
            return int(conn.execute(update(webhook_inbox).where(*where).values(**_REPLAYED)).rowcount or 0)


# A replayed delivery keeps its last error (for the record) until its next attempt.
_REPLAYED: dict[str, Any] = {"status": PENDING, "attempts": 0, "next_attempt_at": None, "claim_token": None}
