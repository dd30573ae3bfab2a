"""What the intake's cheaper per-delivery path must still guarantee (bench/README.md, "Webhook path
at reference speed (branch i13hook4)"): a waiter awaits its group's future bare (no shield), so a
client that leaves while its group commits must not stop that group or the next; on PostgreSQL a
group is one autocommit statement that wakes the workers only when it stored something new.

The cancellation test was run in a loop (see the commit message for the count)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import psycopg
import pytest
from sqlalchemy import func, select

from hub.db.tables import webhook_inbox, webhook_inbox_bodies
from hub.group_commit import GroupCommitter, NewDelivery
from hub.inbox_wakeup import CHANNEL
from hub.store import Store
from hub.store.inbox import InboxStore

A = "acme-jira"


def new(delivery_id: str) -> NewDelivery:
    return NewDelivery(A, delivery_id, {"x-test": "1"}, b"{}")


def stored(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(webhook_inbox.c.delivery_id).order_by(webhook_inbox.c.id)).scalars())


def test_a_waiter_that_leaves_while_its_group_commits_leaves_the_group_and_the_next_one_whole(store: Store) -> None:
    inbox = InboxStore(store.engine)
    started, release = threading.Event(), threading.Event()

    def commit(group: Sequence[NewDelivery]) -> list[bool]:
        started.set()
        release.wait(5)  # the group's transaction, held open until the test lets it go
        return inbox.add_many(group)

    async def go() -> tuple[list[object], bool]:
        committer = GroupCommitter(commit)
        waiters = [asyncio.create_task(committer.submit(new(f"d{i}"))) for i in range(3)]
        while not started.is_set():  # the group of three is committing
            await asyncio.sleep(0.001)
        waiters[1].cancel()  # its client hung up
        await asyncio.sleep(0)
        release.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 2)
        later = await asyncio.wait_for(committer.submit(new("d3")), 2)  # the committer still runs
        await committer.aclose()
        return list(outcomes), later

    outcomes, later = asyncio.run(go())
    assert outcomes[0] is True and outcomes[2] is True
    assert isinstance(outcomes[1], asyncio.CancelledError)
    assert later is True
    assert stored(store) == ["d0", "d1", "d2", "d3"]  # the one whose client left was stored all the same


def test_a_postgresql_group_wakes_the_workers_once_and_only_when_it_stored_something(store: Store) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    inbox = InboxStore(store.engine)
    url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")

        def heard() -> int:
            return sum(1 for _ in listener.notifies(timeout=0.3))

        assert inbox.add_many([new("a"), new("b"), new("c")]) == [True, True, True]
        assert heard() == 1  # one wake-up for the group, not one per delivery
        assert inbox.add_many([new("a"), new("b")]) == [False, False]
        assert heard() == 0  # nothing new: no worker is woken
        assert inbox.add_many([new("b"), new("d")]) == [False, True]
        assert heard() == 1
    with store.engine.connect() as conn:
        bodies = conn.execute(select(func.count()).select_from(webhook_inbox_bodies)).scalar_one()
    assert stored(store) == ["a", "b", "c", "d"] and bodies == 4  # one body per new row, none for a repeat
