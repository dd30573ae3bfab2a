"""Hub-level conformance: every connector, through the sync engine, the store and the API.

Parametrised over tests/conformance/cases.py's CASES (a new connector joins with one entry
there) and over both database backends. The connector-level suite (tests/conformance/)
checks each connector alone; this one checks that the hub's shared parts hold their
promises with each of them: full then incremental sync, checkpoint/resume after a crash
with no gap and no duplicate change, the deletion sweep, riding out a 429 storm with
Retry-After honoured, a record that fails to map, and webhooks verified, stored once and
applied once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from connectors.base import Connector, Page
from fakes.common import FakeTool, asgi_transport
from hub.api.app import create_app
from hub.config import HubConfig, SourceDefinition, parse_config
from hub.db.tables import changes, webhook_inbox
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from hub.sync import SyncEngine
from tests.conformance.cases import CASES, WEBHOOK_SECRET, ConformanceCase

SOURCE = "conf-src"
N = 120


@pytest.fixture(params=CASES, ids=lambda case: case.id)
def case(request: pytest.FixtureRequest) -> ConformanceCase:
    return request.param  # type: ignore[no-any-return]


class Harness:
    """A fake tool, a hub config naming it, and connectors wired to the fake in-process."""

    def __init__(self, case: ConformanceCase, store: Store, n: int = N) -> None:
        self.case = case
        self.store = store
        self.fake: FakeTool = case.fake(n)
        raw = {**case.config(self.fake), "webhook_secret": WEBHOOK_SECRET}
        self.config: HubConfig = parse_config({"sources": {SOURCE: raw}})
        self.sleeps: list[float] = []
        self.fail_after_pages: int | None = None
        self.corrupt_first_record = False
        self.delete_while_listing = False
        self.deleted_while_listing: list[str] = []

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def connector(self, source: SourceDefinition) -> Connector:
        connector = source.connector_cls(
            source.name, source.config, transport=asgi_transport(self.fake.app), sleep=self._sleep
        )
        harness = self
        original_fetch = connector.fetch

        async def fetch(cursor: str | None) -> AsyncIterator[Page]:
            pages = 0
            async for page in original_fetch(cursor):
                if harness.corrupt_first_record and page.records:
                    page.records[0] = {"id": "not-a-record"}
                    harness.corrupt_first_record = False
                yield page
                pages += 1
                if harness.fail_after_pages is not None and pages >= harness.fail_after_pages:
                    raise RuntimeError("simulated crash after a stored page")

        connector.fetch = fetch  # type: ignore[method-assign]
        original_list_ids = connector.list_ids

        async def list_ids() -> AsyncIterator[str]:
            async for native_id in original_list_ids():
                yield native_id
                if harness.delete_while_listing:
                    # The first id listed is deleted in the tool while the listing goes on.
                    harness.fake.delete(native_id)
                    harness.deleted_while_listing.append(native_id)
                    harness.delete_while_listing = False

        connector.list_ids = list_ids  # type: ignore[method-assign]
        return connector

    def engine(self) -> SyncEngine:
        return SyncEngine(self.store, self.config, connector_factory=self.connector)

    def sync(self, **kwargs: Any) -> Any:
        return asyncio.run(self.engine().run(SOURCE, **kwargs))

    def change_count(self) -> int:
        with self.store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(changes)).scalar_one())

    def stored_ids(self, *, include_deleted: bool = False) -> set[str]:
        ids = set()
        for native_id in self.fake.ids():
            doc = self.store.items.get(f"{SOURCE}:{native_id}")
            if doc is not None and (include_deleted or not doc["deleted"]):
                ids.add(native_id)
        return ids


@pytest.fixture
def harness(case: ConformanceCase, store: Store) -> Harness:
    return Harness(case, store)


def test_full_then_unchanged_incremental(harness: Harness) -> None:
    first = harness.sync()
    assert first.status == "succeeded", first.error
    assert first.mode == "full"
    assert first.fetched == N and first.changed == N and first.failed_records == 0
    assert harness.stored_ids() == set(harness.fake.ids())
    assert harness.change_count() == N  # one change per item, none twice

    again = harness.sync()
    assert again.status == "succeeded" and again.mode == "incremental"
    assert again.changed == 0
    assert harness.change_count() == N
    # An unchanged incremental run: the setup calls and one listing page.
    assert again.requests <= harness.case.setup_requests + 1


def test_incremental_picks_up_edits_once(harness: Harness) -> None:
    harness.sync()
    edited = sorted(harness.fake.ids())[:3]
    for native_id in edited:
        harness.fake.edit(native_id)
    run = harness.sync()
    assert run.changed == 3
    assert harness.change_count() == N + 3
    for native_id in edited:
        stored = harness.store.items.get(f"{SOURCE}:{native_id}")
        assert stored is not None
        assert stored["updated_at"] is not None


def test_crash_resumes_from_checkpoint_without_gap_or_duplicate(harness: Harness) -> None:
    harness.fail_after_pages = 1
    with pytest.raises(RuntimeError, match="simulated crash"):
        harness.sync()
    partial = harness.change_count()
    assert 0 < partial < N  # the first page (and its cursor) were committed
    runs = harness.engine().runs.list(SOURCE)
    assert runs[0].status == "failed" and runs[0].cursor is not None

    harness.fail_after_pages = None
    resumed = harness.sync()
    assert resumed.mode == "incremental"  # from the checkpoint, not from scratch
    assert resumed.status == "succeeded"
    assert harness.stored_ids() == set(harness.fake.ids())  # no gap
    assert harness.change_count() == N  # no duplicate change


def test_a_killed_run_is_taken_over(harness: Harness) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from hub.db.tables import sync_runs
    from hub.store.items import utcnow
    from hub.store.runs import RunInProgress

    engine = harness.engine()
    stuck = engine.open_run(SOURCE)  # a run whose process then died: never finished
    with pytest.raises(RunInProgress):
        harness.sync()  # its heartbeat is fresh: the lease holds
    with harness.store.engine.begin() as conn:
        conn.execute(
            update(sync_runs).where(sync_runs.c.id == stuck.run_id).values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
    run = harness.sync()
    assert run.status == "succeeded"
    assert engine.runs.get(stuck.run_id).status == "abandoned"  # type: ignore[union-attr]


def test_deletion_sweep_tombstones_what_the_tool_deleted(harness: Harness) -> None:
    harness.sync()
    gone = sorted(harness.fake.ids())[:2]
    for native_id in gone:
        harness.fake.delete(native_id)
    run = harness.sync(sweep=True)
    assert run.deleted == 2
    for native_id in gone:
        doc = harness.store.items.get(f"{SOURCE}:{native_id}")
        assert doc is not None and doc["deleted"] is True
    assert harness.change_count() == N + 2
    assert harness.sync(sweep=True).deleted == 0  # idempotent


def test_a_deletion_during_the_sweep_listing_tombstones_no_live_item(case: ConformanceCase, store: Store) -> None:
    """With offset or page-number listings, a record deleted mid-listing moves every later
    one up a place: the one at the page boundary is missing from that listing although it
    lives. The sweep must not take it for deleted. (500 records: several id pages per
    repository or project, whatever the tool's id page size.)"""
    harness = Harness(case, store, n=500)
    harness.sync()
    harness.delete_while_listing = True
    run = harness.sync(sweep=True)
    assert run.status == "succeeded", run.error
    assert harness.deleted_while_listing
    assert harness.stored_ids() == set(harness.fake.ids()), "a live item was tombstoned"
    # The record really deleted goes at the latest with the next sweep.
    harness.sync(sweep=True)
    (gone,) = harness.deleted_while_listing
    doc = harness.store.items.get(f"{SOURCE}:{gone}")
    assert doc is not None and doc["deleted"] is True


def test_429_storm_is_ridden_out_honouring_retry_after(harness: Harness) -> None:
    harness.fake.faults.inject(429, count=3, retry_after="7")
    run = harness.sync()
    assert run.status == "succeeded", run.error
    assert run.retries >= 3
    assert harness.sleeps.count(7.0) >= 3  # the tool's Retry-After, not our own backoff
    assert harness.stored_ids() == set(harness.fake.ids())


def test_5xx_burst_is_retried(harness: Harness) -> None:
    harness.fake.faults.inject(503, count=2)
    run = harness.sync()
    assert run.status == "succeeded", run.error
    assert run.retries >= 2
    assert harness.change_count() == N


def test_unmappable_record_is_reported_and_the_page_lands(harness: Harness) -> None:
    harness.corrupt_first_record = True
    run = harness.sync()
    assert run.status == "succeeded"
    assert run.failed_records == 1
    assert run.changed == N - 1
    assert len(run.record_errors) == 1 and run.record_errors[0]["error"]
    stored = harness.engine().runs.list(SOURCE)[0]
    assert stored.record_errors == run.record_errors


# ----------------------------------------------------------------------------- webhooks


@pytest.fixture
def api(harness: Harness) -> Iterator[tuple[TestClient, Harness]]:
    settings = Settings(database_url="sqlite://", background_tasks=False)
    app = create_app(harness.store, settings, config=harness.config, connector_factory=harness.connector)
    _, token = harness.store.keys.create(Scope.admin, "test")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client, harness


def _drain(client: TestClient) -> int:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return int(client.portal.call(runtime.worker.drain))  # type: ignore[union-attr]


def _inbox_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(webhook_inbox)).scalar_one())


def test_webhook_upsert_is_stored_once_and_applied_once(api: tuple[TestClient, Harness]) -> None:
    client, h = api
    if not h.config.sources[SOURCE].connector_cls.supports_webhooks:
        pytest.skip(f"{h.case.id} sends no webhooks (polling and the sweep cover it)")
    native_id = sorted(h.fake.ids())[0]
    h.fake.edit(native_id)
    headers, body = h.fake.webhook("upsert", native_id, secret=WEBHOOK_SECRET)
    first = client.post(f"/webhooks/{SOURCE}", headers=headers, content=body)
    assert first.status_code == 202, first.text
    assert first.json()["duplicate"] is False
    assert _inbox_rows(h.store) == 1  # committed before the 202
    assert _drain(client) == 1
    item = client.get(f"/v1/items/{SOURCE}:{native_id}")
    assert item.status_code == 200 and item.json()["deleted"] is False
    changes_after_first = h.change_count()
    assert changes_after_first == 1

    again = client.post(f"/webhooks/{SOURCE}", headers=headers, content=body)
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert _drain(client) == 0
    assert _inbox_rows(h.store) == 1
    assert h.change_count() == changes_after_first  # no second effect


def test_webhook_with_bad_or_missing_signature_stores_nothing(api: tuple[TestClient, Harness]) -> None:
    client, h = api
    if not h.config.sources[SOURCE].connector_cls.supports_webhooks:
        pytest.skip(f"{h.case.id} sends no webhooks")
    native_id = sorted(h.fake.ids())[0]
    headers, body = h.fake.webhook("upsert", native_id, secret="not-the-secret")
    response = client.post(f"/webhooks/{SOURCE}", headers=headers, content=body)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    unsigned, body = h.fake.webhook("upsert", native_id, secret=None)
    assert client.post(f"/webhooks/{SOURCE}", headers=unsigned, content=body).status_code == 401
    assert _inbox_rows(h.store) == 0


def test_webhook_delete_and_ignore(api: tuple[TestClient, Harness]) -> None:
    client, h = api
    if not h.config.sources[SOURCE].connector_cls.supports_webhooks:
        pytest.skip(f"{h.case.id} sends no webhooks")
    native_id = sorted(h.fake.ids())[0]
    headers, body = h.fake.webhook("upsert", native_id, secret=WEBHOOK_SECRET)
    client.post(f"/webhooks/{SOURCE}", headers=headers, content=body)
    _drain(client)
    if h.case.extra.get("webhook_deletes", True):
        # Built before the fake forgets the record; the tool sends it after deleting.
        headers, body = h.fake.webhook("delete", native_id, secret=WEBHOOK_SECRET)
        h.fake.delete(native_id)
        assert client.post(f"/webhooks/{SOURCE}", headers=headers, content=body).status_code == 202
        _drain(client)
        assert client.get(f"/v1/items/{SOURCE}:{native_id}").json()["deleted"] is True
        listed = client.get("/v1/items", params={"include_deleted": "true", "source": SOURCE}).json()["items"]
        assert [i["deleted"] for i in listed if i["native_id"] == native_id] == [True]

    headers, body = h.fake.webhook("ignore", native_id, secret=WEBHOOK_SECRET)
    response = client.post(f"/webhooks/{SOURCE}", headers=headers, content=body)
    assert response.status_code == 202
    changes_before = h.change_count()
    _drain(client)
    assert h.change_count() == changes_before
    from hub.store.inbox import InboxStore

    status = InboxStore(h.store.engine).get(SOURCE, response.json()["delivery_id"])
    assert status is not None and status["status"] == "ignored" and status["error"]


def test_webhook_errors_are_problems(api: tuple[TestClient, Harness]) -> None:
    client, h = api
    assert client.post("/webhooks/no-such-source", content=b"{}").status_code == 404
    if not h.config.sources[SOURCE].connector_cls.supports_webhooks:
        assert client.post(f"/webhooks/{SOURCE}", content=b"{}").status_code == 404
        return
    big = b"{" + b" " * (6 * 1024 * 1024) + b"}"
    assert client.post(f"/webhooks/{SOURCE}", content=big).status_code == 413
    assert _inbox_rows(h.store) == 0


def test_sync_route_starts_a_run_and_lists_it(api: tuple[TestClient, Harness]) -> None:
    client, h = api
    started = client.post(f"/v1/sources/{SOURCE}/sync")
    assert started.status_code == 202, started.text
    run_id = started.json()["run"]["id"]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]

    async def wait_for_run() -> None:
        for _ in range(500):
            if not [t for t in runtime._tasks if not t.done()]:
                return
            await asyncio.sleep(0.01)

    client.portal.call(wait_for_run)  # type: ignore[union-attr]
    runs = client.get(f"/v1/sources/{SOURCE}/runs").json()["runs"]
    assert runs[0]["id"] == run_id
    assert runs[0]["status"] == "succeeded" and runs[0]["counts"]["changed"] == N
    assert client.post("/v1/sources/unknown/sync").status_code == 404
