"""A record the store cannot hold is a record error of its run; the rest of its page lands
and the sync moves on (issue 8, item 10: "a sync stays stuck on that page for ever").

Runs through the sync engine with the fake Jira of the conformance suite (the logic is the
same for every tool) on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.exc import DataError, OperationalError

from connectors.base import ConnectorError, Page
from hub.schema import WorkItem
from hub.store import Store
from hub.store.items import ItemStore
from hub.sync import _joined, _prefetch
from tests.conformance.cases import CASES
from tests.test_hub_conformance import SOURCE, Harness

N = 120
JIRA = next(case for case in CASES if case.id == "jira")


@pytest.fixture
def harness(store: Store) -> Harness:
    return Harness(JIRA, store, n=N)


def refuse(monkeypatch: pytest.MonkeyPatch, native_ids: set[str], error: Exception | None = None) -> list[int]:
    """Make apply fail (as the database would) for any batch holding one of `native_ids`."""
    original = ItemStore._apply
    calls: list[int] = []

    def _apply(self: ItemStore, conn: Any, batch: list[Any], *args: Any) -> Any:
        calls.append(len(batch))
        if any(isinstance(op, WorkItem) and op.native_id in native_ids for op in batch):
            raise error or DataError("INSERT ...", None, Exception("value too long for type character varying(255)"))
        return original(self, conn, batch, *args)

    monkeypatch.setattr(ItemStore, "_apply", _apply)
    return calls


def test_a_refused_record_is_a_record_error_and_the_rest_lands(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(harness.fake.ids())
    bad = {ids[7], ids[70]}
    calls = refuse(monkeypatch, bad)
    run = harness.sync()
    assert run.status == "succeeded", run.error
    assert run.failed_records == 2
    assert sorted(e["native_id"] for e in run.record_errors) == sorted(bad)
    assert all("refused by the store" in e["error"] for e in run.record_errors)
    assert run.changed == N - 2
    assert harness.stored_ids() == set(ids) - bad
    assert harness.engine().runs.list(SOURCE)[0].record_errors == run.record_errors
    # Halving: each refused record costs about log2(page) extra transactions, not one per record.
    assert len(calls) < N
    # The cursor moved past the page: the next run does not stick on the refused records.
    again = harness.sync()
    assert again.status == "succeeded" and again.mode == "incremental"
    assert again.changed == 0 and again.failed_records == 0
    # Once the store takes the record, its next edit arrives as usual.
    monkeypatch.undo()
    harness.fake.edit(ids[7])
    later = harness.sync()
    assert later.changed == 1
    assert harness.stored_ids() == set(ids) - {ids[70]}


def test_an_unreachable_database_fails_the_run_without_moving_the_cursor(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(harness.fake.ids())
    refuse(monkeypatch, {ids[0]}, OperationalError("INSERT ...", None, Exception("server closed the connection")))
    with pytest.raises(OperationalError):
        harness.sync()
    run = harness.engine().runs.list(SOURCE)[0]
    assert run.status == "failed"
    assert harness.store.items.load_cursor(SOURCE, "items") is None  # nothing passed the first page
    assert harness.stored_ids() == set()


def test_nul_in_a_record_lands_on_both_backends(harness: Harness) -> None:
    ids = sorted(harness.fake.ids())
    harness.fake.edit(ids[3], summary="before\x00after")
    run = harness.sync()
    assert run.status == "succeeded", run.error
    assert run.failed_records == 0 and run.changed == N
    doc = harness.store.items.get(f"{SOURCE}:{ids[3]}")
    assert doc is not None
    assert doc["title"] == "before\ufffdafter"


def test_a_label_too_long_for_a_postgresql_index_is_a_record_error_not_a_failed_run(harness: Harness) -> None:
    """Labels are stored whole (migration 0025), so one of ~3,000 bytes that do not compress
    exceeds PostgreSQL's B-tree entry (SQLSTATE 54000, an OperationalError in psycopg): that
    record is refused and the rest of its page lands. SQLite stores it."""
    ids = sorted(harness.fake.ids())
    label = "".join(random.Random(13).choices(string.ascii_letters, k=3000))
    harness.fake.edit(ids[5], labels=[label])
    run = harness.sync()
    assert run.status == "succeeded", run.error
    if harness.store.engine.dialect.name == "postgresql":
        assert [e["native_id"] for e in run.record_errors] == [ids[5]]
        assert "exceeds btree" in run.record_errors[0]["error"]
        assert harness.stored_ids() == set(ids) - {ids[5]}
    else:
        assert run.failed_records == 0
        doc = harness.store.items.get(f"{SOURCE}:{ids[5]}")
        assert doc is not None and doc["labels"] == [label]


# ---------------------------------------------------------------- pages stored together


def test_prefetch_hands_over_the_pages_waiting_then_the_failure_behind_them() -> None:
    """`_prefetch` yields every page fetched before a failure, at most `depth` at a time, and
    only then raises the failure; a page is never held back to wait for more."""

    async def fetch() -> AsyncIterator[Page]:
        for n in range(6):
            yield Page(records=[{"n": n}], cursor=str(n))
        raise ConnectorError("page 7 failed")

    got: list[list[str | None]] = []

    async def consume() -> None:
        async for ready in _prefetch(fetch(), 4):
            await asyncio.sleep(0.01)  # a slow store: the pages queue up meanwhile
            got.append([page.cursor for page in ready])

    with pytest.raises(ConnectorError, match="page 7"):
        asyncio.run(consume())
    assert [c for ready in got for c in ready] == [str(n) for n in range(6)]
    assert all(1 <= len(ready) <= 4 for ready in got) and len(got) < 6


def test_joined_pages_keep_every_record_and_the_last_cursor() -> None:
    pages = [Page([{"n": 1}], "c1"), Page([{"n": 2}, {"n": 3}], "c2"), Page([], None)]
    joined = _joined(pages)
    assert joined.records == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert joined.cursor == "c2"
    assert _joined([Page([], None)]).cursor is None
