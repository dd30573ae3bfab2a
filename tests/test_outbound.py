"""Outbound webhooks: signing (verified with the reference standardwebhooks package), event
types and filters, retries on an injected clock, disabling, rotation, replay, leases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hub.db.tables import hub_events
from hub.outbound.deliverer import DEFAULT_SCHEDULE, Deliverer
from hub.outbound.events import SOURCE_FAILING, SUBSCRIPTION_DISABLED, SYNC_FAILED, record_event
from hub.outbound.models import EventType, SubscriptionFilter
from hub.outbound.store import SubscriptionStore
from hub.schema import ItemDeletion
from hub.store import Store
from tests.factories import make_item
from tests.outbound_support import FakeClock, Receiver, deliverer_for, freeze_verifier_clock, routed

ALL_ITEM_EVENTS = [EventType.item_created, EventType.item_updated, EventType.item_deleted]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    c = FakeClock()
    freeze_verifier_clock(monkeypatch, c)
    return c


def subscribe(
    store: Store, url: str = "https://hooks.example/in", events: list[EventType] | None = None, **filters: list[str]
) -> tuple[str, str]:
    sub, secret = SubscriptionStore(store.engine).create(
        url, events or ALL_ITEM_EVENTS, SubscriptionFilter.model_validate(filters)
    )
    return sub.id, secret


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def drain(deliverer: Deliverer, passes: int = 5) -> None:
    try:
        for _ in range(passes):
            await deliverer.run_once()
    finally:
        await deliverer.aclose()


def test_payloads_types_and_filters_verified_by_the_reference_library(store: Store, clock: FakeClock) -> None:
    sub_all, secret_all = subscribe(store, "https://all.example/in", [*ALL_ITEM_EVENTS, EventType.item_status_changed])
    sub_a, secret_a = subscribe(
        store, "https://only-a.example/in", [EventType.item_created, EventType.item_deleted], source=["a"]
    )
    store.items.apply([make_item(1, source="a"), make_item(2, source="b")])  # seq 1, 2: created
    store.items.apply([make_item(1, source="a", minutes=1, title="renamed")])  # seq 3: updated
    store.items.apply(
        [make_item(1, source="a", minutes=2, title="renamed", status={"category": "done", "name": "Done"})]
    )
    store.items.apply(
        [ItemDeletion(source="a", native_id="1", deleted_at=make_item(1).updated_at + timedelta(minutes=3))]
    )
    everything, only_a = Receiver(secret_all), Receiver(secret_a)
    deliverer = Deliverer(
        SubscriptionStore(store.engine),
        transport=routed({"all.example": everything, "only-a.example": only_a}),
        clock=clock,
    )
    run(drain(deliverer))

    assert everything.seqs() == [1, 2, 3, 4, 5]
    assert everything.types() == ["item.created", "item.created", "item.updated", "item.status_changed", "item.deleted"]
    assert only_a.seqs() == [1, 5]  # b's item is filtered out; updates are not asked for
    assert only_a.types() == ["item.created", "item.deleted"]
    # The payload is the change with the item as it now is (deleted, with its last content).
    first = everything.received[0]
    assert first["data"]["change"] == {
        "seq": 1,
        "item_id": first["data"]["item"]["id"],
        "op": "upsert",
        "fields": first["data"]["change"]["fields"],
        "at": first["data"]["change"]["at"],
    }
    assert first["data"]["item"]["source"] == "a" and "title" in first["data"]["change"]["fields"]
    assert first["data"]["item"]["title"] == "renamed" and first["data"]["item"]["deleted"] is True
    assert first["msg_id"] == f"msg_{sub_all}_1"
    assert first["timestamp"].endswith("Z")
    # The log records one delivered attempt per message; skipped changes only move the cursor.
    subs = SubscriptionStore(store.engine)
    assert [d.seq for d in reversed(subs.deliveries(sub_a, limit=50))] == [1, 5]
    assert subs.get(sub_a).cursor == 5 and subs.get(sub_all).cursor == 5


def test_item_updated_subscribers_get_status_changes_typed_as_such(store: Store, clock: FakeClock) -> None:
    _, secret = subscribe(store, events=[EventType.item_updated])
    store.items.apply([make_item(1)])
    store.items.apply([make_item(1, minutes=1, status={"category": "in_progress", "name": "Doing"})])
    receiver = Receiver(secret)
    run(drain(deliverer_for(store.engine, receiver, clock)))
    assert receiver.types() == ["item.status_changed"]
    assert receiver.seqs() == [2]


def test_hub_events_reach_subscribers_filtered_by_source(store: Store, clock: FakeClock) -> None:
    _, secret = subscribe(store, events=[EventType.sync_failed, EventType.source_failing], source=["jira"])
    record_event(store.engine, SYNC_FAILED, {"run_id": "r1", "error": "boom"}, source="jira")
    record_event(store.engine, SYNC_FAILED, {"run_id": "r2", "error": "boom"}, source="github")
    record_event(store.engine, SOURCE_FAILING, {"error": "401"}, source="jira")
    store.items.apply([make_item(1)])  # an item change it did not ask for
    receiver = Receiver(secret)
    run(drain(deliverer_for(store.engine, receiver, clock)))
    assert receiver.types() == ["sync.failed", "source.failing"]
    assert receiver.received[0]["data"] == {"run_id": "r1", "error": "boom", "source": "jira"}


def test_failing_receiver_gets_every_change_in_order_on_the_schedule(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused, timed out, 500: retried after 5 s, 5 min, 30 min (jitter pinned to 1.0); then
    410 disables at once with a subscription.disabled event; re-enabled, it resumes in order."""
    observed: list[tuple[str | None, float | None]] = []
    monkeypatch.setattr(
        "hub.outbound.deliverer.observe_delivery", lambda _sub, result, lag: observed.append((result.reason, lag))
    )
    sub_id, secret = subscribe(store)
    store.items.apply([make_item(n, minutes=n) for n in (1, 2, 3)])
    script = {1: "refuse", 2: "timeout", 3: "500", 7: "410"}
    receiver = Receiver(secret, behaviour=lambda n: script.get(n, "ok"))
    deliverer = deliverer_for(store.engine, receiver, clock)
    subs = SubscriptionStore(store.engine)
    t0 = clock()

    async def scenario() -> None:
        for expected_wait in (5, 300, 1800):
            assert await deliverer.run_once() == 1  # one failed attempt at the head
            sub = subs.get(sub_id)
            assert sub.next_attempt_at == clock() + timedelta(seconds=expected_wait)
            clock.advance(expected_wait - 1)
            assert await deliverer.run_once() == 0  # not due yet: no request
            clock.advance(1)
        assert await deliverer.run_once() == 3  # attempt 4 succeeds, the rest follow in order
        assert receiver.seqs() == [1, 2, 3]
        store.items.apply([make_item(4, minutes=4)])
        assert await deliverer.run_once() == 1  # 410 Gone
        assert subs.get(sub_id).status == "disabled"
        store.items.apply([make_item(5, minutes=5)])
        assert await deliverer.run_once() == 0  # disabled: nothing is sent
        subs.update(sub_id, {"status": "active"})
        assert await deliverer.run_once() == 2
        await deliverer.aclose()

    run(scenario())
    assert clock() - t0 == timedelta(seconds=5 + 300 + 1800)
    assert receiver.seqs() == [1, 2, 3, 4, 5]
    log = list(reversed(subs.deliveries(sub_id, limit=50)))
    assert [(d.seq, d.attempt, d.status, d.response_code) for d in log[:4]] == [
        (1, 1, "failed", None),
        (1, 2, "failed", None),
        (1, 3, "failed", 500),
        (1, 4, "delivered", 204),
    ]
    assert "ConnectError" in (log[0].error or "") and "ReadTimeout" in (log[1].error or "")
    assert all(d.latency_ms >= 0 for d in log)
    assert [(d.seq, d.status, d.response_code) for d in log[6:]] == [
        (4, "failed", 410),
        (4, "delivered", 204),
        (5, "delivered", 204),
    ]
    with store.engine.connect() as conn:
        events = conn.execute(select(hub_events.c.type, hub_events.c.subject)).all()
    assert [(e.type, e.subject) for e in events] == [(SUBSCRIPTION_DISABLED, sub_id)]
    # The metrics hook saw every attempt: why each failed, and a lag for each delivery.
    assert [reason for reason, _ in observed] == [
        "connect",
        "timeout",
        "http_5xx",
        None,
        None,
        None,
        "http_4xx",
        None,
        None,
    ]
    assert all(lag is not None for reason, lag in observed if reason is None)


def test_a_receiver_that_keeps_failing_is_disabled_after_the_last_retry(store: Store, clock: FakeClock) -> None:
    sub_id, secret = subscribe(store)
    store.items.apply([make_item(1)])
    receiver = Receiver(secret, behaviour=lambda _n: "500")
    deliverer = deliverer_for(store.engine, receiver, clock)
    subs = SubscriptionStore(store.engine)

    async def scenario() -> list[float]:
        waits = []
        for _ in range(len(DEFAULT_SCHEDULE)):
            before = clock()
            assert await deliverer.run_once() == 1
            next_at = subs.get(sub_id).next_attempt_at
            assert next_at is not None
            waits.append((next_at - before).total_seconds())
            clock.now = next_at
        assert await deliverer.run_once() == 1  # the 8th attempt fails: disabled
        await deliverer.aclose()
        return waits

    assert run(scenario()) == list(DEFAULT_SCHEDULE)
    sub = subs.get(sub_id)
    assert sub.status == "disabled" and "8 failed attempts" in (sub.disabled_reason or "")
    assert receiver.attempts == 8 and receiver.received == []
    assert sum(DEFAULT_SCHEDULE) / 3600 == pytest.approx(27.6, abs=0.1)  # "about a day", as the README says


def test_retry_jitter_stays_within_its_bounds(store: Store) -> None:
    low = Deliverer(SubscriptionStore(store.engine), rand=lambda: 0.0, jitter=0.2)
    high = Deliverer(SubscriptionStore(store.engine), rand=lambda: 0.999999, jitter=0.2)
    assert low.retry_delay(1) == pytest.approx(4.0)
    assert high.retry_delay(2) == pytest.approx(360.0, rel=1e-5)
    assert low.retry_delay(len(DEFAULT_SCHEDULE) + 1) is None
    run(low.aclose())
    run(high.aclose())


def test_rotation_both_secrets_sign_during_the_grace_period(store: Store, clock: FakeClock) -> None:
    sub_id, old_secret = subscribe(store)
    subs = SubscriptionStore(store.engine)
    new_secret = subs.rotate_secret(sub_id, timedelta(hours=24))
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    store.items.apply([make_item(1)])
    with_old, with_new = Receiver(old_secret), Receiver(new_secret)
    # Both receivers see the same message; each verifies it with only its own secret.
    run(drain(Deliverer(subs, transport=routed({"hooks.example": with_old}), clock=clock)))
    subs.replay(sub_id, 1)
    run(drain(Deliverer(subs, transport=routed({"hooks.example": with_new}), clock=clock)))
    assert with_old.seqs() == [1] and with_new.seqs() == [1]
    assert len(with_new.headers[0]["webhook-signature"].split(" ")) == 2
    # The very message the new-secret receiver got verifies with the old secret too.
    assert Webhook(old_secret).verify(with_new.bodies[0], with_new.headers[0])["data"]["change"]["seq"] == 1

    # Past the grace period only the new secret signs (the clock is the hub's).
    clock.now = clock.now.replace(year=clock.now.year + 1)
    store.items.apply([make_item(2)])
    late = Receiver(new_secret)
    run(drain(Deliverer(subs, transport=routed({"hooks.example": late}), clock=clock)))
    assert late.seqs() == [2]
    signature = late.headers[0]["webhook-signature"]
    assert len(signature.split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(late.bodies[0], late.headers[0])


def test_replay_sends_again_from_a_seq(store: Store, clock: FakeClock) -> None:
    sub_id, secret = subscribe(store)
    store.items.apply([make_item(n) for n in (1, 2, 3)])
    receiver = Receiver(secret)
    subs = SubscriptionStore(store.engine)
    run(drain(deliverer_for(store.engine, receiver, clock)))
    assert subs.replay(sub_id, 2).cursor == 1
    assert subs.replay(sub_id, 3).cursor == 1  # replay never moves the cursor forward
    run(drain(deliverer_for(store.engine, receiver, clock)))
    assert receiver.seqs() == [1, 2, 3, 2, 3]
    ids = [m["msg_id"] for m in receiver.received]
    assert ids[1] == ids[3]  # the same webhook-id: receivers can tell a replay from a new change


def test_two_processes_share_the_work_without_sending_twice(store: Store, clock: FakeClock) -> None:
    """Two deliverers (as two hub processes would) on one database: each subscription is
    leased by one of them at a time, so every change reaches each receiver once."""
    receivers = {}
    for name in ("one", "two", "three"):
        _, secret = subscribe(store, f"https://{name}.example/in")
        receivers[f"{name}.example"] = Receiver(secret)
    store.items.apply([make_item(n) for n in range(1, 41)])

    async def both() -> None:
        first = Deliverer(SubscriptionStore(store.engine), transport=routed(receivers), clock=clock, batch_size=7)
        second = Deliverer(SubscriptionStore(store.engine), transport=routed(receivers), clock=clock, batch_size=7)
        for _ in range(4):
            await asyncio.gather(first.run_once(), second.run_once())
        await first.aclose()
        await second.aclose()

    run(both())
    for receiver in receivers.values():
        assert receiver.seqs() == list(range(1, 41))


def test_a_lost_lease_cannot_move_the_cursor(store: Store, clock: FakeClock) -> None:
    sub_id, _ = subscribe(store)
    subs = SubscriptionStore(store.engine)
    assert subs.claim("a", clock(), timedelta(seconds=30)) == []  # nothing to deliver: no lease taken
    store.items.apply([make_item(1)])
    assert [s.id for s in subs.claim("a", clock(), timedelta(seconds=30))] == [sub_id]
    assert subs.claim("b", clock(), timedelta(seconds=30)) == []  # a holds it
    clock.advance(31)
    assert [s.id for s in subs.claim("b", clock(), timedelta(seconds=30))] == [sub_id]  # lapsed: b takes over
    moved = subs.settle(
        "a", sub_id, [], cursor=99, event_cursor=0, attempts=0, next_attempt_at=None, lease_until=clock()
    )
    assert moved is False and subs.get(sub_id).cursor == 0


def test_sync_failures_record_hub_events(store: Store) -> None:
    """A failed run records sync.failed each time; source.failing only when the source turns
    failing (refused credentials), not again while it stays so."""
    from tests.conformance.cases import CASES
    from tests.test_hub_conformance import SOURCE, Harness

    harness = Harness(next(c for c in CASES if c.id == "jira"), store, n=5)
    for _ in range(2):
        harness.fake.faults.inject(401, count=50)
        assert harness.sync().status == "failed"
    with store.engine.connect() as conn:
        events = conn.execute(select(hub_events.c.type, hub_events.c.source).order_by(hub_events.c.id)).all()
    assert [(e.type, e.source) for e in events] == [
        (SOURCE_FAILING, SOURCE),
        (SYNC_FAILED, SOURCE),
        (SYNC_FAILED, SOURCE),
    ]
