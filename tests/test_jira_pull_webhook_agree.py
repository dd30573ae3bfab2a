"""Pull and webhook agree: the same Jira issue maps to the same WorkItem either way.

For every real Jira payload in ../shared/fixtures/jira that carries an issue, a fake Jira
(`fakes.jira.RecordedJira`) serves that issue verbatim and answers `fields=` as Jira does
(only the fields asked for). The pull side is `JiraConnector.fetch` against it; the webhook
side is the delivery as Jira sends it (REST payloads wrapped in the documented
`jira:issue_updated` envelope), parsed by the connector: an issue bean is mapped as
delivered, a comment event refetches the issue. Both sides map through the hub's Normaliser
with the source's mapping overrides, and must give the same item, hub-only fields aside.

Each payload also runs with an original time estimate and a start date set (the captured
issues have none): `mappings/jira.yaml` reads `timeoriginalestimate` and `startdate`, and a
pull that does not ask for them would lose them while a webhook keeps them.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from connectors.base import DeleteRecord, RefetchRecord, UpsertRecord
from connectors.cursors import DatetimeCursor
from connectors.jira import JiraConfig, JiraConnector
from fakes.jira import RecordedJira
from hub.normalise import Normaliser
from hub.schema import WorkItem
from tests.conftest import SHARED_FIXTURES, shared_fixtures

pytestmark = [pytest.mark.anyio, pytest.mark.fixtures]

SECRET = "pull-webhook-secret"
HUB_ONLY = {"raw", "synced_at", "version"}
# The mapping overrides of the source under test: the pull must ask for what they read too.
OVERRIDES: dict[str, Any] = {"custom": {"rank": "Rank"}}
# The custom fields of the sites the payloads come from, as their values show them (a
# greenhopper Sprint string, an Epic Link key, a LexoRank): the catalogs were not captured.
SITE_CUSTOM_FIELDS: dict[str, list[dict[str, Any]]] = {
    "mmtest.atlassian.net": [
        {"id": "customfield_10021", "name": "Sprint", "custom": True},
        {"id": "customfield_10014", "name": "Epic Link", "custom": True},
        {"id": "customfield_10022", "name": "Rank", "custom": True},
    ],
    "some-instance-test.atlassian.net": [
        {"id": "customfield_10021", "name": "Sprint", "custom": True},
        {"id": "customfield_10014", "name": "Epic Link", "custom": True},
        {"id": "customfield_10022", "name": "Rank", "custom": True},
    ],
    "airbyteio.atlassian.net": [{"id": "customfield_10019", "name": "Rank", "custom": True}],
}
# Set in the "estimated" variant: seconds (Jira's unit for time tracking) and a date.
ESTIMATED = {"timeoriginalestimate": 5400, "startdate": "2019-08-01"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _deliveries() -> list[tuple[str, dict[str, Any]]]:
    """(case name, webhook delivery) for every issue a fixture carries."""
    if not SHARED_FIXTURES.joinpath("jira").exists():
        return []
    out: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((SHARED_FIXTURES / "jira").glob("*.json")):
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            continue
        if isinstance(data.get("issue"), dict):
            out.append((path.stem, data))
        elif isinstance(data.get("issues"), list):
            out += [(f"{path.stem}[{n}]", _envelope(i)) for n, i in enumerate(data["issues"]) if isinstance(i, dict)]
        elif "fields" in data and "key" in data:
            out.append((path.stem, _envelope(data)))
    return out


def _envelope(issue: dict[str, Any]) -> dict[str, Any]:
    """The documented issue-updated delivery around a REST issue.
    https://developer.atlassian.com/cloud/jira/platform/webhooks/#example-callback-for-an-issue-related-event"""
    return {"timestamp": 1700000000000, "webhookEvent": "jira:issue_updated", "issue": issue}


CASES = _deliveries()


def _site(issue: dict[str, Any]) -> str:
    return str(issue.get("self", "")).split("/")[2] if "://" in str(issue.get("self", "")) else ""


def _served_issue(delivery: dict[str, Any]) -> dict[str, Any]:
    """The issue the fake Jira holds. A comment delivery's issue is a stub without times: Jira
    stamps the issue's `updated` with the comment's, so the served issue carries those."""
    issue = copy.deepcopy(delivery["issue"])
    comment = delivery.get("comment")
    fields = issue.setdefault("fields", {})
    if isinstance(comment, dict) and "updated" not in fields:
        fields["created"] = comment.get("created")
        fields["updated"] = comment.get("updated")
    return issue


def _comparable(item: WorkItem) -> dict[str, Any]:
    return item.model_dump(mode="json", exclude=HUB_ONLY)


@pytest.mark.skipif(not CASES, reason="real payloads not found in ../shared/fixtures/jira")
@pytest.mark.parametrize("variant", ["as-captured", "estimated"])
@pytest.mark.parametrize(("name", "captured"), CASES, ids=[name for name, _ in CASES])
async def test_pull_and_webhook_map_the_same_issue_alike(name: str, captured: dict[str, Any], variant: str) -> None:
    shared_fixtures("jira")
    delivery = copy.deepcopy(captured)
    if variant == "estimated":
        delivery["issue"].setdefault("fields", {}).update(ESTIMATED)
    served = _served_issue(delivery)
    issue_id = str(served["id"])
    project = RecordedJira._project_key(served)
    fake = RecordedJira([served], catalog=SITE_CUSTOM_FIELDS.get(_site(served), []))
    config = JiraConfig(
        base_url=fake.base_url,
        email=fake.email,
        api_token=fake.api_token,
        projects=[project],
        webhook_secret=SECRET,
        mapping=OVERRIDES,
    )
    async with JiraConnector("acme-jira", config, transport=httpx.ASGITransport(fake.app)) as jira:
        normaliser = Normaliser("jira", await jira.mapping_context(), config.mapping)

        pulled = [r for page in [p async for p in jira.fetch(None)] for r in page.records]
        assert [jira.native_id(r) for r in pulled] == [issue_id]
        by_pull = normaliser.map(pulled[0])

        body = orjson.dumps(delivery)
        headers = {
            "X-Hub-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
            "X-Atlassian-Webhook-Identifier": f"case-{name}-{variant}",
        }
        jira.verify(headers, body)
        events = jira.parse(headers, body).events
        if delivery["webhookEvent"] == "jira:issue_deleted":
            # The deletion carries the issue as it was: it maps as that issue's last update did.
            assert events == [DeleteRecord(issue_id, at=events[0].at)]  # type: ignore[union-attr]
            events = jira.parse(headers, orjson.dumps({**delivery, "webhookEvent": "jira:issue_updated"})).events
        assert len(events) == 1, events
        event = events[0]
        if isinstance(event, UpsertRecord):
            by_webhook = normaliser.map(event.record)
        else:
            assert isinstance(event, RefetchRecord), event
            assert event.native_id == issue_id
            record = await jira.fetch_one(event.native_id)
            assert record is not None
            by_webhook = normaliser.map(record)

    assert _comparable(by_pull) == _comparable(by_webhook)
    if variant == "estimated" and isinstance(event, UpsertRecord):
        # The point of the variant: the values reached the item on both sides.
        assert by_pull.estimate is not None and (by_pull.estimate.value, by_pull.estimate.unit.value) == (1.5, "hours")
        assert str(by_pull.start_on) == ESTIMATED["startdate"]


def test_every_issue_payload_is_a_case() -> None:
    """Guards the parametrisation: a fixture that carries an issue is never silently skipped."""
    directory: Path = shared_fixtures("jira")
    names = {name.split("[")[0] for name, _ in CASES}
    for path in directory.glob("*.json"):
        text = path.read_text()
        if '"issue"' in text or '"issues"' in text or ('"fields"' in text and '"key"' in text):
            data = json.loads(text)
            carries = isinstance(data, dict) and (
                isinstance(data.get("issue"), dict) or isinstance(data.get("issues"), list) or "fields" in data
            )
            assert not carries or path.stem in names, path.name
    assert len(CASES) >= 25


async def test_search_and_refetch_ask_for_what_the_mapping_reads() -> None:
    """The `fields` parameter of a search and of a refetch: the fields mappings/jira.yaml reads
    (original estimate and start date included), the custom fields of the source's overrides
    resolved to their ids on this site, and nothing the mapping never reads."""
    if not CASES:
        pytest.skip("real payloads not found in ../shared/fixtures/jira")
    issue = _served_issue(CASES[0][1])
    catalog = [
        {"id": "customfield_10016", "name": "Story Points", "custom": True},
        {"id": "customfield_10022", "name": "Rank", "custom": True},
        {"id": "customfield_10099", "name": "Team", "custom": True},
    ]
    fake = RecordedJira([issue], catalog=catalog)
    config = JiraConfig(
        base_url=fake.base_url,
        email=fake.email,
        api_token=fake.api_token,
        projects=[RecordedJira._project_key(issue)],
        mapping=OVERRIDES,
    )
    bulk: list[str] = []

    class Recording(httpx.ASGITransport):
        """A full run asks for the fields in a bulk fetch's body, which the fake's log lacks."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/issue/bulkfetch"):
                bulk.append(",".join(json.loads(request.content)["fields"]))
            return await super().handle_async_request(request)

    since = DatetimeCursor(datetime(2000, 1, 1, tzinfo=UTC)).serialize()
    async with JiraConnector("acme-jira", config, transport=Recording(fake.app)) as jira:
        [p async for p in jira.fetch(None)]  # a full run: ids, then a bulk fetch
        [p async for p in jira.fetch(since)]  # an incremental run: a search
        await jira.fetch_one(str(issue["id"]))
    searches = [e for e in fake.log.entries if e.path.startswith("/rest/api/3/search/jql")]
    asked = [e.param("fields") for e in searches if e.param("fields") != "id"]
    asked += [
        e.param("fields") for e in fake.log.entries if e.path.startswith("/rest/api/3/issue/") and e.method == "GET"
    ]
    asked += bulk
    assert len(asked) == 3 and asked[0] == asked[1] == asked[2]
    fields = set((asked[0] or "").split(","))
    assert {"timeoriginalestimate", "startdate", "updated", "summary", "issuetype", "status"} <= fields
    assert {"customfield_10016", "customfield_10022"} <= fields  # a role of the spec, an override
    assert "customfield_10099" not in fields  # on the site, read by nothing
    assert "subtasks" not in fields and "comment" not in fields
