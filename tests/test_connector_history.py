"""`Connector.fetch_history` per tool: every page, in order, through the source's HTTP client
(retries, budget), and an empty history for an item the tool no longer has.

Fake servers (fakes/) serve paged histories; respx serves the exact page shapes of the tools'
docs, including Atlassian's published changelog page in ../shared/fixtures/jira.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from connectors.base import Connector, ConnectorConfig
from connectors.github import GitHubConfig, GitHubConnector
from connectors.gitlab import GitLabConfig, GitLabConnector
from connectors.jira import JiraConfig, JiraConnector
from connectors.linear import LinearConfig, LinearConnector
from fakes.common import asgi_transport
from fakes.github import FakeGitHub
from fakes.gitlab import FakeGitLab
from fakes.jira import FakeJira
from fakes.linear import FakeLinear
from tests.conftest import shared_fixtures

pytestmark = pytest.mark.anyio
JIRA = "https://acme.atlassian.net"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_history_is_off_by_default_and_only_where_the_tool_keeps_one() -> None:
    assert ConnectorConfig(tool="x", base_url="https://x.example").history is False
    assert "request_budget" in (ConnectorConfig.model_fields["history"].description or "")
    assert all(c.supports_history for c in (JiraConnector, LinearConnector, GitLabConnector, GitHubConnector))
    assert Connector.supports_history is False


# ---------------------------------------------------------------- Jira


def jira(fake: FakeJira, **overrides: Any) -> JiraConnector:
    config = JiraConfig.model_validate(
        {
            "tool": "jira",
            "base_url": fake.base_url,
            "email": fake.email,
            "api_token": fake.api_token,
            "projects": list(fake.projects),
            "history": True,
            **overrides,
        }
    )
    return JiraConnector("acme-jira", config, transport=asgi_transport(fake.app), sleep=Sleeps())


def changelog_requests(fake: FakeJira) -> list[int]:
    return [int(e.param("startAt") or 0) for e in fake.log.entries if e.path.endswith("/changelog")]


async def test_jira_changelog_is_read_page_by_page_in_order() -> None:
    fake = FakeJira(20)
    native_id = next(i for i in fake.ids() if len(fake.changelog(i)) >= 3)  # several pages of one entry
    async with jira(fake, page_size=1) as connector:
        entries = await connector.fetch_history(native_id)
    expected = fake.changelog(native_id)
    assert [e["id"] for e in entries] == [e["id"] for e in expected]
    assert changelog_requests(fake) == list(range(len(expected)))


async def test_jira_changelog_entries_carry_the_site_statuses_they_name() -> None:
    """A changelog names statuses without their category: the connector attaches the site's
    status objects (one `GET /rest/api/3/status` per run) to the entries that change status."""
    fake = FakeJira(30)
    with_changes = [i for i in fake.ids() if len(fake.changelog(i)) >= 2][:3]
    async with jira(fake) as connector:
        histories = [await connector.fetch_history(native_id) for native_id in with_changes]
    for entries in histories:
        assert "_opshub" not in entries[0]  # the summary edit names no status
        for entry in entries[1:]:
            (change,) = [i for i in entry["items"] if i["fieldId"] == "status"]
            attached = {s["id"]: s["statusCategory"]["key"] for s in entry["_opshub"]["statuses"]}
            assert set(attached) == {change["from"], change["to"]}
    assert fake.log.by_path["/rest/api/3/status"] == 1


async def test_jira_changelog_of_a_missing_issue_is_empty() -> None:
    fake = FakeJira(5)
    gone = fake.ids()[0]
    fake.delete(gone)
    async with jira(fake) as connector:
        assert await connector.fetch_history(gone) == []
    assert fake.log.by_status[404] == 1


async def test_jira_changelog_rate_limit_is_retried_through_the_source_client() -> None:
    fake = FakeJira(5)
    native_id = fake.ids()[1]
    fake.faults.inject(429, retry_after="3", path_prefix=f"/rest/api/3/issue/{native_id}/changelog")
    async with jira(fake) as connector:
        entries = await connector.fetch_history(native_id)
        retries = connector.stats()["retries"]
    assert len(entries) == len(fake.changelog(native_id))
    assert retries == 1
    assert connector.sleep == [3.0]


@respx.mock
async def test_jira_changelog_pages_follow_start_at_until_is_last() -> None:
    """The middle page is Atlassian's published example (startAt 2, maxResults 2, total 5,
    isLast false); the connector asks startAt 0, 2, 4 and stops at `isLast: true`."""
    published = json.loads(
        (shared_fixtures("jira") / "openapi-example-GET-rest-api-3-issue-changelog-200.json").read_text()
    )

    def entry(ident: str) -> dict[str, Any]:
        return {"id": ident, "created": "2026-03-02T10:00:00.000+0100", "items": []}

    pages = {
        0: {"startAt": 0, "maxResults": 2, "total": 5, "isLast": False, "values": [entry("9998"), entry("9999")]},
        2: published,
        4: {"startAt": 4, "maxResults": 2, "total": 5, "isLast": True, "values": [entry("10003")]},
    }
    route = respx.get(f"{JIRA}/rest/api/3/issue/TT-1/changelog").mock(
        side_effect=lambda request: httpx.Response(200, json=pages[int(request.url.params["startAt"])])
    )
    config = JiraConfig(tool="jira", base_url=JIRA, email="a@b.example", api_token="t", projects=["TT"], page_size=2)
    async with JiraConnector("acme-jira", config, sleep=Sleeps()) as connector:
        entries = await connector.fetch_history("TT-1")
    assert [e["id"] for e in entries] == ["9998", "9999", "10001", "10002", "10003"]
    assert [int(call.request.url.params["startAt"]) for call in route.calls] == [0, 2, 4]
    assert {call.request.url.params["maxResults"] for call in route.calls} == {"2"}


# ---------------------------------------------------------------- Linear


def linear(fake: FakeLinear) -> LinearConnector:
    config = LinearConfig.model_validate(
        {"tool": "linear", "base_url": fake.base_url, "api_key": fake.api_key, "history": True}
    )
    return LinearConnector("acme-linear", config, transport=asgi_transport(fake.app), sleep=Sleeps())


async def test_linear_history_is_read_page_by_page_with_a_schema_valid_query() -> None:
    fake = FakeLinear(20)
    assert fake.schema is not None  # the fake validates every document against Linear's schema
    native_id = next(i for i in fake.ids() if len(fake.history(i)) >= 3)
    async with linear(fake) as connector:
        connector.history_page_size = 1
        entries = await connector.fetch_history(native_id)
    expected = fake.history(native_id)
    assert [e["id"] for e in entries] == [e["id"] for e in expected]
    assert [(e["toState"] or {}).get("name") for e in entries] == [(e["toState"] or {}).get("name") for e in expected]
    assert fake.log.by_status == {200: len(expected)}


async def test_linear_history_of_a_deleted_issue_is_empty() -> None:
    fake = FakeLinear(5)
    gone = fake.ids()[2]
    fake.delete(gone)
    async with linear(fake) as connector:
        assert await connector.fetch_history(gone) == []
    assert fake.log.total == 1


# ---------------------------------------------------------------- GitLab


def gitlab(fake: FakeGitLab, **overrides: Any) -> GitLabConnector:
    (first_id, _), (_, second_path) = fake.projects[:2]
    config = GitLabConfig.model_validate(
        {
            "tool": "gitlab",
            "base_url": fake.base_url,
            "token": fake.token,
            "projects": [first_id, second_path],
            "history": True,
            **overrides,
        }
    )
    return GitLabConnector("acme-gitlab", config, transport=asgi_transport(fake.app), sleep=Sleeps())


async def test_gitlab_state_events_are_read_page_by_page() -> None:
    fake = FakeGitLab(20)
    native_id = next(i for i in fake.ids() if len(fake.state_events(i)) >= 3)
    async with gitlab(fake, page_size=1) as connector:
        async for _ in connector.list_ids():  # the id index, as a sync builds it
            pass
        fake.log.clear()
        events = await connector.fetch_history(native_id)
    assert events == fake.state_events(native_id)
    pages = [e.param("page") for e in fake.log.entries if e.path.endswith("/resource_state_events")]
    assert pages == [None, "2", "3"]


async def test_gitlab_state_events_of_a_deleted_issue_are_empty() -> None:
    fake = FakeGitLab(10)
    known, unknown = fake.ids()[3], fake.ids()[4]
    async with gitlab(fake) as connector:
        async for _ in connector.list_ids():
            pass
        fake.delete(known)  # the index still names it: GitLab answers 404
        fake.delete(unknown)
        assert await connector.fetch_history(known) == []
        assert await connector.fetch_history("999999") == []  # no listing knows it
    assert fake.log.by_status[404] == 1


# ---------------------------------------------------------------- GitHub


def github(fake: FakeGitHub, **overrides: Any) -> GitHubConnector:
    config = GitHubConfig.model_validate(
        {
            "tool": "github",
            "base_url": fake.base_url,
            "token": fake.token,
            "repositories": list(fake.repositories),
            "history": True,
            **overrides,
        }
    )
    return GitHubConnector("acme-github", config, transport=asgi_transport(fake.app), sleep=Sleeps())


async def test_github_issue_events_follow_the_link_header() -> None:
    fake = FakeGitHub(20)
    native_id = next(i for i in fake.ids() if len(fake.events(i)) >= 4)
    async with github(fake, page_size=1) as connector:
        async for _ in connector.list_ids():
            pass
        fake.log.clear()
        events = await connector.fetch_history(native_id)
    assert events == fake.events(native_id)
    pages = [e.param("page") for e in fake.log.entries if e.path.endswith("/events")]
    assert pages == [None, "2", "3", "4"]


async def test_github_issue_events_of_a_deleted_issue_are_empty() -> None:
    fake = FakeGitHub(10)
    gone = fake.ids()[5]
    async with github(fake) as connector:
        async for _ in connector.list_ids():
            pass
        fake.delete(gone)  # GitHub answers 410 Gone
        assert await connector.fetch_history(gone) == []
    assert fake.log.by_status[410] == 1
