"""Jira Cloud quirks (respx-mocked) and the real payloads in ../shared/fixtures/jira."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors.base import ConnectorError, DeleteRecord, IgnoreEvent, RefetchRecord, UpsertRecord, WebhookRejected
from connectors.cursors import DatetimeCursor
from connectors.jira import JiraConfig, JiraConnector
from connectors.registry import connector_class
from tests.conftest import shared_fixtures

BASE = "https://acme.atlassian.net"
SECRET = "test-webhook-secret"
SEARCH = f"{BASE}/rest/api/3/search/jql"
pytestmark = pytest.mark.anyio

CATALOG = [
    {"id": "summary", "name": "Summary", "custom": False},
    {"id": "updated", "name": "Updated", "custom": False},
    {"id": "customfield_10028", "name": "Story Points", "custom": True},
    {"id": "customfield_10020", "name": "Sprint", "custom": True},
    {"id": "customfield_10014", "name": "Epic Link", "custom": True},
    {"id": "customfield_10090", "name": "Reach", "custom": True},
    {"id": "customfield_10091", "name": "Team", "custom": True},
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def config(**overrides: Any) -> JiraConfig:
    raw: dict[str, Any] = {
        "base_url": BASE,
        "email": "bot@acme.test",
        "api_token": "tok",
        "projects": ["PROJ"],
        "webhook_secret": SECRET,
    }
    raw.update(overrides)
    return JiraConfig.model_validate({k: v for k, v in raw.items() if v is not None})


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def mock_site(time_zone: str | None = "America/Los_Angeles", catalog: list[dict[str, Any]] | None = None) -> None:
    respx.get(f"{BASE}/rest/api/3/myself").mock(
        return_value=httpx.Response(200, json={"accountId": "1", **({"timeZone": time_zone} if time_zone else {})})
    )
    respx.get(f"{BASE}/rest/api/3/field").mock(return_value=httpx.Response(200, json=catalog or CATALOG))


def cursor_at(when: datetime, native_id: str = "10001") -> str:
    text = DatetimeCursor(when, native_id).serialize()
    assert text is not None
    return text


# ---------------------------------------------------------------- config


def test_registered_under_the_entry_point() -> None:
    assert connector_class("jira") is JiraConnector


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bearer_token": "b"}, "exactly one way to authenticate"),
        ({"email": None, "api_token": None}, "exactly one way to authenticate"),
        ({"api_token": None}, "email and api_token go together"),
        ({"jql": "labels = x"}, "exactly one scope"),
        ({"projects": None}, "exactly one scope"),
        ({"projects": None, "jql": "project = X ORDER BY created"}, "must not contain ORDER BY"),
        ({"projects": ["proj x"]}, "not Jira project keys"),
        ({"base_url": "acme.atlassian.net"}, "base_url"),
        ({"overlap": "soon"}, "not a duration"),
    ],
)
def test_config_errors_are_clear(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**overrides)


def test_secrets_never_show_in_reprs() -> None:
    cfg = config(api_token="very-secret-token")
    assert "very-secret-token" not in repr(cfg)
    assert SECRET not in str(cfg.model_dump())


# ---------------------------------------------------------------- auth headers


@respx.mock
async def test_basic_auth_header() -> None:
    mock_site()
    async with JiraConnector("acme-jira", config()) as jira:
        await jira.field_catalog()
    header = respx.calls.last.request.headers["authorization"]
    assert header == "Basic " + base64.b64encode(b"bot@acme.test:tok").decode()


@respx.mock
async def test_bearer_auth_header() -> None:
    mock_site()
    async with JiraConnector("acme-jira", config(email=None, api_token=None, bearer_token="oauth-xyz")) as jira:
        await jira.field_catalog()
        assert "oauth-xyz" not in repr(jira.http._client.headers)
    assert respx.calls.last.request.headers["authorization"] == "Bearer oauth-xyz"


# ---------------------------------------------------------------- JQL and fields


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # cursor 2026-01-15 12:03:40 UTC minus 5m overlap = 11:58:40 UTC, rounded down to the minute
        ("America/Los_Angeles", "2026/01/15 03:58"),
        ("Europe/Berlin", "2026/01/15 12:58"),
        ("Asia/Kolkata", "2026/01/15 17:28"),
        ("UTC", "2026/01/15 11:58"),
        (None, "2026/01/14 21:58"),  # zone unknown: widened by 14 h, never narrowed
    ],
)
@respx.mock
async def test_incremental_jql_is_in_the_users_time_zone(zone: str | None, expected: str) -> None:
    mock_site(zone)
    search = respx.get(SEARCH).mock(return_value=httpx.Response(200, json={"issues": [], "isLast": True}))
    async with JiraConnector("acme-jira", config()) as jira:
        pages = [p async for p in jira.fetch(cursor_at(datetime(2026, 1, 15, 12, 3, 40, tzinfo=UTC)))]
    assert len(pages) == 1
    jql = search.calls.last.request.url.params["jql"]
    assert jql == f'project in ("PROJ") AND updated >= "{expected}" ORDER BY updated ASC, id ASC'


@respx.mock
async def test_time_zone_is_read_once_per_run_and_full_sync_has_no_updated_clause() -> None:
    mock_site()
    search = respx.get(SEARCH).mock(return_value=httpx.Response(200, json={"issues": [], "isLast": True}))
    async with JiraConnector("acme-jira", config(projects=None, jql="labels = roadmap")) as jira:
        [p async for p in jira.fetch(None)]
        assert search.calls.last.request.url.params["jql"] == "(labels = roadmap) ORDER BY updated ASC, id ASC"
        await jira.mapping_context()
        for _ in range(2):
            [p async for p in jira.fetch(cursor_at(datetime(2026, 1, 1, tzinfo=UTC)))]
    paths = [call.request.url.path for call in respx.calls]
    assert paths.count("/rest/api/3/myself") == 1
    assert paths.count("/rest/api/3/field") == 1


@respx.mock
async def test_fields_include_custom_fields_resolved_by_name() -> None:
    mock_site()
    search = respx.get(SEARCH).mock(return_value=httpx.Response(200, json={"issues": [], "isLast": True}))
    cfg = config(fields=["Team", "customfield_10999"], mapping={"estimate": {"field": "Story Points"}})
    catalog = [*CATALOG, {"id": "customfield_10999", "name": "Odd", "custom": True}]
    respx.get(f"{BASE}/rest/api/3/field").mock(return_value=httpx.Response(200, json=catalog))
    async with JiraConnector("acme-jira", cfg) as jira:
        # An incremental run searches with the fields (a full run asks a bulk fetch for them:
        # test_full_run_lists_ids_then_fetches_them_in_bulk_in_listing_order).
        [p async for p in jira.fetch(cursor_at(datetime(2026, 1, 1, tzinfo=UTC)))]
    params = search.calls.last.request.url.params
    fields = params["fields"].split(",")
    assert {"summary", "description", "status", "priority", "issuetype", "parent", "updated"} <= set(fields)
    assert {"customfield_10028", "customfield_10020", "customfield_10014", "customfield_10090"} <= set(fields)
    assert {"customfield_10091", "customfield_10999"} <= set(fields)
    assert params["maxResults"] == "100"


BULK = f"{BASE}/rest/api/3/issue/bulkfetch"


def issue(native_id: str, updated: str) -> dict[str, Any]:
    return {"id": native_id, "key": f"PROJ-{native_id}", "fields": {"updated": updated}}


@respx.mock
async def test_full_run_lists_ids_then_fetches_them_in_bulk_in_listing_order() -> None:
    """A full run lists ids (5,000 a page), then bulk-fetches `page_size` of them a request with
    the fields an incremental search asks for, and yields the pages in listing order, each
    issue in listing order (Jira answers a bulk fetch in id order), an issue listed twice once."""
    mock_site()
    listed = ["30", "10", "20", "40", "10", "50"]
    listing = respx.get(SEARCH).mock(
        return_value=httpx.Response(200, json={"issues": [{"id": i} for i in listed], "isLast": True})
    )
    updated = {"10": "2026-01-01T10:00:00.000+0000", "20": "2026-01-01T11:00:00.000+0000"}
    updated |= {"30": "2026-01-01T09:00:00.000+0000", "40": "2026-01-01T12:00:00.000+0000"}

    def answer(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["issueIdsOrKeys"]
        found = sorted((i for i in ids if i in updated), key=int)  # "50" is gone meanwhile
        return httpx.Response(200, json={"issues": [issue(i, updated[i]) for i in found], "issueErrors": []})

    bulk = respx.post(BULK).mock(side_effect=answer)
    async with JiraConnector("acme-jira", config(page_size=2)) as jira:
        pages = [p async for p in jira.fetch(None)]
        fields = await jira.request_fields()
    assert listing.calls.last.request.url.params["fields"] == "id"
    assert listing.calls.last.request.url.params["maxResults"] == "5000"
    assert [[r["id"] for r in p.records] for p in pages] == [["30", "10"], ["20", "40"], []]
    bodies = [json.loads(call.request.content) for call in bulk.calls]
    assert sorted(b["issueIdsOrKeys"] for b in bodies) == [["20", "40"], ["30", "10"], ["50"]]
    assert all(b["fields"] == fields for b in bodies)
    cursors = [DatetimeCursor.parse(p.cursor) for p in pages]
    assert [(c.updated and c.updated.hour, c.last_id) for c in cursors] == [(10, "10"), (12, "40"), (12, "40")]


@respx.mock
async def test_full_run_cursor_skips_issues_edited_after_the_listing_began() -> None:
    """An issue edited after the listing began sorts after issues not stored yet: its time must
    not move the cursor, or a resume would skip them. It is stored all the same."""
    mock_site()
    respx.get(SEARCH).mock(
        return_value=httpx.Response(200, json={"issues": [{"id": "1"}, {"id": "2"}], "isLast": True})
    )
    future = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", ".000+0000")
    answers = {"1": issue("1", "2026-01-01T10:00:00.000+0000"), "2": issue("2", future)}

    def answer(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["issueIdsOrKeys"]
        return httpx.Response(200, json={"issues": [answers[i] for i in ids], "issueErrors": []})

    respx.post(BULK).mock(side_effect=answer)
    async with JiraConnector("acme-jira", config(page_size=1)) as jira:
        pages = [p async for p in jira.fetch(None)]
    assert [p.records[0]["id"] for p in pages] == ["1", "2"]
    assert pages[0].cursor == pages[1].cursor == cursor_at(datetime(2026, 1, 1, 10, tzinfo=UTC), "1")


@respx.mock
async def test_full_run_fails_when_a_bulk_fetch_reports_issue_errors() -> None:
    mock_site()
    respx.get(SEARCH).mock(return_value=httpx.Response(200, json={"issues": [{"id": "1"}], "isLast": True}))
    errors = [{"id": 1, "errorMessage": "Retry later", "errorType": "retriable"}]
    respx.post(BULK).mock(return_value=httpx.Response(200, json={"issues": [], "issueErrors": errors}))
    async with JiraConnector("acme-jira", config()) as jira:
        with pytest.raises(ConnectorError, match="could not return 1 issue"):
            [p async for p in jira.fetch(None)]


@respx.mock
async def test_unknown_configured_field_is_a_clear_error() -> None:
    mock_site()
    async with JiraConnector("acme-jira", config(fields=["Nonexistent"])) as jira:
        with pytest.raises(ConnectorError, match="'Nonexistent' is neither a field id nor a field name"):
            await jira.request_fields()


@respx.mock
async def test_rate_limit_reset_header_is_honoured() -> None:
    mock_site()
    reset = datetime.now(UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%MZ")
    respx.get(SEARCH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "5", "X-RateLimit-Reset": reset}),
            httpx.Response(200, json={"issues": [], "isLast": True}),
        ]
    )
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with JiraConnector("acme-jira", config(), sleep=sleep) as jira:
        [p async for p in jira.fetch(None)]
    assert waits == [5.0]  # the reset time is in the past here: Retry-After decides


# ---------------------------------------------------------------- webhook routing


def jira_webhook(jira: JiraConnector, payload: dict[str, Any], delivery: str | None = "d-1") -> list[Any]:
    body = json.dumps(payload).encode()
    headers = {"X-Hub-Signature": sign(body)}
    if delivery:
        headers["X-Atlassian-Webhook-Identifier"] = delivery
    jira.verify(headers, body)
    return jira.parse(headers, body).events


async def test_webhook_event_routing() -> None:
    jira = JiraConnector("acme-jira", config())
    issue = {
        "id": "10001",
        "key": "PROJ-1",
        "fields": {"updated": "2026-01-01T00:00:00.000+0000", "project": {"key": "PROJ"}},
    }
    assert jira_webhook(jira, {"webhookEvent": "jira:issue_created", "issue": issue}) == [UpsertRecord(issue)]
    thin = {"id": "10001", "key": "PROJ-1"}
    assert jira_webhook(jira, {"webhookEvent": "jira:issue_updated", "issue": thin}) == [RefetchRecord("10001")]
    other = {**issue, "fields": {**issue["fields"], "project": {"key": "ELSE"}}}
    (ignored,) = jira_webhook(jira, {"webhookEvent": "jira:issue_updated", "issue": other})
    assert isinstance(ignored, IgnoreEvent)
    assert "outside" in ignored.reason
    link = {"webhookEvent": "issuelink_created", "issueLink": {"sourceIssueId": 1, "destinationIssueId": 2}}
    assert jira_webhook(jira, link) == [RefetchRecord("1"), RefetchRecord("2")]
    (unknown,) = jira_webhook(jira, {"webhookEvent": "jira:version_released"})
    assert isinstance(unknown, IgnoreEvent)
    with pytest.raises(ValueError, match="not JSON"):
        jira.parse({}, b"{nope")
    await jira.aclose()


async def test_delivery_id_falls_back_to_body_hash() -> None:
    jira = JiraConnector("acme-jira", config())
    body = b'{"webhookEvent": "x"}'
    assert jira.parse({}, body).delivery_id == "sha256:" + hashlib.sha256(body).hexdigest()
    assert jira.parse({"x-atlassian-webhook-identifier": "abc"}, body).delivery_id == "abc"
    await jira.aclose()


async def test_unsigned_webhooks_only_when_configured() -> None:
    body = b'{"webhookEvent": "x"}'
    strict = JiraConnector("acme-jira", config(webhook_secret=None))
    with pytest.raises(WebhookRejected, match="no webhook_secret"):
        strict.verify({}, body)
    lenient = JiraConnector("acme-jira", config(webhook_secret=None, webhook_unsigned=True))
    lenient.verify({}, body)
    for bad in ["sha1=abc", "sha256=", "nonsense", sign(body, "other")]:
        with pytest.raises(WebhookRejected):
            JiraConnector("acme-jira", config()).verify({"X-Hub-Signature": bad}, body)
    await strict.aclose()
    await lenient.aclose()


# ---------------------------------------------------------------- the real payloads


def fixture_files(pattern: str) -> list[Path]:
    files = sorted(shared_fixtures("jira").glob(pattern))
    assert files, f"no {pattern} in the shared fixtures"
    return files


@pytest.mark.fixtures
async def test_every_webhook_fixture_verifies_and_parses() -> None:
    jira = JiraConnector("acme-jira", config(projects=None, jql="project is not EMPTY"))
    for path in fixture_files("webhook-*.json"):
        body = path.read_bytes()
        payload = json.loads(body)
        event = payload["webhookEvent"]
        issue_id = str(payload["issue"]["id"])
        headers = {"X-Hub-Signature": sign(body), "X-Atlassian-Webhook-Identifier": f"id-{path.name}"}
        jira.verify(headers, body)
        with pytest.raises(WebhookRejected):
            jira.verify({"X-Hub-Signature": sign(body, "wrong")}, body)
        with pytest.raises(WebhookRejected):
            jira.verify({}, body)
        delivery = jira.parse(headers, body)
        assert delivery.delivery_id == f"id-{path.name}"
        assert jira.parse({}, body).delivery_id == jira.parse({}, body).delivery_id
        if event in ("jira:issue_created", "jira:issue_updated"):
            assert delivery.events == [UpsertRecord(payload["issue"])], path.name
            assert jira.native_id(payload["issue"]) == issue_id
        elif event == "jira:issue_deleted":
            at = datetime.fromtimestamp(payload["timestamp"] / 1000, UTC)
            assert delivery.events == [DeleteRecord(issue_id, at=at)], path.name
        elif event.startswith("comment_"):
            assert delivery.events == [RefetchRecord(issue_id)], path.name
        else:
            pytest.fail(f"unexpected event {event} in {path.name}")
    await jira.aclose()


@pytest.mark.fixtures
@respx.mock
async def test_search_jql_examples_parse_with_paging() -> None:
    openapi = json.loads(fixture_files("openapi-example-GET-rest-api-3-search-jql-200.json")[0].read_text())
    airbyte = json.loads(
        fixture_files("search-v3-issue-with-adf-and-customfields.airbyte-unit-test.json")[0].read_text()
    )
    # the OpenAPI example is a last page; make it the first of two by adding a token
    first = {**openapi, "isLast": False, "nextPageToken": "page-2"}
    mock_site(catalog=json.loads(fixture_files("GET-rest-api-2-field.captured-2013.aha-services.json")[0].read_text()))
    search = respx.get(SEARCH).mock(side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=airbyte)])
    async with JiraConnector("acme-jira", config()) as jira:
        # an incremental run pages the search (a full run lists ids and bulk-fetches them)
        pages = [p async for p in jira.fetch(cursor_at(datetime(2000, 1, 1, tzinfo=UTC)))]
    assert [jira.native_id(r) for p in pages for r in p.records] == [
        *(str(i["id"]) for i in openapi["issues"]),
        *(str(i["id"]) for i in airbyte["issues"]),
    ]
    assert "nextPageToken" not in search.calls[0].request.url.params
    assert search.calls[1].request.url.params["nextPageToken"] == "page-2"
    last = DatetimeCursor.parse(pages[-1].cursor)
    assert last.updated == datetime(2022, 12, 8, 10, 22, 18, 889000, tzinfo=UTC)
    assert last.last_id == "10627"
    # the 2013 catalog's custom fields resolve by name
    fields = search.calls[0].request.url.params["fields"].split(",")
    assert {"customfield_10004", "customfield_10007", "customfield_10008"} <= set(fields)


@pytest.mark.fixtures
@respx.mock
async def test_field_examples_feed_the_mapping_context() -> None:
    for path in fixture_files("*rest-api-*-field*.json"):
        data = json.loads(path.read_text())
        catalog = data["values"] if isinstance(data, dict) else data
        respx.get(f"{BASE}/rest/api/3/field").mock(return_value=httpx.Response(200, json=catalog))
        async with JiraConnector("acme-jira", config()) as jira:
            context = await jira.mapping_context()
            fields = await jira.request_fields()
        assert context["source"] == "acme-jira"
        assert context["tool"] == "jira"
        assert context["base_url"] == BASE
        assert context["fields"] == catalog
        assert "summary" in fields
