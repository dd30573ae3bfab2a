"""A sync run raises the collector's generation-0 threshold while it runs (hub/sync.py,
SYNC_GC_THRESHOLD) and gives the process its own threshold back after the last run, whether
the run succeeds or fails, and when runs of several sources overlap."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

import hub.sync as sync
from hub.store import Store
from hub.sync import SYNC_GC_THRESHOLD, SyncEngine, sync_gc_threshold
from tests.conformance.cases import CASES
from tests.test_hub_conformance import Harness

JIRA = next(case for case in CASES if case.id == "jira")


@pytest.fixture(autouse=True)
def own_threshold() -> Iterator[tuple[int, int, int]]:
    """A threshold of the process's own, distinct from the sync's, put back after the test."""
    before = gc.get_threshold()
    gc.set_threshold(701, 11, 12)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_a_run_stores_its_pages_under_the_sync_threshold_and_restores_the_process_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = Harness(JIRA, store, n=250)
    seen: list[tuple[int, int, int]] = []
    original = SyncEngine._store_page

    def store_page(self: SyncEngine, *args: Any) -> Any:
        seen.append(gc.get_threshold())
        return original(self, *args)

    monkeypatch.setattr(SyncEngine, "_store_page", store_page)
    run = harness.sync()
    assert run.status == "succeeded", run.error
    assert len(seen) >= 1  # every store of pages (pages waiting are stored together)
    assert set(seen) == {(SYNC_GC_THRESHOLD, 11, 12)}  # generations 1 and 2 keep theirs
    assert gc.get_threshold() == (701, 11, 12)


def test_a_failed_run_restores_the_threshold(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(JIRA, store, n=150)

    def boom(self: SyncEngine, *args: Any) -> Any:
        raise RuntimeError("the store broke")

    monkeypatch.setattr(SyncEngine, "_store_page", boom)
    with pytest.raises(RuntimeError):
        harness.sync()
    assert gc.get_threshold() == (701, 11, 12)


def test_overlapping_runs_restore_after_the_last_one_whatever_the_order() -> None:
    async def run(started: asyncio.Event, finish: asyncio.Event, log: list[int]) -> None:
        with sync_gc_threshold():
            started.set()
            await finish.wait()
        log.append(gc.get_threshold()[0])

    async def main() -> list[int]:
        log: list[int] = []
        events = [(asyncio.Event(), asyncio.Event()) for _ in range(3)]
        tasks = [asyncio.create_task(run(s, f, log)) for s, f in events]
        for started, _ in events:
            await started.wait()
        assert gc.get_threshold()[0] == SYNC_GC_THRESHOLD
        for _, finish in (events[1], events[0], events[2]):  # not in the order they began
            finish.set()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        return log

    assert asyncio.run(main()) == [SYNC_GC_THRESHOLD, SYNC_GC_THRESHOLD, 701]
    assert sync._gc_runs == 0


def test_a_process_threshold_above_the_syncs_is_kept() -> None:
    gc.set_threshold(SYNC_GC_THRESHOLD * 2, 11, 12)
    with sync_gc_threshold():
        assert gc.get_threshold() == (SYNC_GC_THRESHOLD * 2, 11, 12)
    assert gc.get_threshold() == (SYNC_GC_THRESHOLD * 2, 11, 12)
