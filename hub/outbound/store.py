"""Subscriptions, their delivery log and leases, in the database (tables in hub/db/tables.py).

Leases: a process delivers for a subscription only while it holds the lease (a conditional
UPDATE that succeeds when the lease is free, lapsed or already its own: the same statement
on SQLite and PostgreSQL). Every write that moves the cursor carries `lease_owner = me` in
its WHERE clause, so a process that lost its lease (it stalled past `lease_until` and another
took over) cannot move the cursor back or forward: at worst a message is sent twice, never
skipped.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update

from hub.db.engine import write_transaction
from hub.db.tables import change_counter, changes, hub_events, items, subscription_deliveries, subscriptions
from hub.outbound.events import SUBSCRIPTION_DISABLED, record_event
from hub.outbound.models import Delivery, EventType, SubscriptionFilter, SubscriptionStatus
from hub.outbound.models import Subscription as SubscriptionModel
from hub.outbound.signing import new_secret
from hub.store.items import READ_COLUMNS, item_document, utcnow
from hub.store.queries import ItemQueries, ItemQuery


class SubscriptionNotFound(KeyError):
    pass


@dataclass
class SubscriptionRow:
    """A subscription as the deliverer needs it."""

    id: str
    url: str
    event_types: frozenset[str]
    filter: SubscriptionFilter
    secrets: list[dict[str, Any]]
    cursor: int
    event_cursor: int
    attempts: int
    next_attempt_at: datetime | None

    def signing_secrets(self, now: datetime) -> list[str]:
        """The secrets that sign now: the current one, and old ones inside their grace period."""
        live = []
        for entry in self.secrets:
            expires = entry.get("expires_at")
            if expires is None or datetime.fromisoformat(expires) > now:
                live.append(str(entry["secret"]))
        return live


@dataclass
class Result:
    """The outcome of one attempt, to log (and, if delivered, to move the cursor past)."""

    msg_id: str
    event_type: str
    seq: int | None
    event_id: int | None
    attempt: int
    delivered: bool
    response_code: int | None
    latency_ms: float
    error: str | None
    at: datetime
    reason: str | None = None
    """Why it failed, in a few fixed words for metrics: timeout, connect, refused (the egress
    guard), http_3xx, http_4xx, http_5xx, error."""


def _row_model(row: Any) -> SubscriptionModel:
    return SubscriptionModel(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=orjson.loads(row.event_types),
        filter=SubscriptionFilter.model_validate_json(row.filter),
        status=SubscriptionStatus(row.status),
        disabled_reason=row.disabled_reason,
        cursor=int(row.cursor),
        event_cursor=int(row.event_cursor),
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SubscriptionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.queries = ItemQueries(engine)

    # ------------------------------------------------------------------ admin

    def create(
        self, url: str, event_types: list[EventType], filter_: SubscriptionFilter, description: str = ""
    ) -> tuple[SubscriptionModel, str]:
        """A new subscription starting at the feed's head (it gets what changes from now on)."""
        now = utcnow()
        secret = new_secret()
        sub_id = "sub_" + secrets.token_hex(12)
        with write_transaction(self.engine) as conn:
            head = conn.execute(select(func.coalesce(func.max(changes.c.seq), 0))).scalar_one()
            event_head = conn.execute(select(func.coalesce(func.max(hub_events.c.id), 0))).scalar_one()
            conn.execute(
                subscriptions.insert().values(
                    id=sub_id,
                    url=url,
                    description=description,
                    filter=filter_.model_dump_json(),
                    event_types=orjson.dumps([e.value for e in event_types]).decode(),
                    status="active",
                    secrets=orjson.dumps([{"secret": secret, "expires_at": None}]).decode(),
                    cursor=int(head),
                    event_cursor=int(event_head),
                    created_at=now,
                    updated_at=now,
                )
            )
        return self.get(sub_id), secret

    def get(self, sub_id: str) -> SubscriptionModel:
        with self.engine.connect() as conn:
            row = conn.execute(select(subscriptions).where(subscriptions.c.id == sub_id)).first()
        if row is None:
            raise SubscriptionNotFound(sub_id)
        return _row_model(row)

    def all(self) -> list[SubscriptionModel]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(subscriptions).order_by(subscriptions.c.created_at, subscriptions.c.id)).all()
        return [_row_model(r) for r in rows]

    def update(self, sub_id: str, values: dict[str, Any]) -> SubscriptionModel:
        """Change fields; re-enabling clears the failure state so delivery resumes at once."""
        row_values: dict[str, Any] = {"updated_at": utcnow()}
        for name in ("url", "description"):
            if name in values:
                row_values[name] = values[name]
        if "event_types" in values:
            row_values["event_types"] = orjson.dumps([EventType(e).value for e in values["event_types"]]).decode()
        if "filter" in values:
            row_values["filter"] = SubscriptionFilter.model_validate(values["filter"]).model_dump_json()
        if "status" in values:
            status = SubscriptionStatus(values["status"])
            row_values["status"] = status.value
            if status is SubscriptionStatus.active:
                row_values.update(disabled_reason=None, attempts=0, next_attempt_at=None)
            else:
                row_values["disabled_reason"] = "disabled by an administrator"
        with write_transaction(self.engine) as conn:
            done = conn.execute(update(subscriptions).where(subscriptions.c.id == sub_id).values(**row_values))
        if done.rowcount == 0:
            raise SubscriptionNotFound(sub_id)
        return self.get(sub_id)

    def delete(self, sub_id: str) -> None:
        """Remove the subscription and its delivery log."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(delete(subscriptions).where(subscriptions.c.id == sub_id))
            if done.rowcount == 0:
                raise SubscriptionNotFound(sub_id)
            conn.execute(delete(subscription_deliveries).where(subscription_deliveries.c.subscription_id == sub_id))

    def rotate_secret(self, sub_id: str, grace: timedelta) -> str:
        """A new current secret; the others keep signing until `grace` from now (at most)."""
        now = utcnow()
        secret = new_secret()
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(subscriptions.c.secrets).where(subscriptions.c.id == sub_id)).first()
            if row is None:
                raise SubscriptionNotFound(sub_id)
            until = now + grace
            kept = []
            for entry in orjson.loads(row.secrets):
                expires = entry.get("expires_at")
                end = until if expires is None else min(until, datetime.fromisoformat(expires))
                if end > now:
                    kept.append({"secret": entry["secret"], "expires_at": end.isoformat()})
            conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == sub_id)
                .values(secrets=orjson.dumps([{"secret": secret, "expires_at": None}, *kept]).decode(), updated_at=now)
            )
        return secret

    def replay(self, sub_id: str, from_seq: int) -> SubscriptionModel:
        """Deliver again from `from_seq`: the cursor moves back to just before it (never forward)."""
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == sub_id)
                .values(
                    cursor=func.min(subscriptions.c.cursor, from_seq - 1)
                    if self.engine.dialect.name == "sqlite"
                    else func.least(subscriptions.c.cursor, from_seq - 1),
                    attempts=0,
                    next_attempt_at=None,
                    updated_at=utcnow(),
                )
            )
        if done.rowcount == 0:
            raise SubscriptionNotFound(sub_id)
        return self.get(sub_id)

    def deliveries(self, sub_id: str, *, limit: int, before: int | None = None) -> list[Delivery]:
        """The delivery log, newest first."""
        self.get(sub_id)
        stmt = select(subscription_deliveries).where(subscription_deliveries.c.subscription_id == sub_id)
        if before is not None:
            stmt = stmt.where(subscription_deliveries.c.id < before)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(subscription_deliveries.c.id.desc()).limit(limit)).all()
        return [
            Delivery(
                id=int(r.id),
                msg_id=r.msg_id,
                event_type=r.event_type,
                seq=r.seq,
                event_id=r.event_id,
                attempt=int(r.attempt),
                status=r.status,
                response_code=r.response_code,
                latency_ms=float(r.latency_ms),
                error=r.error,
                at=r.at,
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ the deliverer's side

    def claim(self, owner: str, now: datetime, ttl: timedelta, limit: int = 50) -> list[SubscriptionRow]:
        """Take (or renew) the leases of active subscriptions that are due; return those held."""
        due = and_(
            subscriptions.c.status == "active",
            or_(subscriptions.c.next_attempt_at.is_(None), subscriptions.c.next_attempt_at <= now),
            or_(
                subscriptions.c.lease_owner.is_(None),
                subscriptions.c.lease_owner == owner,
                subscriptions.c.lease_until < now,
            ),
        )
        with self.engine.connect() as conn:
            # Only subscriptions behind the feed's head: an idle poll reads and writes nothing else.
            head = conn.execute(select(change_counter.c.last_seq).where(change_counter.c.id == 1)).scalar_one()
            event_head = conn.execute(select(func.coalesce(func.max(hub_events.c.id), 0))).scalar_one()
            behind = or_(subscriptions.c.cursor < head, subscriptions.c.event_cursor < event_head)
            candidates = list(conn.execute(select(subscriptions.c.id).where(due, behind).limit(limit)).scalars())
        held: list[str] = []
        for sub_id in candidates:
            with write_transaction(self.engine) as conn:
                done = conn.execute(
                    update(subscriptions)
                    .where(subscriptions.c.id == sub_id, due)
                    .values(lease_owner=owner, lease_until=now + ttl)
                )
            if done.rowcount:
                held.append(sub_id)
        if not held:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(select(subscriptions).where(subscriptions.c.id.in_(held))).all()
        return [
            SubscriptionRow(
                id=r.id,
                url=r.url,
                event_types=frozenset(orjson.loads(r.event_types)),
                filter=SubscriptionFilter.model_validate_json(r.filter),
                secrets=orjson.loads(r.secrets),
                cursor=int(r.cursor),
                event_cursor=int(r.event_cursor),
                attempts=int(r.attempts),
                next_attempt_at=r.next_attempt_at,
            )
            for r in rows
        ]

    def release(self, owner: str, sub_id: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == sub_id, subscriptions.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def pending_changes(self, after: int, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(changes).where(changes.c.seq > after).order_by(changes.c.seq).limit(limit)).all()
            if not rows:
                return []
            ids = list({r.item_id for r in rows})
            first_seq = dict(
                conn.execute(
                    select(changes.c.item_id, func.min(changes.c.seq))
                    .where(changes.c.item_id.in_(ids))
                    .group_by(changes.c.item_id)
                ).all()
            )
        return [
            {
                "seq": int(r.seq),
                "item_id": r.item_id,
                "op": r.op,
                "fields": orjson.loads(r.fields),
                "at": r.at,
                "first": int(first_seq.get(r.item_id, r.seq)) == int(r.seq),
            }
            for r in rows
        ]

    def matching_items(self, item_ids: list[str], filter_: SubscriptionFilter) -> dict[str, dict[str, Any]]:
        """The current documents of those of `item_ids` that pass the filter (deleted ones too)."""
        if not item_ids:
            return {}
        query = ItemQuery(**filter_.model_dump(mode="json"), include_deleted=True)
        with self.engine.connect() as conn:
            cond = self.queries.filter_conditions(conn, query) if not filter_.is_empty() else []
            rows = conn.execute(select(items.c.id, *READ_COLUMNS).where(items.c.id.in_(item_ids), *cond)).all()
        return {r.id: item_document(r) for r in rows}

    def pending_events(self, after: int, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(hub_events).where(hub_events.c.id > after).order_by(hub_events.c.id).limit(limit)
            ).all()
        return [
            {
                "id": int(r.id),
                "type": r.type,
                "source": r.source,
                "subject": r.subject,
                "data": orjson.loads(r.data),
                "at": r.at,
            }
            for r in rows
        ]

    def settle(
        self,
        owner: str,
        sub_id: str,
        results: list[Result],
        *,
        cursor: int,
        event_cursor: int,
        attempts: int,
        next_attempt_at: datetime | None,
        lease_until: datetime,
        disable_reason: str | None = None,
    ) -> bool:
        """Log the attempts and move the subscription on, in one transaction, if the lease is
        still ours (False: it was lost; nothing is written but the log)."""
        now = utcnow()
        with write_transaction(self.engine) as conn:
            values: dict[str, Any] = {
                "cursor": cursor,
                "event_cursor": event_cursor,
                "attempts": attempts,
                "next_attempt_at": next_attempt_at,
                "lease_until": lease_until,
                "updated_at": now,
            }
            if disable_reason is not None:
                values.update(status="disabled", disabled_reason=disable_reason, lease_owner=None, lease_until=None)
            done = conn.execute(
                update(subscriptions)
                .where(subscriptions.c.id == sub_id, subscriptions.c.lease_owner == owner)
                .values(**values)
            )
            self._log(conn, sub_id, results)
            if done.rowcount and disable_reason is not None:
                record_event(
                    self.engine,
                    SUBSCRIPTION_DISABLED,
                    {"subscription_id": sub_id, "reason": disable_reason},
                    subject=sub_id,
                    conn=conn,
                )
        return bool(done.rowcount)

    @staticmethod
    def _log(conn: Connection, sub_id: str, results: list[Result]) -> None:
        if not results:
            return
        conn.execute(
            subscription_deliveries.insert(),
            [
                {
                    "subscription_id": sub_id,
                    "msg_id": r.msg_id,
                    "event_type": r.event_type,
                    "seq": r.seq,
                    "event_id": r.event_id,
                    "attempt": r.attempt,
                    "status": "delivered" if r.delivered else "failed",
                    "response_code": r.response_code,
                    "latency_ms": r.latency_ms,
                    "error": r.error,
                    "at": r.at,
                }
                for r in results
            ],
        )
