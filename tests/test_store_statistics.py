"""The store refreshes PostgreSQL's planner statistics as a sync grows it (hub/store/statistics.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from hub.store import Store
from hub.store.statistics import (
    ANALYZE_COARSE_FROM,
    ANALYZE_GROWTH,
    ANALYZE_MIN_ROWS,
    StatisticsKeeper,
    analyze_after,
)
from tests.conformance.cases import CASES
from tests.conftest import reset_database
from tests.factories import make_item
from tests.test_hub_conformance import Harness

JIRA = next(case for case in CASES if case.id == "jira")


def _analyses_of_items(store: Store) -> int:
    with store.engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        value = conn.execute(
            text(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'items' AND schemaname = current_schema()"
            )
        ).scalar()
    return int(value or 0)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_apply_analyses_the_tables_once_enough_items_were_written(store: Store) -> None:
    reset_database(store, truncate=True)  # the thresholds read reltuples: start from none
    before = _analyses_of_items(store)
    batches = [[make_item(n) for n in range(start, start + 400)] for start in range(0, 1200, 400)]
    for batch in batches[:2]:
        store.items.apply(batch)
        store.items.statistics.written(len(batch))
    assert _analyses_of_items(store) == before, "800 items are under the first threshold"
    store.items.apply(batches[2])
    store.items.statistics.written(len(batches[2]))
    assert _analyses_of_items(store) == before + 1
    with store.engine.connect() as conn:
        reltuples = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'items'::regclass")).scalar()
    assert reltuples == 1200, "the statistics saw every committed item"


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_analyse_does_not_wait_for_a_transaction_holding_rows(store: Store) -> None:
    reset_database(store, truncate=True)  # the thresholds read reltuples: start from none
    before = _analyses_of_items(store)
    with store.items.write_transaction() as conn:
        store.items.apply([make_item(n) for n in range(ANALYZE_MIN_ROWS)], conn=conn)
        store.items.statistics.written(ANALYZE_MIN_ROWS)
        # ANALYZE ran on its own connection while this transaction still holds its rows.
        assert _analyses_of_items(store) == before + 1
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM items")).scalar() == ANALYZE_MIN_ROWS


@pytest.fixture
def counting_keeper() -> Iterator[tuple[StatisticsKeeper, list[int]]]:
    engine = create_engine("sqlite://")
    keeper = StatisticsKeeper(engine)
    calls: list[int] = []
    keeper.enabled = True  # the counting, on any backend; ANALYZE itself is replaced
    keeper._known_rows = 0.0
    keeper.analyze = lambda: calls.append(1)  # type: ignore[method-assign]
    yield keeper, calls
    engine.dispose()


def test_analyses_follow_the_growth_of_the_store(counting_keeper: tuple[StatisticsKeeper, list[int]]) -> None:
    keeper, calls = counting_keeper
    keeper.written(ANALYZE_MIN_ROWS - 1)
    assert calls == []
    keeper.written(1)
    assert len(calls) == 1
    second = int(ANALYZE_MIN_ROWS + ANALYZE_GROWTH * ANALYZE_MIN_ROWS)
    keeper.written(second - 1)
    assert len(calls) == 1
    keeper.written(1)
    assert len(calls) == 2
    # A store of 100,000 items is analysed 6 times on the way, not per batch: x1.5 up to
    # ANALYZE_COARSE_FROM items, x4 beyond (each ANALYZE there samples 30,000 rows a table).
    total, at = ANALYZE_MIN_ROWS + second, []
    while total < 100_000:
        keeper.written(500)
        total += 500
        if len(calls) > len(at) + 2:
            at.append(total)
    assert at == [5000, 8500, 14000, 57000]


def test_beyond_the_coarse_size_the_store_is_analysed_at_four_times_its_size() -> None:
    assert analyze_after(ANALYZE_COARSE_FROM - 1) == ANALYZE_MIN_ROWS + ANALYZE_GROWTH * (ANALYZE_COARSE_FROM - 1)
    assert analyze_after(ANALYZE_COARSE_FROM) == ANALYZE_MIN_ROWS + 3 * ANALYZE_COARSE_FROM
    assert analyze_after(1_000_000) == ANALYZE_MIN_ROWS + 3_000_000


def test_sqlite_stores_never_analyse(sqlite_store: Store) -> None:
    assert sqlite_store.items.statistics.enabled is False
    sqlite_store.items.statistics.written(ANALYZE_MIN_ROWS + 1)
    assert sqlite_store.items.statistics._written == 0


def test_a_sync_notes_every_page_it_stored(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(JIRA, store, n=120)
    noted: list[int] = []
    monkeypatch.setattr(store.items.statistics, "written", noted.append)
    run = harness.sync()
    assert run.status == "succeeded", run.error
    assert sum(noted) == 120


def test_a_failed_analyse_is_logged_and_the_items_stay(caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine("sqlite://")  # no ANALYZE (SKIP_LOCKED) there: the statement fails
    keeper = StatisticsKeeper(engine)
    keeper.analyze()
    assert "store statistics not refreshed" in caplog.text
    engine.dispose()
