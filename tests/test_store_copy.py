"""PostgreSQL writes the items rows of ids new to the store with COPY (hub/store/bulk.py
`_Bulk.copy`), which has no ON CONFLICT: it relies on the absence `apply` read being settled.

- A writer that finds an id absent while another transaction is writing it must not read
  before that transaction commits: the counter lock, taken before the stored rows are read,
  makes it wait, then it finds the row and takes the update path (write-if-newer holds).
- The row COPY writes equals the row the INSERT path writes for the same values.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select, text

from hub.db.tables import changes, items
from hub.schema import WorkItem
from hub.store import Store
from hub.store.apply import _ITEM_COLUMNS, Applier, ApplyResult, _Current
from tests.factories import make_item

pytestmark = pytest.mark.postgres


def _waiting_on_a_lock(store: Store, timeout: float = 5.0) -> None:
    """Return once another backend of this database waits on a lock (the counter row)."""
    deadline = time.monotonic() + timeout
    with store.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()  # a new snapshot of pg_stat_activity on the next read
            time.sleep(0.005)
    raise AssertionError("the second writer never waited for the counter lock")


@pytest.mark.parametrize("minutes", [5, -5], ids=["newer", "older"])
def test_a_new_id_written_by_a_concurrent_transaction_is_found_after_the_lock(pg_store: Store, minutes: int) -> None:
    """Writer B applies an id that writer A's open transaction is inserting: B waits on the
    counter lock, then reads A's committed row, so B's version is decided against it (newer:
    an update; older: unchanged), never a second COPY of the id (a duplicate-key error).
    Fails if `Applier.run` reads the stored rows before taking the lock."""
    first = make_item("1", minutes=10, title="first")
    second = make_item("1", minutes=10 + minutes, title="second")
    outcome: list[ApplyResult | BaseException] = []

    def writer_b() -> None:
        try:
            outcome.append(pg_store.items.apply([second]))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    with pg_store.items.write_transaction() as conn:
        pg_store.items.apply([first], conn=conn)
        thread = threading.Thread(target=writer_b)
        thread.start()
        _waiting_on_a_lock(pg_store)
    thread.join(10)
    [result] = outcome
    assert isinstance(result, ApplyResult), result
    with pg_store.engine.connect() as conn:
        title = conn.execute(select(items.c.title).where(items.c.id == first.id)).scalar_one()
        seqs = conn.execute(select(changes.c.seq).order_by(changes.c.seq)).scalars().all()
    if minutes > 0:
        assert (result.upserted, title, seqs) == (1, "second", [1, 2])
    else:
        assert (result.unchanged, title, seqs) == (1, "first", [1])


def _row(store: Store, item_id: str) -> dict[str, Any]:
    with store.engine.connect() as conn:
        row = conn.execute(select(items).where(items.c.id == item_id)).mappings().one()
    return {name: row[name] for name in _ITEM_COLUMNS if name != "id"}


def test_copy_writes_the_row_the_insert_writes(pg_store: Store) -> None:
    """Every column through COPY's binary format (types read from the server) equals the
    INSERT path's: times, a float, a bool, a bigint, text with non-ASCII and NUL escapes.
    Fails if `_Bulk.copy` binds a column with another type or order."""
    item: WorkItem = make_item(
        "7",
        minutes=3,
        title="Zählerstand — ünïcode",
        kind="epic",
        priority={"level": "high", "name": "High"},
        container={"id": "10000", "key": "PROJ", "name": "Proj"},
        parent_id="acme-jira:1",
        rice={"reach": 10, "impact": 2, "confidence": 0.5, "effort": 4, "score": 2.5},
        created_at=make_item("0", minutes=1).updated_at,
        raw={"fields": {"summary": "a\u0000b", "n": 1}},
    )
    applier = Applier(pg_store.engine)
    current = {
        item_id: _Current(item.updated_at, None, False, None, is_new=True, dirty=True)
        for item_id in ("copied", "inserted")
    }
    for item_id, cur in current.items():
        cur.set_content(item.model_copy(update={"native_id": item_id}), item.updated_at, b'{"a": 1}', None)
    written = applier._item_rows({"copied": 1, "inserted": 2}, current, item.updated_at)
    rows = {row[0]: row for row in written.rows}
    with pg_store.engine.begin() as conn:
        applier._bulk.copy(conn, items, _ITEM_COLUMNS, [rows["copied"]])
        applier._bulk.insert(conn, items, _ITEM_COLUMNS, [rows["inserted"]], conflict=("id",))
    copied, inserted = _row(pg_store, "copied"), _row(pg_store, "inserted")
    assert copied["rice_score"] == 2.5 and copied["created_at"] is not None
    assert {**copied, "version": 2, "native_id": None} == {**inserted, "native_id": None}
