"""The deliverer: follows each subscription's cursor on the change feed and POSTs what matches.

Per subscription, messages go out one at a time in feed order (item changes by seq; hub
events by id, each stream in its own order), so a receiver sees an item's changes in the
order they happened. A change the subscription does not want (event type, filter on the item
as it now is) moves the cursor on without a request.

Delivery is at least once: results are committed (log rows + cursor) in one transaction per
batch, and at least every third of the lease, so a process killed mid-batch sends the
uncommitted part again when the lease lapses and some process takes over. Each message's
`webhook-id` is the same on every attempt (`msg_<subscription>_<seq>`), so receivers can
drop duplicates.

Failures: the head message is retried after `schedule[attempts-1]` seconds, scaled by a
random factor in [1 - jitter, 1 + jitter]; with the default 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 10 h that is 8 attempts over about 27.6 hours. After the last one fails, the
subscription is disabled and a `subscription.disabled` event is recorded. A `410 Gone`
disables it at once (the receiver says the endpoint is gone for good). A disabled
subscription keeps its cursor: `PATCH status=active` resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson

from connectors.egress import EgressPolicy, EgressRefused, GuardedTransport, default_policy
from hub import metrics
from hub.outbound.models import EventType
from hub.outbound.signing import webhook_headers
from hub.outbound.store import Result, SubscriptionRow, SubscriptionStore
from hub.store.items import utcnow

log = logging.getLogger("opshub.outbound")

DEFAULT_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


def observe_delivery(subscription_id: str, result: Result, lag_seconds: float | None) -> None:
    """Metrics, once per delivery attempt (lag: from the change's commit to its delivery, for
    delivered item changes; `result.reason` says why an attempt failed)."""
    if result.delivered:
        if lag_seconds is not None:
            metrics.outbound_delivered(subscription_id, lag_seconds)
    else:
        metrics.outbound_failed(subscription_id, result.reason or "error")


@dataclass
class _Message:
    msg_id: str
    event_type: str
    seq: int | None
    event_id: int | None
    body: bytes
    committed_at: datetime


def change_event_type(change: dict[str, Any]) -> EventType:
    """One message per change, with its most specific type."""
    if change["op"] == "delete":
        return EventType.item_deleted
    if change["first"] or "deleted" in change["fields"]:  # new, or back from a deletion
        return EventType.item_created
    if "status" in change["fields"]:
        return EventType.item_status_changed
    return EventType.item_updated


def wants(sub: SubscriptionRow, event_type: EventType) -> bool:
    # A status change is an update too: `item.updated` subscribers receive it (typed as the former).
    return event_type.value in sub.event_types or (
        event_type is EventType.item_status_changed and EventType.item_updated.value in sub.event_types
    )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class Deliverer:
    def __init__(
        self,
        store: SubscriptionStore,
        *,
        policy: EgressPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
        rand: Callable[[], float] = random.random,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        jitter: float = 0.2,
        lease_ttl: timedelta = timedelta(seconds=30),
        batch_size: int = 100,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rand = rand
        self.schedule = tuple(schedule)
        self.jitter = jitter
        self.lease_ttl = lease_ttl
        self.batch_size = batch_size
        self.owner = owner or secrets.token_hex(8)
        self._client = httpx.AsyncClient(
            transport=transport if transport is not None else GuardedTransport(policy or default_policy()),
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # a redirect is the receiver's misconfiguration: a failure
            trust_env=False,  # an environment proxy would bypass the egress guard
            headers={"User-Agent": "opshub-webhooks/0.1"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def retry_delay(self, attempts: int) -> float | None:
        """Seconds before the next try after `attempts` failures; None: give up."""
        if attempts > len(self.schedule):
            return None
        base = self.schedule[attempts - 1]
        return base * (1 + self.jitter * (2 * self.rand() - 1))

    async def run_once(self) -> int:
        """Deliver for every due subscription this process can lease; returns attempts made."""
        subs = await asyncio.to_thread(self.store.claim, self.owner, self.clock(), self.lease_ttl)
        if not subs:
            return 0
        counts = await asyncio.gather(*(self._deliver(sub) for sub in subs))
        return sum(counts)

    async def _deliver(self, sub: SubscriptionRow) -> int:
        sent = 0
        try:
            while True:
                attempted, more = await self._batch(sub)
                sent += attempted
                if not more:
                    return sent
        except Exception:
            log.exception("outbound: delivery pass for subscription %s failed", sub.id)
            return sent
        finally:
            await asyncio.to_thread(self.store.release, self.owner, sub.id)

    async def _batch(self, sub: SubscriptionRow) -> tuple[int, bool]:
        """Deliver one batch; returns (attempts made, whether to go on with this subscription)."""
        messages, positions = await asyncio.to_thread(self._next_messages, sub)
        if not positions:
            return 0, False
        results: list[Result] = []
        attempted = 0
        last_settle = time.monotonic()
        cursor, event_cursor = sub.cursor, sub.event_cursor
        for message, (kind, position) in zip(messages, positions, strict=True):
            if message is None:  # not wanted: skip without a request
                cursor, event_cursor = (position, event_cursor) if kind == "seq" else (cursor, position)
                continue
            result = await self._send(sub, message)
            results.append(result)
            lag = (result.at - message.committed_at).total_seconds() if message.seq is not None else None
            observe_delivery(sub.id, result, lag)
            if not result.delivered:
                attempts = sub.attempts + 1
                gone = result.response_code == 410
                delay = None if gone else self.retry_delay(attempts)
                reason = None
                if gone:
                    reason = f"the receiver answered 410 Gone for {message.msg_id}"
                elif delay is None:
                    reason = f"{attempts} failed attempts to deliver {message.msg_id}; last: {result.error}"
                next_at = None if delay is None else self.clock() + timedelta(seconds=delay)
                await self._settle(
                    sub,
                    results,
                    cursor,
                    event_cursor,
                    attempts=0 if reason else attempts,
                    next_attempt_at=next_at,
                    disable_reason=reason,
                )
                if reason:
                    log.warning("outbound: subscription %s disabled: %s", sub.id, reason)
                else:
                    log.info(
                        "outbound: %s to subscription %s failed (attempt %d: %s); next try at %s",
                        message.msg_id,
                        sub.id,
                        attempts,
                        result.error,
                        next_at,
                    )
                sub.attempts = attempts
                return attempted + len(results), False
            sub.attempts = 0
            cursor, event_cursor = (position, event_cursor) if kind == "seq" else (cursor, position)
            if time.monotonic() - last_settle > self.lease_ttl.total_seconds() / 3:
                if not await self._settle(sub, results, cursor, event_cursor):
                    return attempted + len(results), False
                attempted += len(results)
                results, last_settle = [], time.monotonic()
        held = await self._settle(sub, results, cursor, event_cursor)
        return attempted + len(results), held

    async def _settle(
        self,
        sub: SubscriptionRow,
        results: list[Result],
        cursor: int,
        event_cursor: int,
        *,
        attempts: int = 0,
        next_attempt_at: datetime | None = None,
        disable_reason: str | None = None,
    ) -> bool:
        """Commit the batch's log rows, cursors and retry state (only while the lease is held)."""
        held = await asyncio.to_thread(
            self.store.settle,
            self.owner,
            sub.id,
            results,
            cursor=cursor,
            event_cursor=event_cursor,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            lease_until=self.clock() + self.lease_ttl,
            disable_reason=disable_reason,
        )
        if held:
            sub.cursor, sub.event_cursor = cursor, event_cursor
        else:
            log.warning("outbound: lost the lease on subscription %s; another process goes on", sub.id)
        return held

    def _next_messages(self, sub: SubscriptionRow) -> tuple[list[_Message | None], list[tuple[str, int]]]:
        """The next batch in order (hub events first, then changes): a message, or None for an
        entry the subscription does not want, with its stream and position."""
        messages: list[_Message | None] = []
        positions: list[tuple[str, int]] = []
        for event in self.store.pending_events(sub.event_cursor, self.batch_size):
            positions.append(("event", event["id"]))
            wanted = event["type"] in sub.event_types and (
                not sub.filter.source or event["source"] in sub.filter.source
            )
            if not wanted:
                messages.append(None)
                continue
            payload = {
                "type": event["type"],
                "timestamp": _iso(event["at"]),
                "data": {**event["data"], "source": event["source"]},
            }
            messages.append(
                _Message(
                    f"msg_{sub.id}_e{event['id']}", event["type"], None, event["id"], orjson.dumps(payload), event["at"]
                )
            )
        if positions:
            return messages, positions
        found = self.store.pending_changes(sub.cursor, self.batch_size)
        typed = [(change, change_event_type(change)) for change in found]
        wanted_ids = [c["item_id"] for c, t in typed if wants(sub, t)]
        docs = self.store.matching_items(list(dict.fromkeys(wanted_ids)), sub.filter)
        for change, event_type in typed:
            positions.append(("seq", change["seq"]))
            doc = docs.get(change["item_id"])
            if doc is None or not wants(sub, event_type):
                messages.append(None)
                continue
            public_change = {k: change[k] for k in ("seq", "item_id", "op", "fields")} | {"at": _iso(change["at"])}
            payload = {
                "type": event_type.value,
                "timestamp": _iso(change["at"]),
                "data": {"change": public_change, "item": doc},
            }
            messages.append(
                _Message(
                    f"msg_{sub.id}_{change['seq']}",
                    event_type.value,
                    change["seq"],
                    None,
                    orjson.dumps(payload),
                    change["at"],
                )
            )
        return messages, positions

    async def _send(self, sub: SubscriptionRow, message: _Message) -> Result:
        now = self.clock()
        headers = webhook_headers(message.msg_id, int(now.timestamp()), message.body, sub.signing_secrets(now))
        started = time.perf_counter()
        code: int | None = None
        error: str | None = None
        reason: str | None = None
        try:
            response = await self._client.post(sub.url, content=message.body, headers=headers)
            code = response.status_code
            if not 200 <= code < 300:
                error, reason = f"HTTP {code}", f"http_{code // 100}xx"
        except EgressRefused as exc:
            error, reason = f"refused: {exc}", "refused"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if isinstance(exc, httpx.TimeoutException):
                reason = "timeout"
            elif isinstance(exc, httpx.NetworkError):
                reason = "connect"
            else:
                reason = "error"
        latency_ms = (time.perf_counter() - started) * 1000
        return Result(
            msg_id=message.msg_id,
            event_type=message.event_type,
            seq=message.seq,
            event_id=message.event_id,
            attempt=sub.attempts + 1,
            delivered=error is None,
            response_code=code,
            latency_ms=latency_ms,
            error=error,
            at=self.clock(),
            reason=reason,
        )
