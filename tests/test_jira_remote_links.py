"""Jira remote links (source option `remote_links`): read per changed issue, mapped to links by
URL, resolved by the hub to the linked item's hub id whichever side is synced first.

The fake Jira and fake GitHub run in-process behind their connectors; the GitHub side is the
real GitHub connector and mapping, so the key the link resolves through (`acme/api#7`) is the
one the GitHub mapping stores.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from connectors.base import Connector, RefetchRecord, UpsertRecord
from connectors.http import RequestFailed
from connectors.jira import JiraConfig, JiraConnector
from fakes.common import asgi_transport
from fakes.github import FakeGitHub
from fakes.jira import FakeJira
from hub.config import SourceDefinition, parse_config
from hub.store import Store
from hub.sync import SyncEngine
from tests.api_support import api_client
from tests.conformance.cases import CASES, WEBHOOK_SECRET
from tests.factories import make_item

JIRA, GITHUB = "acme-jira", "acme-gh"
GITHUB_URL = "https://github.com/acme/api/issues/7"
REMOTE = "/remotelink"


def _jira_config(fake: FakeJira, **overrides: Any) -> dict[str, Any]:
    case = next(c for c in CASES if c.id == "jira")
    tool: Any = fake  # meets fakes.common.FakeTool at run time; its `app` type is narrower
    return {**case.config(tool), "webhook_secret": WEBHOOK_SECRET, **overrides}


def _github_config(fake: FakeGitHub) -> dict[str, Any]:
    case = next(c for c in CASES if c.id == "github")
    tool: Any = fake
    return case.config(tool)


def _connector(fake: FakeJira, transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> JiraConnector:
    config = JiraConfig.model_validate(_jira_config(fake, **overrides))
    return JiraConnector(JIRA, config, transport=transport or asgi_transport(fake.app))


async def _pull(connector: JiraConnector) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    try:
        async for page in connector.fetch(None):
            records += page.records
    finally:
        await connector.aclose()
    return records


def _remote_requests(fake: FakeJira) -> list[str]:
    return [path for path in fake.log.paths() if path.endswith(REMOTE)]


# ----------------------------------------------------------------------------- the connector


def test_flag_off_reads_no_remote_links() -> None:
    fake = FakeJira(30, projects=("PROJ",))
    fake.set_remote_links(fake.ids()[0], [GITHUB_URL], relationship="is implemented by")
    records = asyncio.run(_pull(_connector(fake)))
    assert len(records) == 30
    assert all("_opshub" not in r for r in records)
    assert _remote_requests(fake) == []


def test_flag_on_attaches_each_issues_remote_links() -> None:
    fake = FakeJira(120, projects=("PROJ",))
    linked = fake.ids()[5]
    fake.set_remote_links(linked, [GITHUB_URL, "https://example.com/spec"], relationship="is implemented by")
    records = asyncio.run(_pull(_connector(fake, remote_links=True)))
    assert len(records) == 120
    by_id = {r["id"]: r for r in records}
    assert all(r["_opshub"]["remote_links"] == [] for i, r in by_id.items() if i != linked)
    links = by_id[linked]["_opshub"]["remote_links"]
    assert [link["object"]["url"] for link in links] == [GITHUB_URL, "https://example.com/spec"]
    assert links[0]["relationship"] == "is implemented by"
    assert links[0]["application"] == {"type": "com.github.integration", "name": "GitHub"}
    assert links[0]["object"]["title"] == "acme/api#7"
    # One request per issue (page_size 50: three search pages, 120 remote link requests).
    assert len(_remote_requests(fake)) == 120
    assert len(set(_remote_requests(fake))) == 120


def test_fetch_one_attaches_remote_links_and_404_means_none() -> None:
    fake = FakeJira(3, projects=("PROJ",))
    target = fake.ids()[1]
    fake.set_remote_links(target, [GITHUB_URL], relationship="implements")

    async def run() -> tuple[Any, Any, Any]:
        connector = _connector(fake, remote_links=True)
        try:
            one = await connector.fetch_one(target)
            missing = await connector.remote_links("999999")
            plain = await _connector(fake).fetch_one(target)
            return one, missing, plain
        finally:
            await connector.aclose()

    one, missing, plain = asyncio.run(run())
    assert one is not None and one["_opshub"]["remote_links"][0]["object"]["url"] == GITHUB_URL
    assert missing == []
    assert plain is not None and "_opshub" not in plain


class _CountingTransport(httpx.AsyncBaseTransport):
    """Delegates to the fake; records the most remote link requests in flight at once."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.in_flight = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        remote = request.url.path.endswith(REMOTE)
        if remote:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            await asyncio.sleep(0.005)
        try:
            return await self.inner.handle_async_request(request)
        finally:
            if remote:
                self.in_flight -= 1


def test_remote_link_requests_run_concurrently_within_the_source_limit() -> None:
    fake = FakeJira(40, projects=("PROJ",))
    transport = _CountingTransport(asgi_transport(fake.app))
    records = asyncio.run(_pull(_connector(fake, transport, remote_links=True, max_concurrency=3)))
    assert len(records) == 40
    assert transport.peak == 3


def test_a_failing_remote_link_request_fails_the_page() -> None:
    fake = FakeJira(5, projects=("PROJ",))
    broken = fake.ids()[2]

    def handler(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith(f"/issue/{broken}{REMOTE}"):
            return httpx.Response(400, json={"errorMessages": ["Bad request"]})
        return None

    class Breaking(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return handler(request) or await asgi_transport(fake.app).handle_async_request(request)

    with pytest.raises(RequestFailed, match="answered 400"):
        asyncio.run(_pull(_connector(fake, Breaking(), remote_links=True)))


@pytest.mark.parametrize("remote_links", [True, False])
def test_issue_webhook_is_a_refetch_when_remote_links_are_read(remote_links: bool) -> None:
    fake = FakeJira(3, projects=("PROJ",))
    issue_id = fake.ids()[0]
    connector = _connector(fake, remote_links=remote_links)
    headers, body = fake.webhook("upsert", issue_id, secret=WEBHOOK_SECRET)
    connector.verify(headers, body)
    events = connector.parse(headers, body).events
    asyncio.run(connector.aclose())
    assert len(events) == 1
    if remote_links:
        assert isinstance(events[0], RefetchRecord) and events[0].native_id == issue_id
    else:
        assert isinstance(events[0], UpsertRecord) and str(events[0].record["id"]) == issue_id


# ----------------------------------------------------------------------------- through the hub


class _World:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.jira = FakeJira(0, projects=("PROJ",), time_zone="UTC")
        self.github = FakeGitHub(0, repositories=("acme/api",))
        issues = [
            self.github.add(title=f"Issue {n}", state="open", state_reason=None, closed_at=None, labels=[])
            for n in range(1, 8)
        ]
        assert issues[-1]["html_url"] == GITHUB_URL
        self.gh_id = f"{GITHUB}:{issues[-1]['id']}"
        story = self.jira.add(summary="Export invoices", issuelinks=[])
        self.jira.set_remote_links(story["id"], [GITHUB_URL], relationship="is implemented by")
        self.jira_id = f"{JIRA}:{story['id']}"
        self.fakes: dict[str, Any] = {JIRA: self.jira, GITHUB: self.github}
        config = parse_config(
            {"sources": {JIRA: _jira_config(self.jira, remote_links=True), GITHUB: _github_config(self.github)}}
        )

        def connector(source: SourceDefinition) -> Connector:
            return source.connector_cls(
                source.name, source.config, transport=asgi_transport(self.fakes[source.name].app)
            )

        self.engine = SyncEngine(store, config, connector_factory=connector)

    def sync(self, name: str) -> None:
        run = asyncio.run(self.engine.run(name))
        assert run.status == "succeeded", (name, run.error)
        assert run.failed_records == 0, (name, run.record_errors)


@pytest.fixture
def world(store: Store) -> _World:
    return _World(store)


def _links(client: Any, item_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/items/{item_id}")
    assert response.status_code == 200, response.text
    links: list[dict[str, Any]] = response.json()["links"]
    return links


@pytest.mark.parametrize("jira_first", [True, False], ids=["jira-first", "github-first"])
def test_remote_link_resolves_both_ways_whichever_arrives_first(world: _World, jira_first: bool) -> None:
    with api_client(world.store) as client:
        world.sync(JIRA if jira_first else GITHUB)
        if jira_first:
            # Only the Jira side is stored: the link is there by URL, not yet resolved.
            assert {"type": "implemented_by", "target_id": None, "url": GITHUB_URL} in _links(client, world.jira_id)
        world.sync(GITHUB if jira_first else JIRA)

        forward = {"type": "implemented_by", "target_id": world.gh_id, "url": GITHUB_URL}
        assert forward in _links(client, world.jira_id)
        inverse = {"type": "implements", "target_id": world.jira_id, "url": None}
        assert inverse in _links(client, world.gh_id)


def test_github_item_applied_directly_resolves_too(world: _World) -> None:
    """The GitHub item as any source's mapping would store it (tool github, key acme/api#7)."""
    world.sync(JIRA)
    world.store.items.apply([make_item("77", source="other-gh", tool="github", key="acme/api#7", url=GITHUB_URL)])
    with api_client(world.store) as client:
        assert {"type": "implemented_by", "target_id": "other-gh:77", "url": GITHUB_URL} in _links(
            client, world.jira_id
        )
        assert {"type": "implements", "target_id": world.jira_id, "url": None} in _links(client, "other-gh:77")
