"""The inbox's claims and dead deliveries: short renewed claims, apply-and-finish only by the
claim's holder, dead deliveries logged, listed and replayed (CLI and admin API)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from hub.api import create_app
from hub.cli import app as cli
from hub.db.tables import changes, webhook_inbox, webhook_inbox_bodies
from hub.group_commit import NewDelivery
from hub.settings import Settings
from hub.store import Store
from hub.store.inbox import MAX_ATTEMPTS, InboxStore
from hub.store.items import utcnow
from hub.store.keys import Scope
from hub.webhooks import InboxWorker
from tests.api_support import PROBLEM_JSON, bearer
from tests.webhook_support import Sources, statuses, two_sources

A = "acme-jira"


def worker_for(store: Store, s: Sources, **kwargs: object) -> InboxWorker:
    return InboxWorker(store, s.config, connector_factory=s.factory(), **kwargs)  # type: ignore[arg-type]


def drain(worker: InboxWorker) -> int:
    async def go() -> int:
        try:
            return await worker.drain()
        finally:
            await worker.aclose()

    return asyncio.run(go())


def age_claims(store: Store, seconds: float) -> None:
    """As if the claims were taken `seconds` ago and never renewed (their worker was killed)."""
    with store.engine.begin() as conn:
        conn.execute(update(webhook_inbox).values(claimed_at=utcnow() - timedelta(seconds=seconds)))


def change_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(changes)).scalar_one())


# ---------------------------------------------------------------------- claims


def test_a_killed_workers_claims_are_retried_within_seconds(store: Store) -> None:
    """Issue 8 item 11: they waited 5 minutes (the claim timeout)."""
    s = two_sources()
    delivery = s.post(store, A, "upsert", s.fakes[A].ids()[0])
    assert len(InboxStore(store.engine).claim()) == 1  # ... and its worker is killed (-9)
    age_claims(store, 5)
    assert drain(worker_for(store, s)) == 0  # a 5 s old claim may still be alive
    age_claims(store, 20)
    assert drain(worker_for(store, s)) == 1
    assert statuses(store) == {delivery: "done"}


def test_a_renewed_claim_is_not_taken_over(store: Store) -> None:
    s = two_sources()
    s.post(store, A, "upsert", s.fakes[A].ids()[0])
    inbox = InboxStore(store.engine, claim_ttl=timedelta(seconds=15))
    t0 = utcnow()
    (held,) = inbox.claim(now=t0)
    assert inbox.renew([held.claim_token], now=t0 + timedelta(seconds=10)) == 1
    assert inbox.claim(now=t0 + timedelta(seconds=20)) == []  # 10 s after the heartbeat
    (taken,) = inbox.claim(now=t0 + timedelta(seconds=26))  # 16 s after it: the holder is gone
    assert taken.claim_token != held.claim_token


def test_the_worker_heartbeats_the_claims_it_holds(store: Store) -> None:
    """A lane stuck on a hanging tool keeps its claims alive (renewed a third of the ttl apart)."""
    s = two_sources()
    s.post(store, A, "refetch", s.fakes[A].ids()[0])

    def claimed_at() -> object:
        with store.engine.connect() as conn:
            return conn.execute(select(webhook_inbox.c.claimed_at)).scalar_one()

    async def scenario() -> tuple[object, object]:
        worker = worker_for(store, s, claim_ttl=timedelta(seconds=0.3))
        try:
            s.switches[A].hang()
            await worker.process_once(wait=False)
            first = await asyncio.to_thread(claimed_at)
            for _ in range(500):  # bounded; each step yields to the heartbeat
                await asyncio.sleep(0.02)
                later = await asyncio.to_thread(claimed_at)
                if later != first:
                    break
            s.switches[A].up()
            await worker.wait_lanes()
            return first, later
        finally:
            await worker.aclose()

    first, later = asyncio.run(scenario())
    assert later > first  # type: ignore[operator]
    assert set(statuses(store).values()) == {"done"}


def test_only_the_claims_holder_applies_and_finishes(store: Store) -> None:
    """A worker whose claim lapsed and was taken over neither applies nor marks the row."""
    s = two_sources()
    native_id = s.fakes[A].ids()[0]
    delivery = s.post(store, A, "upsert", native_id)
    (stale,) = InboxStore(store.engine).claim()  # worker 1 claims, then stalls past the ttl
    age_claims(store, 60)
    assert drain(worker_for(store, s)) == 1  # worker 2 takes over and applies it
    after_takeover = change_count(store)
    assert InboxStore(store.engine).finish(stale, "failed", "late") is None
    assert statuses(store) == {delivery: "done"}
    with store.engine.begin() as conn:  # worker 1 resumes with its old claim
        conn.execute(update(webhook_inbox).values(status="processing"))
    late = worker_for(store, s)
    s.fakes[A].edit(native_id, summary="newer, but this claim is not ours")

    async def resume() -> str | None:
        try:
            return await late._handle(stale)  # the lane step of a stalled worker
        finally:
            await late.aclose()

    stale_body = orjson.loads(stale.body)
    stale_body["issue"]["fields"]["updated"] = "2030-01-01T00:00:00.000+0000"
    stale.body = orjson.dumps(stale_body)
    assert asyncio.run(resume()) is None
    assert change_count(store) == after_takeover


# ---------------------------------------------------------------------- dead deliveries


def _poison(store: Store, s: Sources) -> tuple[str, int]:
    """A delivery whose issue cannot be mapped (a garbled update time), on its last attempt."""
    delivery = s.post(store, A, "upsert", s.fakes[A].ids()[0])
    issue = {"id": "10001", "key": "PROJ-1", "fields": {"updated": "yesterday-ish"}}
    body = {"webhookEvent": "jira:issue_updated", "issue": issue}
    with store.engine.begin() as conn:
        conn.execute(update(webhook_inbox_bodies).values(body=orjson.dumps(body)))  # the body's own table (0023)
        conn.execute(update(webhook_inbox).values(attempts=MAX_ATTEMPTS - 1))
        inbox_id = conn.execute(select(webhook_inbox.c.id)).scalar_one()
    return delivery, int(inbox_id)


def test_a_dead_delivery_is_logged_with_source_id_and_error(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 8 item 11: mapping failures were parked as dead without a log line."""
    s = two_sources()
    delivery, _ = _poison(store, s)
    with caplog.at_level(logging.WARNING, logger="opshub"):
        drain(worker_for(store, s))
    assert statuses(store) == {delivery: "dead"}
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1
    assert A in lines[0] and delivery in lines[0] and "yesterday-ish" in lines[0]


def test_cli_lists_and_replays_dead_deliveries(store: Store, db_url: str) -> None:
    s = two_sources()
    delivery, inbox_id = _poison(store, s)
    drain(worker_for(store, s))
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--database-url", db_url, "inbox", *args])
        return result.exit_code, result.stdout + result.stderr

    code, out = run("list", "--status", "dead", "--source", A)
    assert code == 0 and delivery in out and "dead" in out and "yesterday-ish" in out
    code, out = run("list", "--status", "dead", "--source", "other-source")
    assert code == 0 and delivery not in out
    code, out = run("replay", str(inbox_id))
    assert code == 0 and delivery in out
    assert statuses(store) == {delivery: "pending"}
    assert InboxStore(store.engine).get(A, delivery) == {
        "status": "pending",
        "error": "mapping: 10001: updated_at: ValueError: Invalid isoformat string: 'yesterday-ish'",
        "attempts": 0,
    }
    drain(worker_for(store, s))  # fails again (attempts start over), so back to failed, not dead
    assert statuses(store) == {delivery: "failed"}
    with store.engine.begin() as conn:
        conn.execute(update(webhook_inbox).values(status="dead"))
    code, out = run("replay", "--all-dead", "--source", A)
    assert code == 0 and "queued 1 " in out
    assert statuses(store) == {delivery: "pending"}
    for bad in (["replay"], ["replay", str(inbox_id), "--all-dead"], ["replay", "999999"], ["list", "--status", "x"]):
        code, out = run(*bad)
        assert code != 0 and "Traceback" not in out, (bad, out)
    code, out = run("replay", "999999")
    assert out.strip().count("\n") == 0 and "999999" in out


def test_admin_api_lists_and_replays_dead_deliveries(store: Store) -> None:
    s = two_sources()
    delivery, inbox_id = _poison(store, s)
    drain(worker_for(store, s))
    app = create_app(store, Settings(database_url="sqlite://", background_tasks=False), config=s.config)
    admin = bearer(store.keys.create(Scope.admin)[1])
    reader = bearer(store.keys.create(Scope.read)[1])
    with TestClient(app) as client:
        listed = client.get("/v1/inbox", params={"status": "dead", "source": A}, headers=admin)
        assert listed.status_code == 200
        (entry,) = listed.json()["deliveries"]
        assert entry["delivery_id"] == delivery and entry["id"] == inbox_id and "yesterday-ish" in entry["error"]
        assert (
            client.get("/v1/inbox", params={"status": "dead", "source": "nope"}, headers=admin).json()["deliveries"]
            == []
        )
        forbidden = client.get("/v1/inbox", headers=reader)
        assert forbidden.status_code == 403 and forbidden.headers["content-type"] == PROBLEM_JSON
        assert client.post(f"/v1/inbox/{inbox_id}/replay", headers=reader).status_code == 403
        bad = client.get("/v1/inbox", params={"status": "gone"}, headers=admin)
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM_JSON
        missing = client.post("/v1/inbox/999999/replay", headers=admin)
        assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM_JSON
        replayed = client.post(f"/v1/inbox/{inbox_id}/replay", headers=admin)
        assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
        assert replayed.json()["attempts"] == 0
        with store.engine.begin() as conn:
            conn.execute(update(webhook_inbox).values(status="processing"))
        busy = client.post(f"/v1/inbox/{inbox_id}/replay", headers=admin)
        assert busy.status_code == 409 and busy.headers["content-type"] == PROBLEM_JSON
        with store.engine.begin() as conn:
            conn.execute(update(webhook_inbox).values(status="dead"))
        all_dead = client.post("/v1/inbox/dead/replay", params={"source": A}, headers=admin)
        assert all_dead.status_code == 200 and all_dead.json() == {"replayed": 1}
    assert statuses(store) == {delivery: "pending"}


def test_a_claim_commits_without_waiting_for_the_wal_flush_and_the_setting_ends_with_it(store: Store) -> None:
    """PostgreSQL: claims and renewals run with `synchronous_commit = off` for their own
    transaction only (SET LOCAL): the next transaction on the same connection (an apply,
    which marks deliveries done) commits durably again."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's")
    engine = create_engine(store.engine.url, pool_size=1, max_overflow=0)  # one connection: it is reused
    seen: list[str] = []

    @event.listens_for(engine, "commit")  # runs just before the COMMIT is sent
    def setting(conn: Connection) -> None:
        seen.append(conn.exec_driver_sql("SHOW synchronous_commit").scalar_one())

    try:
        inbox = InboxStore(engine)
        inbox.add("acme-jira", "d-1", {}, b"{}")
        claimed = inbox.claim(10)
        assert [d.delivery_id for d in claimed] == ["d-1"]
        assert inbox.renew([claimed[0].claim_token]) == 1
        with engine.connect() as conn:
            after = conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()
        assert seen == ["on", "off", "off"]  # the add, the claim, the renewal
        assert after == "on"
    finally:
        engine.dispose()


def test_one_claim_takes_due_rows_of_every_kind_in_id_order_and_skips_locked_ones(store: Store) -> None:
    """A claim takes, oldest first and at most `limit`, pending rows, failed rows due again and
    processing rows whose claim lapsed (on PostgreSQL in one statement); rows another
    transaction holds locked (another worker claiming or settling them) are skipped, not
    waited for."""
    inbox = InboxStore(store.engine)
    for n in range(6):
        inbox.add(A, f"d-{n}", {}, b"{}")
    now = utcnow()
    t = webhook_inbox.c
    with store.engine.begin() as conn:
        ids = list(conn.execute(select(t.id).order_by(t.id)).scalars())
        conn.execute(update(webhook_inbox).where(t.id == ids[1]).values(status="failed", next_attempt_at=now))
        conn.execute(
            update(webhook_inbox)
            .where(t.id == ids[2])
            .values(status="failed", next_attempt_at=now + timedelta(hours=1))
        )
        lapsed = now - inbox.claim_ttl - timedelta(seconds=1)
        conn.execute(update(webhook_inbox).where(t.id == ids[3]).values(status="processing", claimed_at=lapsed))
        conn.execute(update(webhook_inbox).where(t.id == ids[4]).values(status="processing", claimed_at=now))
    first = inbox.claim(2, now=now)
    assert [d.id for d in first] == [ids[0], ids[1]]
    assert {d.claim_token for d in first} == {first[0].claim_token}
    assert [d.attempts for d in first] == [1, 1]
    if store.engine.dialect.name != "postgresql":
        assert [d.id for d in inbox.claim(10, now=now)] == [ids[3], ids[5]]
        return
    with store.engine.connect() as holder:  # another worker's transaction holds row 5 locked
        holder.execute(select(t.id).where(t.id == ids[5]).with_for_update())
        assert [d.id for d in inbox.claim(10, now=now)] == [ids[3]]  # not waiting for row 5
        holder.rollback()
    assert [d.id for d in inbox.claim(10, now=now)] == [ids[5]]
    with store.engine.connect() as conn:
        assert conn.execute(select(t.status).where(t.id == ids[2])).scalar() == "failed"  # not due


def test_the_heartbeat_skips_rows_an_apply_holds_instead_of_waiting(store: Store) -> None:
    """PostgreSQL: a renewal does not wait for the transaction settling (applying) the claim's
    rows: it skips them, and renews them again once that transaction has ended."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    inbox = InboxStore(store.engine)
    for n in range(3):
        inbox.add(A, f"d-{n}", {}, b"{}")
    claimed = inbox.claim(10)
    token = claimed[0].claim_token
    with store.engine.connect() as applying:
        applying.begin()
        # The batch's transaction settles the first two and has not committed yet.
        settled = inbox.settle_held(applying, [(d, "done", None) for d in claimed[:2]])
        assert settled == {claimed[0].id, claimed[1].id}
        assert inbox.renew([token]) == 1  # the third row only; it did not wait for the two
        applying.rollback()  # e.g. the store refused the batch: the claims stand
    assert inbox.renew([token]) == 3
    assert set(statuses(store).values()) == {"processing"}


def test_claims_and_settles_read_only_their_own_rows_whatever_the_statistics(store: Store) -> None:
    """PostgreSQL: with a backlog the planner's statistics have not seen (no ANALYZE since it
    arrived), a claim still walks ix_webhook_inbox_status in id order and stops at its limit,
    and a settle finds its rows by primary key. Their plans were a bitmap scan of EVERY
    pending row sorted per claim, and a walk of every processing entry of the status index
    (dead ones included) per settle: O(backlog) each (bench/README.md, i13worker)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("the planner's choice is PostgreSQL's; SQLite's claim walks the index by itself")
    inbox = InboxStore(store.engine)
    inbox.add_many([NewDelivery(A, f"d-{n}", {}, b"{}") for n in range(3000)])
    sent: list[tuple[str, object]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def capture(_conn: Connection, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        if statement.lstrip().startswith(("WITH pick_0", "UPDATE webhook_inbox SET status")):
            sent.append((statement, parameters))

    try:
        claimed = inbox.claim(100)
        with store.engine.begin() as conn:
            inbox.settle_held(conn, [(d, "done", None) for d in claimed])
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)
    assert len(claimed) == 100 and len(sent) == 2
    (claim_sql, claim_params), (settle_sql, settle_params) = sent
    with store.engine.begin() as conn:  # EXPLAIN without ANALYZE plans and runs nothing
        inbox._no_flush_wait(conn, index_walks=True)  # the claim's own transaction settings
        claim_plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {claim_sql}", claim_params).scalars())  # type: ignore[arg-type]
    with store.engine.begin() as conn:
        settle_plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {settle_sql}", settle_params).scalars())  # type: ignore[arg-type]
    assert "Bitmap" not in claim_plan and "Sort Key: webhook_inbox" not in claim_plan, claim_plan
    assert claim_plan.count("Index Scan using ix_webhook_inbox_status") == 3, claim_plan
    assert "ix_webhook_inbox_status" not in settle_plan, settle_plan  # by key (or a seq scan of a small table)
