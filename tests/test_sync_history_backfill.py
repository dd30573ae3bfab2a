"""History backfill in the sync engine (opt-in `history = true`), against the fake Jira.

The fake serves each issue's changelog (`FakeJira.changelog`: one status change per workflow
step up to the issue's status, on Jira's clock). A run with history on stores those changes
as `changelog` facts for the page's changed items; a run with a request budget that the
backfill spends stops backfilling cleanly and counts the items it left; without the option
no history request is made.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from connectors.base import Connector, Page
from fakes.common import asgi_transport
from fakes.jira import FakeJira
from hub.config import SourceDefinition, parse_config
from hub.flow.history import TransitionSource
from hub.store import Store
from hub.sync import RunSummary, SyncEngine
from mappings.transforms.common import parse_datetime
from tests.conftest import reset_database

SOURCE = "acme-jira"
N = 30


def _sync(
    store: Store, fake: FakeJira, *, sweep: bool | None = None, expand_changelog: bool = False, **config: Any
) -> tuple[RunSummary, list[str]]:
    """One run; returns its summary and the issues whose history the connector was asked for."""
    raw = {
        "tool": "jira",
        "base_url": fake.base_url,
        "email": fake.email,
        "api_token": fake.api_token,
        "projects": list(fake.projects),
        "page_size": 10,
        **config,
    }
    hub_config = parse_config({"sources": {SOURCE: raw}})
    asked: list[str] = []

    def connector(source: SourceDefinition) -> Connector:
        made = source.connector_cls(source.name, source.config, transport=asgi_transport(fake.app))
        original = made.fetch_history

        async def fetch_history(native_id: str) -> list[dict[str, Any]]:
            asked.append(native_id)
            return await original(native_id)

        made.fetch_history = fetch_history  # type: ignore[method-assign]
        if expand_changelog:  # as `GET /search/jql?expand=changelog` answers: histories embedded
            original_fetch = made.fetch

            async def fetch(cursor: str | None) -> AsyncIterator[Page]:
                async for page in original_fetch(cursor):
                    for record in page.records:
                        record["changelog"] = {"histories": fake.changelog(str(record["id"]))}
                    yield page

            made.fetch = fetch  # type: ignore[method-assign]
        return made

    engine = SyncEngine(store, hub_config, connector_factory=connector)
    return asyncio.run(engine.run(SOURCE, sweep=sweep)), asked


def _changelog_facts(store: Store, native_id: str) -> list[tuple[Any, str]]:
    facts = store.items.transitions.history(f"{SOURCE}:{native_id}")
    return [(f.at, f.to_name or "") for f in facts if f.source is TransitionSource.changelog]


def _tool_changes(fake: FakeJira, native_id: str) -> list[tuple[Any, str]]:
    """The fake's changelog status changes, read straight from its entries."""
    out = []
    for entry in fake.changelog(native_id):
        for change in entry["items"]:
            if change["fieldId"] == "status":
                out.append((parse_datetime(entry["created"]), change["toString"]))
    return out


def test_backfill_stores_each_changed_items_changelog(store: Store) -> None:
    fake = FakeJira(N)
    summary, asked = _sync(store, fake, history=True, max_concurrency=3)
    assert summary.status == "succeeded", summary.error
    assert sorted(asked) == sorted(fake.ids())  # every changed item once
    expected = {native_id: _tool_changes(fake, native_id) for native_id in fake.ids()}
    assert sum(map(len, expected.values())) > N // 2  # the fake's issues do move
    for native_id, changes in expected.items():
        assert _changelog_facts(store, native_id) == changes
    counts = summary.counts()["history"]
    assert counts == {"items": N, "transitions": sum(map(len, expected.values())), "skipped": 0, "failed": 0}
    stored = store.items.transitions.for_items([f"{SOURCE}:{n}" for n in fake.ids()])

    again, asked_again = _sync(store, fake, history=True)  # nothing changed: nothing to backfill
    assert again.status == "succeeded" and asked_again == []
    assert again.counts()["history"]["items"] == 0
    assert store.items.transitions.for_items([f"{SOURCE}:{n}" for n in fake.ids()]) == stored

    fake.edit(fake.ids()[0], summary="edited")  # one item changes: only its history is read again
    _, asked_edit = _sync(store, fake, history=True)
    assert asked_edit == [fake.ids()[0]]


def test_backfill_is_off_by_default(store: Store) -> None:
    fake = FakeJira(N)
    summary, asked = _sync(store, fake)
    assert summary.status == "succeeded" and asked == []
    assert "history" not in summary.counts()
    assert all(_changelog_facts(store, n) == [] for n in fake.ids())


def test_backfill_stops_cleanly_when_the_request_budget_is_spent(store: Store) -> None:
    fake = FakeJira(N)
    # One page and no deletion sweep: nothing of the run itself comes after the backfill.
    plain, _ = _sync(store, fake, page_size=50, sweep=False)  # what the run itself costs
    reset_database(store)
    extra = 6
    budget = plain.requests + extra
    summary, asked = _sync(
        store, fake, history=True, max_concurrency=2, page_size=50, request_budget=budget, sweep=False
    )
    assert summary.status == "succeeded", summary.error
    assert len(store.items.live_ids(SOURCE)) == N  # the page is stored whatever the backfill did
    counts = summary.counts()["history"]
    assert 0 < counts["items"] < extra  # the site's status list costs one request too
    assert counts["skipped"] == N - counts["items"] and counts["failed"] == 0
    assert len(asked) < N  # no request is even tried once the budget is known spent
    backfilled = {n for n in fake.ids() if _changelog_facts(store, n)}
    assert backfilled <= set(asked) and len(backfilled) <= counts["items"]
    assert summary.requests == budget
    run = SyncEngine(store, parse_config({"sources": {}})).runs.get(summary.run_id)
    assert run is not None and run.counts["history"] == counts  # kept on the run row


def test_budget_spent_by_the_backfill_leaves_later_pages_to_the_next_run(store: Store) -> None:
    """Pages, the deletion sweep and histories share the run's budget: once the backfill has
    spent it, the run's own next request fails as any over-budget run does; every page stored
    before that stays, with its checkpoint, and the next run goes on from there. (Twenty
    pages: a full run fetches a few pages ahead of the one it stores, so the pages still to
    fetch once the backfill has spent the budget must be more than those.)"""
    n = 200
    fake = FakeJira(n)
    plain, _ = _sync(store, fake)  # twenty pages of 10
    reset_database(store)
    summary, _ = _sync(store, fake, history=True, max_concurrency=2, request_budget=plain.requests + 4)
    assert summary.status == "failed" and "budget" in (summary.error or "")
    assert summary.counts()["history"]["skipped"] > 0
    assert len(store.items.live_ids(SOURCE)) >= 10  # at least the first page, backfilled or not
    resumed, _ = _sync(store, fake)
    assert resumed.status == "succeeded" and len(store.items.live_ids(SOURCE)) == n


def test_pulled_records_with_an_expanded_changelog_store_it_without_backfill(store: Store) -> None:
    fake = FakeJira(N)
    summary, asked = _sync(store, fake, expand_changelog=True)
    assert summary.status == "succeeded" and asked == []  # no request per item
    for native_id in fake.ids():
        assert _changelog_facts(store, native_id) == _tool_changes(fake, native_id)


def test_the_runs_route_shows_a_backfilling_runs_history_counts(store: Store) -> None:
    # Regression: a run's stored counts hold the backfill's figures as a nested object, which
    # GET /v1/sources/{name}/runs once refused with a 500 (counts is a flat map of numbers).
    from hub.store.keys import Scope
    from tests.api_support import api_client, bearer

    fake = FakeJira(N)
    summary, _ = _sync(store, fake, history=True)
    key = store.keys.create(Scope.read, name="runs")[1]
    with api_client(store) as client:
        response = client.get(f"/v1/sources/{SOURCE}/runs", headers=bearer(key))
    assert response.status_code == 200, response.text
    run = response.json()["runs"][0]
    assert run["id"] == summary.run_id
    assert run["history"] == summary.counts()["history"]
    assert "history" not in run["counts"] and run["counts"]["fetched"] == N
