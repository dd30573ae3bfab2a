"""The inbox worker through outages: set-up that cannot poison, stored mapping contexts,
provisional items, per-source lanes (no head-of-line blocking), the database going away.

Every test counts worker passes, never seconds. The connectors' retry waits are skipped
(`no_sleep`) and a tool's backoff is zero, so "later" is simply "the next pass".
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from hub.db.engine import migrate
from hub.runtime import HubRuntime
from hub.store import Store
from hub.store.inbox import InboxStore
from hub.store.items import utcnow
from hub.sync import SyncEngine
from hub.webhooks import InboxWorker
from tests.webhook_support import Sources, statuses, two_sources, with_points

if TYPE_CHECKING:
    from hub.store.contexts import ContextStore
    from hub.webhooks import ProcessedDelivery

A, B = "acme-jira", "beta-jira"


def contexts_of(store: Store) -> ContextStore:
    # Imported here, so that the tests of main's worker fail on behaviour, not on an import.
    from hub.store.contexts import ContextStore

    return ContextStore(store.engine)


class ZeroBackoff:
    """A tool that failed may be asked again at the next pass."""

    def delay(self, failures: int) -> timedelta:
        return timedelta(0)


def make_worker(store: Store, sources: Sources, **kwargs: object) -> InboxWorker:
    worker = InboxWorker(store, sources.config, connector_factory=sources.factory(), **kwargs)  # type: ignore[arg-type]
    worker.tool_backoff = ZeroBackoff()  # type: ignore[assignment]
    return worker


def estimate(store: Store, source: str, native_id: str) -> object:
    item = store.items.get(f"{source}:{native_id}")
    assert item is not None
    return item["estimate"]


def test_a_failed_field_catalog_does_not_poison_the_source(store: Store) -> None:
    """Issue 8 item 1: one failed `GET /rest/api/3/field` used to leave a connector without
    a normaliser in the cache: every later delivery failed with KeyError until restart."""
    s = two_sources()
    first, second = with_points(s.fakes[A])[:2]

    async def scenario() -> tuple[str, str]:
        worker = make_worker(store, s)
        try:
            s.switches[A].refuse()
            d1 = s.post(store, A, "upsert", first)
            await worker.drain()
            s.switches[A].up()
            d2 = s.post(store, A, "upsert", second)
            await worker.drain()
            return d1, d2
        finally:
            await worker.aclose()

    d1, d2 = asyncio.run(scenario())
    assert statuses(store) == {d1: "done", d2: "done"}
    # Both end mapped with the field catalog (story points resolved by name), the first one
    # mapped again from its stored raw record once the catalog could be had.
    assert estimate(store, A, first) is not None and estimate(store, A, second) is not None
    assert contexts_of(store).provisional_ids(A) == []


def test_stored_context_maps_full_records_while_the_tool_is_down(store: Store) -> None:
    """Issue 8 item 2: a delivery carrying the whole issue is applied at once with the context
    a sync stored; one that needs the tool waits (no attempt spent) and lands when it is back."""
    s = two_sources()
    full, thin = with_points(s.fakes[A])[:2]
    asyncio.run(SyncEngine(store, s.config, connector_factory=s.factory()).run(A))
    s.fakes[A].edit(full, summary="Edited while the tool was down")
    s.fakes[A].edit(thin, summary="Seen only by a refetch")

    async def scenario() -> tuple[dict[str, str], int, str, str]:
        worker = make_worker(store, s)
        try:
            s.switches[A].refuse()
            upsert = s.post(store, A, "upsert", full)
            refetch = s.post(store, A, "refetch", thin)
            await worker.drain()
            during = statuses(store)
            waiting = InboxStore(store.engine).get(A, refetch)
            assert waiting is not None and waiting["error"]
            s.switches[A].up()
            await worker.drain()
            return during, int(waiting["attempts"]), upsert, refetch
        finally:
            await worker.aclose()

    during, attempts, upsert, refetch = asyncio.run(scenario())
    assert during == {upsert: "done", refetch: "pending"}
    assert attempts == 0  # waiting for the tool spends no attempt
    assert statuses(store) == {upsert: "done", refetch: "done"}
    full_item, thin_item = store.items.get(f"{A}:{full}"), store.items.get(f"{A}:{thin}")
    assert full_item is not None and full_item["title"] == "Edited while the tool was down"
    assert full_item["estimate"] is not None
    assert thin_item is not None and thin_item["title"] == "Seen only by a refetch"


def test_a_context_older_than_the_max_age_is_fetched_again(store: Store) -> None:
    """A stale context serves at once; a fresh one is fetched meanwhile and serves what follows."""
    s = two_sources()
    native_id = with_points(s.fakes[A])[0]
    contexts = contexts_of(store)
    base = {"source": A, "tool": "jira", "base_url": s.fakes[A].base_url}
    long_ago = utcnow() - timedelta(days=3)
    contexts.save(A, {**base, "fields": []}, now=long_ago)  # an old catalog that lacks Story Points

    async def scenario() -> None:
        worker = make_worker(store, s, context_max_age=timedelta(days=1))
        try:
            s.post(store, A, "upsert", native_id)
            await worker.drain()
            await worker.wait_refreshes()
            s.fakes[A].edit(native_id, summary="Edited after the refresh")
            s.post(store, A, "upsert", native_id)
            await worker.drain()
        finally:
            await worker.aclose()

    asyncio.run(scenario())
    stored = contexts.load(A)
    assert stored is not None and stored.fetched_at > long_ago and stored.context["fields"]
    assert estimate(store, A, native_id) is not None
    assert set(statuses(store).values()) == {"done"}


@pytest.mark.parametrize("outage", ["refused", "hanging"])
def test_a_stale_context_still_serves_while_the_tool_is_down(store: Store, outage: str) -> None:
    """Full records are applied with the stored context even when it is older than the max
    age and the tool hangs: the refresh runs beside the source's lane, not in it."""
    s = two_sources()
    native_id = with_points(s.fakes[A])[0]
    asyncio.run(SyncEngine(store, s.config, connector_factory=s.factory()).run(A))
    contexts = contexts_of(store)
    stored = contexts.load(A)
    assert stored is not None
    long_ago = utcnow() - timedelta(days=3)
    contexts.save(A, stored.context, now=long_ago)
    s.fakes[A].edit(native_id, summary="Edited during the outage")

    async def scenario() -> dict[str, str]:
        worker = make_worker(store, s, context_max_age=timedelta(days=1))
        try:
            getattr(s.switches[A], "refuse" if outage == "refused" else "hang")()
            s.post(store, A, "upsert", native_id)
            await worker.drain()
            during = statuses(store)
            s.switches[A].up()
            await worker.wait_refreshes()
            return during
        finally:
            await worker.aclose()

    during = asyncio.run(scenario())
    assert set(during.values()) == {"done"}
    item = store.items.get(f"{A}:{native_id}")
    assert item is not None and item["title"] == "Edited during the outage" and item["estimate"] is not None
    assert contexts.provisional_ids(A) == []  # mapped with the (old) catalog, not provisionally
    refreshed = contexts.load(A)
    if outage == "hanging":  # the refresh was waiting for the tool, and got its answer
        assert refreshed is not None and refreshed.fetched_at > long_ago


def test_items_mapped_without_context_are_mapped_again_by_the_next_sync(store: Store) -> None:
    s = two_sources()
    native_id = with_points(s.fakes[A])[0]

    async def outage() -> str:
        worker = make_worker(store, s)
        try:
            s.switches[A].refuse()
            delivery = s.post(store, A, "upsert", native_id)
            await worker.drain()
            return delivery
        finally:
            await worker.aclose()

    delivery = asyncio.run(outage())
    assert statuses(store) == {delivery: "done"}  # applied with what can be mapped
    assert estimate(store, A, native_id) is None  # story points need the field catalog
    contexts = contexts_of(store)
    assert contexts.provisional_ids(A) == [f"{A}:{native_id}"]
    s.switches[A].up()
    asyncio.run(SyncEngine(store, s.config, connector_factory=s.factory()).run(A))
    assert contexts.provisional_ids(A) == []
    assert estimate(store, A, native_id) is not None


@pytest.mark.parametrize("outage", ["refused", "hanging"])
def test_outage_of_one_tool_delays_no_other_source(store: Store, outage: str) -> None:
    """Issue 8, "what must be shown": stop a tool, post deliveries for two sources, start it
    again: both sources' items are applied, none is dead, and the other source's deliveries
    are each claimed and applied in the very next worker pass throughout."""
    s = two_sources()
    a_ids, b_ids = with_points(s.fakes[A])[:6], with_points(s.fakes[B])[:6]
    kinds = ["upsert", "refetch"]

    async def scenario() -> tuple[list[tuple[str, int]], list[str], dict[str, str], list[ProcessedDelivery]]:
        runtime = HubRuntime(store, s.config, background=False, connector_factory=s.factory())
        worker = runtime.worker
        worker.tool_backoff = ZeroBackoff()  # type: ignore[assignment]
        posted_b: list[tuple[str, int]] = []
        posted_a: list[str] = []
        try:
            getattr(s.switches[A], "refuse" if outage == "refused" else "hang")()
            for round_no, (a_id, b_id) in enumerate(zip(a_ids, b_ids, strict=True)):
                posted_a.append(s.post(store, A, kinds[round_no % 2], a_id))
                posted_b.append((s.post(store, B, kinds[round_no % 2], b_id), worker.passes + 1))
                await runtime.inbox_pass()
                await worker.wait_lanes(B)  # not A's: while its tool hangs, so does its lane
                if outage == "refused":
                    await worker.wait_lanes(A)  # fails fast: let it see each round's deliveries
            during = statuses(store)
            s.switches[A].up()
            for _ in range(20):  # bounded: each pass either applies or the test fails below
                await worker.wait_lanes()
                await runtime.inbox_pass()
                await worker.wait_lanes()
                if set(statuses(store).values()) == {"done"}:
                    break
            return posted_b, posted_a, during, list(worker.recent)
        finally:
            await runtime.stop()

    posted_b, posted_a, during, processed = asyncio.run(scenario())
    final = statuses(store)
    assert set(final.values()) == {"done"}, final  # nothing dead, nothing left behind
    b_passes = {r.delivery_id: (r.claimed_in_pass, r.status) for r in processed if r.source == B}
    # Each of B's deliveries was applied in the first pass after it arrived, while A was out.
    assert b_passes == {delivery: (next_pass, "done") for delivery, next_pass in posted_b}
    assert all(during[delivery] == "done" for delivery, _ in posted_b)
    if outage == "refused":
        # Full records of the source that never synced were applied during the outage.
        assert [during[d] for d in posted_a[0::2]] == ["done"] * 3
    for native_id in a_ids:
        assert estimate(store, A, native_id) is not None  # mapped with the catalog in the end
    assert contexts_of(store).provisional_ids(A) == []


def test_database_down_logs_one_line_backs_off_and_recovers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 8 item 9: with the database down (migrations off) the worker logged a traceback
    every second. Now: one line, a growing wait, one line when it works again."""
    path = tmp_path / "not-yet" / "hub.db"
    store = Store.open(f"sqlite:///{path}", migrate_schema=False)
    s = two_sources()
    native_id = s.fakes[A].ids()[0]

    async def scenario() -> tuple[list[float], float, str]:
        runtime = HubRuntime(
            store,
            s.config,
            background=False,
            connector_factory=s.factory(),
            inbox_poll_seconds=1.0,
            inbox_backoff_max_seconds=8.0,
        )
        try:
            waits = [await runtime.inbox_pass() for _ in range(6)]
            path.parent.mkdir()
            migrate(store.engine)
            delivery = s.post(store, A, "upsert", native_id)
            wait_after = await runtime.inbox_pass()
            await runtime.worker.wait_lanes()
            return waits, wait_after, delivery
        finally:
            await runtime.stop()

    with caplog.at_level(logging.INFO, logger="opshub"):
        try:
            waits, wait_after, delivery = asyncio.run(scenario())
        finally:
            store.close()
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0, 8.0] and wait_after == 1.0
    runtime_lines = [r for r in caplog.records if r.name == "opshub.runtime"]
    assert len(runtime_lines) == 2, [r.getMessage() for r in runtime_lines]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in runtime_lines)
    assert "database" in runtime_lines[0].getMessage() or "OperationalError" in runtime_lines[0].getMessage()
    store = Store.open(f"sqlite:///{path}", migrate_schema=False)
    try:
        assert statuses(store) == {delivery: "done"}
    finally:
        store.close()
