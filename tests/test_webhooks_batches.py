"""The webhook path in batches, on both backends: group commit at intake (atomic groups, no
202 before the commit, 503 when a group fails, duplicates inside one group and across groups)
and the worker's batches (one transaction per batch, per-item order, a poisoned delivery
retried alone).

The concurrency tests here were run in a loop (see the commit message for the count)."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from hub.api.app import create_app
from hub.db.tables import changes, webhook_inbox
from hub.group_commit import CommitFailed, GroupCommitter, NewDelivery
from hub.runtime import HubRuntime
from hub.schema import ItemDeletion, WorkItem
from hub.settings import Settings
from hub.store import Store
from hub.store.clock import utcnow
from hub.store.inbox import MAX_ATTEMPTS, InboxDelivery, InboxStore
from hub.sync import SYNC_GC_THRESHOLD, SyncEngine
from hub.webhooks import ClaimSize, InboxWorker, MappedDelivery
from tests.api_support import PROBLEM_JSON
from tests.webhook_support import SECRET, Sources, statuses, two_sources

A, B = "acme-jira", "beta-jira"


def inbox_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(webhook_inbox)).scalar_one())


def new(delivery_id: str, source: str = A, body: bytes | None = b"{}") -> NewDelivery:
    return NewDelivery(source, delivery_id, {"x-test": "1"}, body)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- group commit


def test_add_many_reports_new_and_duplicates_in_order_inside_and_across_groups(store: Store) -> None:
    inbox = InboxStore(store.engine)
    assert inbox.add_many([new("d1"), new("d2"), new("d1"), new("d1", source=B)]) == [True, True, False, True]
    assert inbox.add_many([new("d2"), new("d3"), new("d3")]) == [False, True, False]
    assert inbox_count(store) == 4
    t = webhook_inbox.c
    with store.engine.connect() as conn:
        order = [tuple(r) for r in conn.execute(select(t.source, t.delivery_id).order_by(t.id))]
    assert order == [(A, "d1"), (A, "d2"), (B, "d1"), (A, "d3")]  # inbox ids follow arrival


def test_a_group_is_stored_whole_or_not_at_all(store: Store) -> None:
    inbox = InboxStore(store.engine)
    with pytest.raises(IntegrityError):
        inbox.add_many([new("ok-1"), new("bad", body=None), new("ok-2")])  # body is NOT NULL
    assert inbox_count(store) == 0


def test_concurrent_deliveries_share_commits_and_each_learns_its_own_outcome(store: Store) -> None:
    inbox = InboxStore(store.engine)
    inbox.add_many([new("seen-before")])
    calls: list[int] = []

    def commit(group: Sequence[NewDelivery]) -> list[bool]:
        calls.append(len(group))
        return inbox.add_many(group)

    async def go() -> list[bool]:
        committer = GroupCommitter(commit, max_group=16)
        ids = [f"d{i % 40}" for i in range(60)] + ["seen-before"]  # 20 repeats, one stored before
        results = await asyncio.gather(*(committer.submit(new(i)) for i in ids))
        await committer.aclose()
        return list(results)

    results = asyncio.run(go())
    assert sum(results) == 40 and results[:40] == [True] * 40 and not any(results[40:])
    assert len(calls) < 61 and max(calls) <= 16 and sum(calls) == 61  # grouped, bounded
    assert inbox_count(store) == 41


def test_a_failed_group_fails_every_waiter_and_the_next_group_still_commits(store: Store) -> None:
    inbox = InboxStore(store.engine)
    fail_next = [True]

    def commit(group: Sequence[NewDelivery]) -> list[bool]:
        if fail_next[0]:
            fail_next[0] = False
            raise RuntimeError("disk full")
        return inbox.add_many(group)

    async def go() -> tuple[list[object], bool]:
        committer = GroupCommitter(commit)
        first = await asyncio.gather(*(committer.submit(new(f"a{i}")) for i in range(5)), return_exceptions=True)
        later = await committer.submit(new("a0"))  # the tool's retry of a delivery of the failed group
        await committer.aclose()
        return list(first), later

    first, later = asyncio.run(go())
    assert all(isinstance(r, CommitFailed) for r in first)
    assert later is True  # stored now, as new: the failed group left nothing behind
    assert statuses(store) == {"a0": "pending"}


def _client(store: Store, s: Sources) -> TestClient:
    app = create_app(store, Settings(background_tasks=False), config=s.config, connector_factory=s.factory())
    return TestClient(app)


def test_the_route_answers_503_with_retry_after_when_its_group_is_not_committed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = two_sources()
    fake = s.fakes[A]
    with _client(store, s) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]

        def broken(_group: Sequence[NewDelivery]) -> list[bool]:
            raise RuntimeError("database is locked")

        monkeypatch.setattr(runtime.intake.committer, "_commit", broken)
        headers, body = fake.webhook("upsert", fake.ids()[0], secret=SECRET)
        response = client.post(f"/webhooks/{A}", headers=headers, content=body)
        assert response.status_code == 503
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.headers["retry-after"] == "5"
        assert "could not be stored" in response.json()["detail"]
        assert inbox_count(store) == 0
        monkeypatch.undo()
        again = client.post(f"/webhooks/{A}", headers=headers, content=body)  # the tool retries
        assert again.status_code == 202 and again.json()["duplicate"] is False
        assert client.post(f"/webhooks/{A}", headers=headers, content=body).json()["duplicate"] is True
    assert inbox_count(store) == 1


# ---------------------------------------------------------------------- the worker's batches


def worker_for(store: Store, s: Sources) -> InboxWorker:
    return InboxWorker(store, s.config, connector_factory=s.factory())


def run(worker: InboxWorker, *limits: int) -> None:
    """Passes with these claim sizes, then a drain; the worker is closed after."""

    async def go() -> None:
        try:
            for limit in limits:
                await worker.process_once(limit)
            await worker.drain()
        finally:
            await worker.aclose()

    asyncio.run(go())


def item_changes(store: Store, item_id: str) -> list[int]:
    t = changes.c
    with store.engine.connect() as conn:
        return list(conn.execute(select(t.seq).where(t.item_id == item_id).order_by(t.seq)).scalars())


def test_per_item_order_is_kept_within_and_across_batches(store: Store) -> None:
    """Five edits of one issue among other deliveries, claimed 3 at a time and then all at
    once: every edit is applied after the one before (each one is a change; an edit applied
    after a newer one would have been skipped as older), and the last edit is what is stored."""
    s = two_sources()
    fake = s.fakes[A]
    hot, others = fake.ids()[0], fake.ids()[1:6]
    for n in range(5):
        fake.edit(hot, summary=f"edit {n}")
        s.post(store, A, "upsert", hot)
        s.post(store, A, "upsert", others[n])
        s.post(store, B, "upsert", s.fakes[B].ids()[n])
    run(worker_for(store, s), 3, 3)
    assert set(statuses(store).values()) == {"done"}
    assert len(item_changes(store, f"{A}:{hot}")) == 5
    assert (store.items.get(f"{A}:{hot}") or {})["title"] == "edit 4"


def test_a_batch_is_applied_in_one_transaction(store: Store) -> None:
    s = two_sources()
    for native_id in s.fakes[A].ids()[:30]:
        s.post(store, A, "upsert", native_id)
    worker = worker_for(store, s)
    batches: list[int] = []
    commit_batch = worker._commit_batch

    def counting(batch: Sequence[tuple[InboxDelivery, MappedDelivery]]) -> list[str | None]:
        batches.append(len(batch))
        return commit_batch(batch)

    worker._commit_batch = counting  # type: ignore[method-assign]
    run(worker)
    assert batches == [30]
    assert set(statuses(store).values()) == {"done"}


def test_what_is_mapped_is_applied_before_a_refetch_asks_a_hanging_tool(store: Store) -> None:
    """A refetch in the middle of a batch: the deliveries mapped before it are applied (and
    queryable) while the tool hangs; the rest of the batch is applied once the tool answers.
    The batch is otherwise one transaction, however long its mapping takes (no timer)."""
    s = two_sources()
    asyncio.run(SyncEngine(store, s.config, connector_factory=s.factory()).run(A))  # a stored context
    ids = s.fakes[A].ids()
    before = [s.post(store, A, "upsert", ids[n]) for n in range(3)]
    refetch = s.post(store, A, "refetch", ids[3])
    after = s.post(store, A, "upsert", ids[4])
    worker = worker_for(store, s)
    batches: list[list[str]] = []
    commit_batch = worker._commit_batch

    def recording(batch: Sequence[tuple[InboxDelivery, MappedDelivery]]) -> list[str | None]:
        batches.append([delivery.delivery_id for delivery, _ in batch])
        return commit_batch(batch)

    worker._commit_batch = recording  # type: ignore[method-assign]

    async def scenario() -> dict[str, str]:
        try:
            s.switches[A].hang()
            await worker.process_once(wait=False)
            for _ in range(1000):  # until the refetch asks the hanging tool and the first commit is in
                if s.switches[A].requests and statuses(store)[before[-1]] == "done":
                    break
                await asyncio.sleep(0.01)
            during = statuses(store)
            s.switches[A].up()
            await worker.wait_lanes()
            return during
        finally:
            await worker.aclose()

    during = asyncio.run(scenario())
    assert {d: during[d] for d in before} == dict.fromkeys(before, "done")
    assert during[refetch] == during[after] == "processing"
    assert batches == [before, [refetch, after]]
    assert set(statuses(store).values()) == {"done"}


class _PastALimit(Exception):
    """What psycopg raises for a value past one of PostgreSQL's limits (an index entry over
    2,704 bytes): SQLSTATE class 54, as an OperationalError (hub/store/bulk.py `past_a_limit`)."""

    sqlstate = "54000"


@pytest.mark.parametrize(
    "refusal",
    [
        DataError("INSERT ...", {}, ValueError("value out of range")),
        OperationalError("INSERT ...", {}, _PastALimit("index row size 3016 exceeds btree maximum, 2704")),
    ],
    ids=["data-error", "past-a-limit"],
)
def test_a_poisoned_delivery_fails_alone_and_the_rest_of_its_batch_is_applied(
    store: Store, monkeypatch: pytest.MonkeyPatch, refusal: Exception
) -> None:
    """The store refuses one delivery's item (as a database refuses a value, or a value past
    one of PostgreSQL's limits, which psycopg raises as an OperationalError): the batch falls
    back to one delivery at a time, so only that one fails (on its last attempt: dead)."""
    s = two_sources()
    ids = s.fakes[A].ids()[:6]
    delivered = {native_id: s.post(store, A, "upsert", native_id) for native_id in ids}
    poisoned = f"{A}:{ids[2]}"
    with store.engine.begin() as conn:
        conn.execute(
            update(webhook_inbox)
            .where(webhook_inbox.c.delivery_id == delivered[ids[2]])
            .values(attempts=MAX_ATTEMPTS - 1)
        )
    apply = store.items.apply

    def refusing(ops: Iterable[WorkItem | ItemDeletion], **kwargs: object) -> object:
        ops = list(ops)
        if any(op.id == poisoned for op in ops):
            raise refusal
        return apply(ops, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store.items, "apply", refusing)
    run(worker_for(store, s))
    got = statuses(store)
    assert got.pop(delivered[ids[2]]) == "dead"
    assert set(got.values()) == {"done"}
    assert store.items.get(poisoned) is None
    assert all(store.items.get(f"{A}:{i}") is not None for i in ids if f"{A}:{i}" != poisoned)
    entry = InboxStore(store.engine).get(A, delivered[ids[2]])
    assert entry is not None and str(refusal.orig) in entry["error"]  # type: ignore[attr-defined]


def test_a_store_that_is_down_fails_the_lane_without_spending_attempts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection errors are not the delivery's fault: nothing is marked failed, the claims lapse."""
    s = two_sources()
    for native_id in s.fakes[A].ids()[:4]:
        s.post(store, A, "upsert", native_id)

    def down(*_args: object, **_kwargs: object) -> object:
        raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(store.items, "apply", down)
    worker = worker_for(store, s)

    async def go() -> None:
        try:
            await worker.process_once()
        finally:
            await worker.aclose()

    asyncio.run(go())
    assert set(statuses(store).values()) == {"processing"}  # left to lapse, not failed
    assert [p.status for p in worker.recent] == ["interrupted"] * 4


# ---------------------------------------------------------------------- wake-up across processes

_ADD_IN_ANOTHER_PROCESS = """
import sys, orjson
from hub.db.engine import make_engine
from hub.store.inbox import InboxStore
url, source, delivery_id, headers = sys.argv[1:5]
engine = make_engine(url)
assert InboxStore(engine).add(source, delivery_id, orjson.loads(headers), sys.stdin.buffer.read())
engine.dispose()
"""


def test_a_worker_is_woken_by_a_delivery_committed_in_another_process(store: Store) -> None:
    """PostgreSQL: the intake's NOTIFY wakes a worker in another process at once; its poll
    interval (60 s here) would otherwise be the wait."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite the worker shares the intake's process")
    s = two_sources()
    fake = s.fakes[A]
    headers, body = fake.webhook("upsert", fake.ids()[0], secret=SECRET)
    delivery_id = headers["X-Atlassian-Webhook-Identifier"]
    kept = orjson.dumps({k.lower(): v for k, v in headers.items() if k.lower() != "x-hub-signature"}).decode()
    runtime = HubRuntime(store, s.config, inbox_poll_seconds=60, connector_factory=s.factory())
    url = store.engine.url.render_as_string(hide_password=False)

    async def go() -> float:
        await runtime.start()
        try:
            assert runtime._listener is not None
            assert await asyncio.to_thread(runtime._listener.listening.wait, 10)
            await asyncio.sleep(0.3)  # the first (empty) pass is over: the loop waits up to 60 s
            loop = asyncio.get_running_loop()
            started = loop.time()
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", _ADD_IN_ANOTHER_PROCESS, url, A, delivery_id, kept, stdin=asyncio.subprocess.PIPE
            )
            await proc.communicate(body)
            assert proc.returncode == 0
            while statuses(store).get(delivery_id) != "done":
                assert loop.time() - started < 15, "the worker was not woken"
                await asyncio.sleep(0.02)
            return loop.time() - started
        finally:
            await runtime.stop()

    assert asyncio.run(go()) < 15
    assert runtime.worker.passes >= 2


def test_claims_grow_while_a_backlog_lasts_and_shrink_once_it_is_gone() -> None:
    size = ClaimSize(200)
    seen = []
    for claimed in (200, 400, 800, 800, 0, 800, 37, 0, 200):
        seen.append(size.current)
        size.after(claimed)
    assert seen == [200, 400, 800, 800, 800, 800, 800, 200, 200]
    assert size.current == 400


def test_a_pass_while_every_source_is_busy_runs_no_claim(store: Store) -> None:
    """The serve loop is woken by every group commit: while each source's lane is still at
    work, a pass must not run a claim (a write transaction walking the busy backlogs)."""
    s = two_sources()
    asyncio.run(SyncEngine(store, s.config, connector_factory=s.factory()).run(A))
    asyncio.run(SyncEngine(store, s.config, connector_factory=s.factory()).run(B))
    for source in (A, B):
        s.post(store, source, "refetch", s.fakes[source].ids()[0])
        s.post(store, source, "upsert", s.fakes[source].ids()[1])  # waits behind the refetch
    worker = worker_for(store, s)
    claims: list[set[str]] = []
    claim = worker.inbox.claim

    def counting(limit: int = 50, *, skip_sources: Iterable[str] = ()) -> list[InboxDelivery]:
        claims.append(set(skip_sources))
        return claim(limit, skip_sources=skip_sources)

    worker.inbox.claim = counting  # type: ignore[method-assign]

    async def scenario() -> tuple[int, int]:
        try:
            s.switches[A].hang()
            s.switches[B].hang()
            first = await worker.process_once(wait=False)  # both lanes start and wait for their tools
            claims_then = len(claims)
            again = await worker.process_once(wait=False)
            assert len(claims) == claims_then  # no claim while both lanes are busy
            s.switches[A].up()
            s.switches[B].up()
            await worker.wait_lanes()
            return first, again
        finally:
            await worker.aclose()

    first, again = asyncio.run(scenario())
    assert (first, again) == (4, 0)
    assert set(statuses(store).values()) == {"done"}


def test_a_lane_applies_under_the_sync_gc_threshold_and_restores_the_process_one(store: Store) -> None:
    """The inbox worker's batches allocate like a sync's pages: a lane runs under the sync's
    generation-0 threshold (hub/sync.py SYNC_GC_THRESHOLD) and gives the process its own back
    after, also when its batch fails."""
    s = two_sources()
    for native_id in s.fakes[A].ids()[:3]:
        s.post(store, A, "upsert", native_id)
    worker = worker_for(store, s)
    seen: list[tuple[int, int, int]] = []
    commit_batch = worker._commit_batch

    def committing(batch: Sequence[tuple[InboxDelivery, MappedDelivery]]) -> list[str | None]:
        seen.append(gc.get_threshold())
        return commit_batch(batch)

    worker._commit_batch = committing  # type: ignore[method-assign]
    before = gc.get_threshold()
    gc.set_threshold(701, 11, 12)
    try:
        run(worker)
        assert seen == [(SYNC_GC_THRESHOLD, 11, 12)]
        assert gc.get_threshold() == (701, 11, 12)
        s.post(store, A, "upsert", s.fakes[A].ids()[3])
        worker = worker_for(store, s)

        def down(*_args: object) -> list[str | None]:
            raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))

        worker._commit_batch = down  # type: ignore[method-assign]
        run(worker)
        assert gc.get_threshold() == (701, 11, 12)
    finally:
        gc.set_threshold(*before)
    assert set(statuses(store).values()) == {"done", "processing"}


# ---------------------------------------------------------------------- the pipelined lane


def _pipelined(store: Store, s: Sources, second: str) -> tuple[InboxWorker, threading.Event]:
    """A worker whose lane claims and maps its next batch while the one before commits (on
    both backends here: the order and the claims are the subject, not the speed), and an event
    set once the delivery `second` is mapped."""
    worker = worker_for(store, s)
    worker.pipeline = True
    mapped = threading.Event()
    prepare = worker._prepare

    async def preparing(delivery: InboxDelivery, before_tool: Any = None) -> object:
        outcome = await prepare(delivery, before_tool)
        if delivery.delivery_id == second:
            mapped.set()
        return outcome

    worker._prepare = preparing  # type: ignore[method-assign, assignment]
    return worker, mapped


def test_a_pipelined_lane_commits_the_next_batch_only_after_the_one_before(store: Store) -> None:
    """Two edits of one issue in two batches of one delivery: the second is claimed and
    mapped while the first's transaction is held open, and its transaction starts only once
    the first committed (started before, it would commit first and the older edit after it)."""
    s = two_sources()
    fake = s.fakes[A]
    hot = fake.ids()[0]
    fake.edit(hot, summary="older")
    first = s.post(store, A, "upsert", hot)
    fake.edit(hot, summary="newer")
    second = s.post(store, A, "upsert", hot)
    worker, mapped = _pipelined(store, s, second)
    events: list[str] = []
    second_started = threading.Event()
    commit_batch = worker._commit_batch

    def committing(batch: Sequence[tuple[InboxDelivery, MappedDelivery]]) -> list[str | None]:
        (delivery,) = [d.delivery_id for d, _ in batch]
        name = "1" if delivery == first else "2"
        events.append(f"start {name}")
        if name == "1":
            assert mapped.wait(5)  # batch 2 is claimed and mapped while batch 1 is not committed
            events.append("2 mapped")
            second_started.wait(0.1)  # were batch 2's commit started now, it would be seen here
        else:
            second_started.set()
        outcome = commit_batch(batch)
        events.append(f"end {name}")
        return outcome

    worker._commit_batch = committing  # type: ignore[method-assign]

    async def go() -> int:
        try:
            return await worker.process_once(1)
        finally:
            await worker.aclose()

    assert asyncio.run(go()) == 2  # the pass's claim and the lane's own
    assert events == ["start 1", "2 mapped", "end 1", "start 2", "end 2"]
    assert set(statuses(store).values()) == {"done"}
    assert len(item_changes(store, f"{A}:{hot}")) == 2
    assert (store.items.get(f"{A}:{hot}") or {})["title"] == "newer"


def test_a_store_failure_during_a_pipelined_commit_leaves_both_batches_for_retry(store: Store) -> None:
    """The store goes down while batch 1 commits and batch 2 is already claimed and mapped:
    neither is applied nor marked, both claims are given up (the heartbeat stops) and lapse,
    and a later worker applies both."""
    s = two_sources()
    ids = s.fakes[A].ids()[:2]
    first, second = (s.post(store, A, "upsert", native_id) for native_id in ids)
    worker, mapped = _pipelined(store, s, second)

    def down(batch: Sequence[tuple[InboxDelivery, MappedDelivery]]) -> list[str | None]:
        assert mapped.wait(5)
        raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    worker._commit_batch = down  # type: ignore[method-assign]

    async def go() -> None:
        try:
            await worker.process_once(1)
        finally:
            await worker.aclose()

    asyncio.run(go())
    assert statuses(store) == {first: "processing", second: "processing"}  # left to lapse
    assert sorted((p.delivery_id, p.status) for p in worker.recent) == sorted(
        [(first, "interrupted"), (second, "interrupted")]
    )
    assert worker._held == {}
    assert all(store.items.get(f"{A}:{native_id}") is None for native_id in ids)
    with store.engine.begin() as conn:  # the claims lapse
        conn.execute(update(webhook_inbox).values(claimed_at=utcnow() - timedelta(seconds=60)))
    run(worker_for(store, s))
    assert statuses(store) == {first: "done", second: "done"}
    assert all(store.items.get(f"{A}:{native_id}") is not None for native_id in ids)
