"""What every connector must do, checked against its fake server (connector level, no store).

Parametrised over `cases.CASES`; a new connector joins by adding one `ConformanceCase`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from connectors.base import (
    AuthFailed,
    Connector,
    ConnectorError,
    DeleteRecord,
    IgnoreEvent,
    Page,
    RefetchRecord,
    UpsertRecord,
    WebhookRejected,
    parse_duration,
)
from connectors.http import BudgetExceeded
from connectors.paging import RepeatedPageToken
from fakes.common import FakeTool, asgi_transport
from hub.flow.extract import history_transitions
from hub.flow.history import TransitionSource, build_history
from mappings import mapper_for
from tests.conformance.cases import CASES, WEBHOOK_SECRET, ConformanceCase

pytestmark = pytest.mark.anyio
N = 120  # records per fake; with page_size 50: three pages
MINUTE = timedelta(minutes=1)  # slack for tools whose filters round to the minute


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> ConformanceCase:
    return request.param  # type: ignore[no-any-return]


@asynccontextmanager
async def connected(
    case: ConformanceCase, fake: FakeTool, sleeps: Sleeps, **overrides: Any
) -> AsyncIterator[Connector]:
    connector = case.connector(
        "conformance", case.make_config(fake, **overrides), transport=asgi_transport(fake.app), sleep=sleeps
    )
    async with connector:
        yield connector


async def pages_of(connector: Connector, cursor: str | None) -> list[Page]:
    return [page async for page in connector.fetch(cursor)]


def ids_of(connector: Connector, pages: list[Page]) -> list[str]:
    return [connector.native_id(r) for page in pages for r in page.records]


# ---------------------------------------------------------------- pulling


async def test_full_sync_pages_through_every_record_once_in_update_order(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    async with connected(case, fake, sleeps) as connector:
        pages = await pages_of(connector, None)
        stats = connector.stats()
    ids = ids_of(connector, pages)
    assert len(ids) == N
    assert len(set(ids)) == N
    assert set(ids) == set(fake.ids())
    times = [fake.updated_at(r) for page in pages for r in page.records]
    assert times == sorted(times)
    assert len(pages) == 3
    assert all(page.cursor for page in pages)
    assert stats["requests"] == fake.log.total
    assert 3 <= fake.log.total <= 3 + case.setup_requests
    assert sleeps == []


async def test_rate_limit_429_is_retried_honouring_retry_after(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    fake.faults.inject(429, count=3, retry_after="4")
    async with connected(case, fake, sleeps) as connector:
        ids = ids_of(connector, await pages_of(connector, None))
        stats = connector.stats()
    assert sorted(ids) == sorted(fake.ids())
    assert sleeps == [4.0, 4.0, 4.0]
    assert stats["retries"] == 3
    assert stats["rate_limit_waits"] == 3
    assert fake.log.by_status[429] == 3


async def test_5xx_and_truncated_bodies_are_retried_with_backoff(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    fake.faults.inject(503, count=1)
    fake.faults.inject(500, count=1)
    fake.faults.truncate(count=1)
    async with connected(case, fake, sleeps) as connector:
        ids = ids_of(connector, await pages_of(connector, None))
    assert sorted(ids) == sorted(fake.ids())
    assert len(sleeps) == 3
    assert all(wait > 0 for wait in sleeps)


@pytest.mark.parametrize("status", [400, 404])
async def test_other_4xx_fail_without_retry(case: ConformanceCase, status: int) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    fake.faults.inject(status)
    async with connected(case, fake, sleeps) as connector:
        with pytest.raises(ConnectorError):
            await pages_of(connector, None)
    assert sleeps == []
    assert fake.log.total == 1


async def test_401_raises_auth_failed_naming_the_source(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    fake.faults.inject(401)
    async with connected(case, fake, sleeps) as connector:
        with pytest.raises(AuthFailed, match="conformance"):
            await pages_of(connector, None)
    assert fake.log.total == 1


async def test_request_budget_stops_the_run(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    async with connected(case, fake, sleeps, request_budget=2) as connector:
        with pytest.raises(BudgetExceeded):
            await pages_of(connector, None)
    assert fake.log.total == 2


async def test_repeated_page_token_stops_instead_of_looping(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    fake.stuck_paging = True
    async with connected(case, fake, sleeps) as connector:
        with pytest.raises(RepeatedPageToken):
            await pages_of(connector, None)
    assert fake.log.total <= 3 + case.setup_requests


async def test_resume_from_any_page_cursor_has_no_gap(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    async with connected(case, fake, sleeps) as connector:
        pages = await pages_of(connector, None)
        overlap = parse_duration(connector.config.overlap)
        for k in range(len(pages) - 1):
            stored = set(ids_of(connector, pages[: k + 1]))
            newest = max(fake.updated_at(r) for page in pages[: k + 1] for r in page.records)
            resumed = await pages_of(connector, pages[k].cursor)
            again = ids_of(connector, resumed)
            assert len(again) == len(set(again))
            assert stored | set(again) == set(fake.ids()), f"gap after resuming from page {k}"
            reread = [r for page in resumed for r in page.records if connector.native_id(r) in stored]
            assert all(fake.updated_at(r) >= newest - overlap - MINUTE for r in reread)


@pytest.mark.parametrize("change", ["edit", "delete"])
async def test_records_changed_between_pages_hide_no_other_record(case: ConformanceCase, change: str) -> None:
    """A record already read is edited or deleted while the run pages on. In a list sorted
    by update time an edited record moves to the end; with offsets a deleted one moves every
    later record up a place. Either way offset or page-number paging never reads the record
    that crossed the page boundary, and the run's cursor (past the edited record) leaves it
    behind for good. Every record still alive at the end must have been read."""
    fake, sleeps = case.fake(N), Sleeps()
    async with connected(case, fake, sleeps) as connector:
        before = set(fake.ids())
        seen: list[str] = []
        async for page in connector.fetch(None):
            seen.extend(connector.native_id(r) for r in page.records)
            if page.records:
                getattr(fake, change)(connector.native_id(page.records[0]))
        alive = set(fake.ids())
    assert (alive == before) if change == "edit" else (alive < before)
    missing = alive - set(seen)
    assert not missing, f"{len(missing)} record(s) never read: {sorted(missing)[:5]}"


async def test_incremental_returns_changed_records_plus_overlap_only(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    async with connected(case, fake, sleeps) as connector:
        full = await pages_of(connector, None)
        newest = max(fake.updated_at(r) for page in full for r in page.records)
        ids = fake.ids()
        changed = {ids[3], ids[40], ids[77]}
        for native_id in changed:
            fake.edit(native_id)
        added = connector.native_id(fake.add())
        incremental = await pages_of(connector, full[-1].cursor)
        overlap = parse_duration(connector.config.overlap)
    got = ids_of(connector, incremental)
    assert changed | {added} <= set(got)
    others = [r for page in incremental for r in page.records if connector.native_id(r) not in changed | {added}]
    assert all(fake.updated_at(r) >= newest - overlap - MINUTE for r in others)
    assert len(others) < N // 2
    times = [fake.updated_at(r) for page in incremental for r in page.records]
    assert times == sorted(times)


async def test_list_ids_and_fetch_one_follow_deletions(case: ConformanceCase) -> None:
    fake, sleeps = case.fake(N), Sleeps()
    ids = fake.ids()
    gone = ids[10]
    fake.delete(gone)
    async with connected(case, fake, sleeps) as connector:
        listed = [native_id async for native_id in connector.list_ids()]
        one = await connector.fetch_one(ids[11])
        missing = await connector.fetch_one(gone)
    assert sorted(listed) == sorted(fake.ids())
    assert gone not in listed
    assert one is not None
    assert connector.native_id(one) == ids[11]
    assert missing is None


# ---------------------------------------------------------------- status history


def skip_without_history(case: ConformanceCase) -> None:
    if not case.connector.supports_history:
        pytest.skip(f"{case.id} offers no status history")


async def test_history_backfill_ends_in_the_items_status_on_the_tools_clock(case: ConformanceCase) -> None:
    """Each fake's history leads to the issue's current status: read through the source's
    mapping, the backfilled transitions must end in the status the item maps to, at times
    between the item's creation and its last update."""
    skip_without_history(case)
    fake, sleeps = case.fake(N), Sleeps()
    with_history = 0
    async with connected(case, fake, sleeps, history=True) as connector:
        assert connector.config.history is True
        mapper = mapper_for(case.id, await connector.mapping_context(), connector.config.mapping)
        for native_id in fake.ids()[:24]:
            record = await connector.fetch_one(native_id)
            assert record is not None
            item = mapper.map(record)
            raw = await connector.fetch_history(native_id)
            transitions = history_transitions(case.id, item, raw, mapper)
            if not transitions:
                continue
            with_history += 1
            history = build_history(item.id, transitions)
            last = history.transitions[-1]
            assert (last.to_category, last.to_name) == (item.status.category, item.status.name), native_id
            assert all(t.source is TransitionSource.changelog and t.at.utcoffset() == timedelta(0) for t in transitions)
            assert item.created_at is not None
            assert all(item.created_at <= t.at <= item.updated_at for t in transitions), native_id
    assert with_history >= 5  # the fakes give most issues a history: the check above really ran


async def test_history_of_a_gone_item_is_empty(case: ConformanceCase) -> None:
    skip_without_history(case)
    fake, sleeps = case.fake(N), Sleeps()
    gone = fake.ids()[10]
    fake.delete(gone)
    async with connected(case, fake, sleeps, history=True) as connector:
        assert await connector.fetch_history(gone) == []


async def test_history_requests_count_against_the_request_budget(case: ConformanceCase) -> None:
    skip_without_history(case)
    fake, sleeps = case.fake(N), Sleeps()

    async def backfill_all(connector: Connector) -> None:
        for native_id in fake.ids():
            await connector.fetch_history(native_id)

    async with connected(case, fake, sleeps, history=True, request_budget=3) as connector:
        with pytest.raises(BudgetExceeded):
            await backfill_all(connector)
    assert fake.log.total == 3


# ---------------------------------------------------------------- webhooks


def skip_without_webhooks(connector: Connector) -> None:
    if not connector.supports_webhooks:
        pytest.skip(f"{connector.tool} sends no webhooks")


async def test_webhook_signature_is_verified(case: ConformanceCase) -> None:
    fake = case.fake(N)
    native_id = fake.ids()[5]
    async with connected(case, fake, Sleeps()) as connector:
        skip_without_webhooks(connector)
        headers, body = fake.webhook("upsert", native_id, secret=WEBHOOK_SECRET)
        connector.verify(headers, body)
        # Tools that sign nothing (Aha!: a shared secret in a header) cannot bind the body.
        if case.extra.get("webhook_binds_body", True):
            with pytest.raises(WebhookRejected):
                connector.verify(headers, body + b" ")
        forged, _ = fake.webhook("upsert", native_id, secret="not-the-secret")
        with pytest.raises(WebhookRejected):
            connector.verify(forged, body)
        unsigned, body2 = fake.webhook("upsert", native_id, secret=None)
        with pytest.raises(WebhookRejected):
            connector.verify(unsigned, body2)
    async with connected(case, fake, Sleeps(), webhook_secret=None) as unconfigured:
        with pytest.raises(WebhookRejected):
            unconfigured.verify(headers, body)


async def test_webhook_events_and_stable_delivery_ids(case: ConformanceCase) -> None:
    fake = case.fake(N)
    native_id = fake.ids()[7]
    async with connected(case, fake, Sleeps()) as connector:
        skip_without_webhooks(connector)
        # Some tools send no delivery when a record is deleted (GitLab): the sweep finds those.
        kinds = ["upsert", "refetch", "ignore"]
        if case.extra.get("webhook_deletes", True):
            kinds.insert(1, "delete")
        deliveries = {kind: fake.webhook(kind, native_id, secret=WEBHOOK_SECRET) for kind in kinds}
        parsed = {kind: connector.parse(*delivery) for kind, delivery in deliveries.items()}

        (upsert,) = parsed["upsert"].events
        assert isinstance(upsert, UpsertRecord | RefetchRecord)
        if isinstance(upsert, UpsertRecord):
            assert connector.native_id(upsert.record) == native_id
        else:
            assert upsert.native_id == native_id
        if "delete" in parsed:
            assert parsed["delete"].events == [DeleteRecord(native_id, at=parsed["delete"].events[0].at)]  # type: ignore[union-attr]
        assert parsed["refetch"].events == [RefetchRecord(native_id)]
        assert all(isinstance(e, IgnoreEvent) for e in parsed["ignore"].events)

        again = connector.parse(*deliveries["upsert"])
        assert again.delivery_id == parsed["upsert"].delivery_id
        assert len({p.delivery_id for p in parsed.values()}) == len(kinds)
