"""The change log under concurrent writers: seqs gap-free, and never seen out of order.

Several threads apply many batches at once (some items private to a thread, some shared by
all of them with clashing versions) while a reader polls `changes WHERE seq > last_seen`
the way a feed consumer does. Because a writer holds the counter row until it commits,
commit order equals seq order: the reader must never see a seq appear below one it has
already seen, i.e. every poll returns exactly the seqs following the last one it saw.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.db.tables import changes, items
from hub.schema import ItemDeletion
from hub.store import Store
from tests.factories import BASE_TIME, make_item


def run_writers_and_reader(store: Store, *, writers: int, batches: int, batch_size: int) -> None:
    done = threading.Event()
    errors: list[BaseException] = []
    changed = [0] * writers
    observed: list[int] = []

    def writer(w: int) -> None:
        try:
            for b in range(batches):
                ops: list[object] = []
                for i in range(batch_size):
                    ops.append(make_item(f"w{w}-{b}-{i}", minutes=b, labels=[f"w{w}"]))
                # Shared items: every writer sends versions of them; only newer ones count.
                for shared in range(3):
                    ops.append(make_item(f"shared-{shared}", minutes=(b * writers + w) % 17))
                if b % 4 == 3:  # and tombstone one of its own items now and then
                    ops.append(
                        ItemDeletion(
                            source="acme-jira", native_id=f"w{w}-{b - 1}-0", deleted_at=BASE_TIME + timedelta(hours=1)
                        )
                    )
                changed[w] += store.items.apply(ops).changed  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        last = 0
        try:
            with store.engine.connect() as conn:
                while True:
                    finished = done.is_set()  # read the flag BEFORE the final poll
                    seqs = (
                        conn.execute(select(changes.c.seq).where(changes.c.seq > last).order_by(changes.c.seq))
                        .scalars()
                        .all()
                    )
                    conn.rollback()  # a fresh snapshot for the next poll (SQLite keeps one per transaction)
                    # Everything at or below `last` was already seen; a new batch must start
                    # right after it and have no holes, else a lower seq committed late.
                    assert seqs == list(range(last + 1, last + 1 + len(seqs))), (last, seqs[:5])
                    observed.extend(seqs)
                    if seqs:
                        last = seqs[-1]
                    if finished:
                        return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    poller = threading.Thread(target=reader)
    poller.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    poller.join()
    if errors:
        raise errors[0]

    total = sum(changed)
    with store.engine.connect() as conn:
        seqs = conn.execute(select(changes.c.seq).order_by(changes.c.seq)).scalars().all()
        item_count = conn.execute(select(func.count()).select_from(items)).scalar()
    assert seqs == list(range(1, total + 1))
    assert observed == seqs
    assert item_count == writers * batches * batch_size + 3
    # Shared items end at their newest version whatever the interleaving.
    newest = max((b * writers + w) % 17 for b in range(batches) for w in range(writers))
    for shared in range(3):
        doc = store.items.get(f"acme-jira:shared-{shared}")
        assert doc is not None
        assert doc["updated_at"].startswith((BASE_TIME + timedelta(minutes=newest)).strftime("%Y-%m-%dT%H:%M"))


@pytest.mark.postgres
def test_change_seq_gap_free_under_concurrent_writers_postgres(pg_store: Store) -> None:
    run_writers_and_reader(pg_store, writers=6, batches=25, batch_size=20)


def test_change_seq_gap_free_under_concurrent_writers_sqlite(sqlite_store: Store) -> None:
    run_writers_and_reader(sqlite_store, writers=2, batches=20, batch_size=20)
