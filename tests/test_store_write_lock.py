"""Writers that read first never fail with "database is locked" on SQLite.

A deferred `BEGIN` that reads and then writes is upgraded to a writer at its first write; if
another connection committed in between, SQLite fails it at once, whatever busy_timeout says.
Every store write therefore starts with `write_transaction` (BEGIN IMMEDIATE). These threads
all read-then-write the same tables at once: before that helper, several of them failed.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from hub.store import Store
from hub.store.runs import RunInProgress, RunStore


def _hammer(store: Store, worker: int, errors: list[BaseException]) -> None:
    runs = RunStore(store.engine)
    try:
        for i in range(25):
            name = f"src-{worker}-{i % 5}"
            runs.ensure_source(name, "jira")
            try:
                run_id = runs.start(name, "full", stale_after=timedelta(seconds=0))
            except RunInProgress:
                continue
            runs.heartbeat(run_id, {"pages": i}, None)
            runs.finish(run_id, "succeeded", {"pages": i}, None)
    except BaseException as exc:
        errors.append(exc)


def test_concurrent_read_then_write_transactions_never_fail(store: Store) -> None:
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_hammer, args=(store, w, errors)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    runs = RunStore(store.engine)
    assert len(runs.list("src-0-0")) == 5
