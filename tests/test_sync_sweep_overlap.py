"""A full run's deletion sweep lists ids while the pages are fetched, not after them, and
still tombstones exactly what the tool deleted; a run that fails stops its listing."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from connectors.base import Connector
from fakes.common import asgi_transport
from fakes.jira import FakeJira
from hub.config import HubConfig, SourceDefinition, parse_config
from hub.store import Store
from hub.sync import SyncEngine

SOURCE = "jira-sweep"


def _setup(store: Store, n: int, latency: float) -> tuple[FakeJira, SyncEngine]:
    fake = FakeJira(n)
    fake.faults.latency = latency  # every request yields to the loop, as a network does
    raw: dict[str, Any] = {
        "tool": "jira",
        "base_url": fake.base_url,
        "email": fake.email,
        "api_token": fake.api_token,
        "projects": list(fake.projects),
        "page_size": 50,
    }
    config: HubConfig = parse_config({"sources": {SOURCE: raw}})

    async def no_wait(seconds: float) -> None:  # retries back off without the test waiting
        await asyncio.sleep(0)

    def connector(source: SourceDefinition) -> Connector:
        return source.connector_cls(source.name, source.config, transport=asgi_transport(fake.app), sleep=no_wait)

    return fake, SyncEngine(store, config, connector_factory=connector)


def _is_listing(entry: Any) -> bool:
    """The sweep's id listing (by id; a full run's own listing of its pages is by update time)."""
    return entry.path.endswith("/search/jql") and entry.query.get("jql", [""])[0].endswith("ORDER BY id ASC")


def _is_search_page(entry: Any) -> bool:
    """A page of an incremental run: a search asking for the issues' fields."""
    return bool(entry.path.endswith("/search/jql")) and entry.query.get("fields") != ["id"]


def test_the_id_listing_runs_beside_the_pages(store: Store) -> None:
    """An incremental run with a sweep lists ids while its pages are fetched. (A full Jira run
    lists its ids before its pages and the sweep takes that listing:
    test_a_full_run_sweeps_with_the_listing_of_its_pages.)"""
    fake, engine = _setup(store, 300, latency=0.01)
    assert asyncio.run(engine.run(SOURCE, full=True, sweep=False)).status == "succeeded"
    for native_id in sorted(fake.ids())[:120]:
        fake.edit(native_id)  # pages for the incremental run
    fake.log.clear()
    run = asyncio.run(engine.run(SOURCE, sweep=True))
    assert run.status == "succeeded", run.error
    listing_at = next(k for k, e in enumerate(fake.log.entries) if _is_listing(e))
    last_page_at = max(k for k, e in enumerate(fake.log.entries) if _is_search_page(e))
    assert listing_at < last_page_at, "the sweep's listing waited for the pages"
    assert run.fetched >= 120 and run.deleted == 0


def test_a_full_run_sweeps_with_the_listing_of_its_pages(store: Store) -> None:
    """A full Jira run lists every id before fetching them in bulk: the sweep takes that
    listing (`Connector.full_listing`) and lists nothing again when nothing was deleted."""
    fake, engine = _setup(store, 300, latency=0.0)
    assert asyncio.run(engine.run(SOURCE, full=True)).status == "succeeded"
    gone = sorted(fake.ids())[:2]
    for native_id in gone:
        fake.delete(native_id)
    fake.log.clear()
    run = asyncio.run(engine.run(SOURCE, full=True))
    assert run.status == "succeeded", run.error
    assert run.fetched == 298 and run.deleted == 2
    by_id = [e for e in fake.log.entries if _is_listing(e)]
    assert len(by_id) == 1  # the sweep's second listing only (it had candidates to check)
    fake.log.clear()
    assert asyncio.run(engine.run(SOURCE, full=True)).deleted == 0
    assert not [e for e in fake.log.entries if _is_listing(e)]


def test_the_overlapped_sweep_still_tombstones_deletions(store: Store) -> None:
    fake, engine = _setup(store, 200, latency=0.0)
    assert asyncio.run(engine.run(SOURCE, full=True)).status == "succeeded"
    gone = sorted(fake.ids())[:3]
    for native_id in gone:
        fake.delete(native_id)
    run = asyncio.run(engine.run(SOURCE, full=True))
    assert run.status == "succeeded", run.error
    assert run.deleted == 3 and run.fetched == 197
    for native_id in gone:
        doc = store.items.get(f"{SOURCE}:{native_id}")
        assert doc is not None and doc["deleted"] is True
    assert asyncio.run(engine.run(SOURCE, full=True)).deleted == 0


def test_a_failed_run_stops_its_listing_quietly(store: Store) -> None:
    fake, engine = _setup(store, 300, latency=0.005)
    fake.faults.inject(500, count=1000, path_prefix="/rest/api/3/search/jql")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Task exception was never retrieved" would be a warning/log
        run = asyncio.run(engine.run(SOURCE, full=True))
    assert run.status == "failed"
    assert run.deleted == 0


def test_under_a_request_budget_the_listing_waits_for_the_pages(store: Store) -> None:
    """A budgeted run spends its requests on pages (and histories) first, as before."""
    fake, engine = _setup(store, 300, latency=0.01)
    engine.config.sources[SOURCE].config.request_budget = 1000
    assert asyncio.run(engine.run(SOURCE, full=True, sweep=False)).status == "succeeded"
    for native_id in sorted(fake.ids())[:120]:
        fake.edit(native_id)
    fake.log.clear()
    run = asyncio.run(engine.run(SOURCE, sweep=True))
    assert run.status == "succeeded", run.error
    listing_at = next(k for k, e in enumerate(fake.log.entries) if _is_listing(e))
    last_page_at = max(k for k, e in enumerate(fake.log.entries) if _is_search_page(e))
    assert listing_at > last_page_at


def test_live_ids_missing_from_streams_in_chunks(store: Store) -> None:
    """The sweep's candidates without a set of every live id: equal to live_ids - present,
    whatever the chunk size, with the updated_before bound."""
    fake, engine = _setup(store, 23, latency=0.0)
    assert asyncio.run(engine.run(SOURCE, full=True, sweep=False)).status == "succeeded"
    live = store.items.live_ids(SOURCE)
    present = set(sorted(live)[::3])
    for chunk in (1, 2, 5, 5000):
        assert store.items.live_ids_missing_from(SOURCE, present, chunk=chunk) == live - present
    bound = fake.updated_at(fake.record(sorted(live)[10]))  # type: ignore[arg-type]
    assert store.items.live_ids_missing_from(SOURCE, set(), bound, chunk=4) == store.items.live_ids(SOURCE, bound)
    assert store.items.live_ids_missing_from(SOURCE, live) == set()
    assert store.items.live_ids_missing_from("no-such-source", set()) == set()
