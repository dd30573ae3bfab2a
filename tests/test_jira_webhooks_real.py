"""Every real Jira webhook payload in ../shared/fixtures/jira, posted signed to /webhooks/{source}.

The expected item state is read from each payload with a small table written here (not by
re-running the mapping), so a mapping or routing mistake shows up as a mismatch. Comment
events make the hub refetch the issue: the Jira API is a local mock transport serving an
issue we wrote for that id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.base import Connector
from hub.api.app import create_app
from hub.config import SourceDefinition, parse_config
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from tests.conftest import shared_fixtures

SOURCE = "acme-jira"
SECRET = "jira-webhook-secret"
BASE_URL = "https://acme.atlassian.net"

KIND = {"Story": "story", "Task": "task", "Bug": "bug", "Epic": "epic", "Sub-task": "subtask", "Subtask": "subtask"}
CATEGORY = {"new": "todo", "indeterminate": "in_progress", "done": "done"}
PRIORITY = {"Highest": "urgent", "High": "high", "Medium": "medium", "Low": "low", "Lowest": "low"}


def _fixtures(pattern: str) -> list[Path]:
    return sorted(shared_fixtures("jira").glob(pattern))


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _signed(body: bytes, delivery: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Hub-Signature": f"sha256={digest}",
        "X-Atlassian-Webhook-Identifier": delivery,
    }


def _refetched_issue(issue_id: str, key: str) -> dict[str, Any]:
    """The issue our mock Jira answers on a refetch (comment events carry only a stub)."""
    return {
        "id": issue_id,
        "key": key,
        "self": f"{BASE_URL}/rest/api/3/issue/{issue_id}",
        "fields": {
            "summary": f"Refetched {key}",
            "issuetype": {"name": "Bug"},
            "status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}},
            "priority": {"name": "Highest"},
            "project": {"id": "1", "key": key.split("-")[0], "name": "P"},
            "labels": ["from-refetch"],
            "created": "2026-01-01T10:00:00.000+0000",
            "updated": "2026-01-02T10:00:00.000+0000",
        },
    }


def _jira_api(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/rest/api/3/field":
        return httpx.Response(200, json=[])
    if path == "/rest/api/3/myself":
        return httpx.Response(200, json={"accountId": "me", "timeZone": "UTC"})
    if path.startswith("/rest/api/3/issue/"):
        issue_id = path.rsplit("/", 1)[1]
        return httpx.Response(200, json=_refetched_issue(issue_id, REFETCH_KEYS.get(issue_id, f"X-{issue_id}")))
    return httpx.Response(404, json={"errorMessages": ["not mocked"]})


REFETCH_KEYS: dict[str, str] = {}


@pytest.fixture
def client(sqlite_store: Store) -> Iterator[TestClient]:
    config = parse_config(
        {
            "sources": {
                SOURCE: {
                    "tool": "jira",
                    "base_url": BASE_URL,
                    "email": "ops@acme.test",
                    "api_token": "token",
                    "jql": "project is not EMPTY",
                    "webhook_secret": SECRET,
                }
            }
        }
    )

    def connector(source: SourceDefinition) -> Connector:
        return source.connector_cls(source.name, source.config, transport=httpx.MockTransport(_jira_api))

    app = create_app(sqlite_store, Settings(background_tasks=False), config=config, connector_factory=connector)
    _, token = sqlite_store.keys.create(Scope.read, "test")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


def _post(client: TestClient, payload: dict[str, Any], delivery: str) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    response = client.post(f"/webhooks/{SOURCE}", content=body, headers=_signed(body, delivery))
    assert response.status_code == 202, response.text
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    client.portal.call(runtime.worker.drain)  # type: ignore[union-attr]
    return response.json()  # type: ignore[no-any-return]


def _item(client: TestClient, issue_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/items/{SOURCE}:{issue_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "path", _fixtures("webhook-jira_issue_[cu]*.json"), ids=_ids(_fixtures("webhook-jira_issue_[cu]*.json"))
)
def test_issue_event_yields_the_payloads_state(client: TestClient, path: Path) -> None:
    payload = json.loads(path.read_text())
    issue = payload["issue"]
    fields = issue["fields"]
    _post(client, payload, f"delivery-{path.stem}")
    item = _item(client, issue["id"])
    assert item["key"] == issue["key"]
    assert item["title"] == fields["summary"]
    assert item["kind"] == KIND[fields["issuetype"]["name"]]
    assert item["status"]["category"] == CATEGORY[fields["status"]["statusCategory"]["key"]]
    assert item["status"]["name"] == fields["status"]["name"]
    assert item["priority"]["level"] == PRIORITY[fields["priority"]["name"]]
    assignee = fields.get("assignee")
    assert [a["native_id"] for a in item["assignees"]] == ([assignee["accountId"]] if assignee else [])
    assert item["labels"] == fields.get("labels", [])
    parent = fields.get("parent")
    assert item["parent_id"] == (f"{SOURCE}:{parent['id']}" if parent else None)
    assert item["url"] == f"{BASE_URL}/browse/{issue['key']}"
    assert item["deleted"] is False


def test_issue_deleted_tombstones(client: TestClient) -> None:
    (path,) = _fixtures("webhook-jira_issue_deleted.json")
    payload = json.loads(path.read_text())
    issue_id = payload["issue"]["id"]
    _post(client, {**payload, "webhookEvent": "jira:issue_updated"}, "seed")  # the item exists first
    assert _item(client, issue_id)["deleted"] is False
    _post(client, payload, "delete")
    assert _item(client, issue_id)["deleted"] is True
    listed = client.get("/v1/items", params={"source": SOURCE}).json()["items"]
    assert issue_id not in {i["native_id"] for i in listed}


@pytest.mark.parametrize("path", _fixtures("webhook-comment_*.json"), ids=_ids(_fixtures("webhook-comment_*.json")))
def test_comment_event_refetches_the_issue(client: TestClient, path: Path) -> None:
    payload = json.loads(path.read_text())
    issue_id, key = payload["issue"]["id"], payload["issue"]["key"]
    REFETCH_KEYS[issue_id] = key
    _post(client, payload, f"delivery-{path.stem}")
    item = _item(client, issue_id)
    assert item["key"] == key
    assert item["title"] == f"Refetched {key}"  # from the API, not the comment's stub
    assert item["kind"] == "bug" and item["priority"]["level"] == "urgent"


def test_every_fixture_is_covered() -> None:
    covered = set(_fixtures("webhook-jira_issue_[cu]*.json")) | set(_fixtures("webhook-comment_*.json"))
    covered |= set(_fixtures("webhook-jira_issue_deleted.json"))
    assert covered == set(_fixtures("webhook-*.json"))
    assert len(covered) >= 20


def test_same_delivery_twice_has_one_effect(client: TestClient) -> None:
    (path,) = _fixtures("webhook-jira_issue_created.json")
    payload = json.loads(path.read_text())
    assert _post(client, payload, "same")["duplicate"] is False
    version = _item(client, payload["issue"]["id"])["version"]
    assert _post(client, payload, "same")["duplicate"] is True
    assert _item(client, payload["issue"]["id"])["version"] == version


def test_tampered_body_is_rejected(client: TestClient) -> None:
    (path,) = _fixtures("webhook-jira_issue_created.json")
    body = path.read_bytes()
    headers = _signed(body, "tampered")
    response = client.post(f"/webhooks/{SOURCE}", content=body.replace(b"Story", b"Epic"), headers=headers)
    assert response.status_code == 401
    assert client.get(f"/v1/items/{SOURCE}:{json.loads(body)['issue']['id']}").status_code == 404


def test_refetch_writes_changes_the_tool_did_not_timestamp(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refetched record is the tool's current state: equal update time, new content -> written."""
    (path,) = _fixtures("webhook-comment_created.json")
    payload = json.loads(path.read_text())
    issue_id, key = payload["issue"]["id"], payload["issue"]["key"]
    REFETCH_KEYS[issue_id] = key
    _post(client, payload, "first")
    assert _item(client, issue_id)["title"] == f"Refetched {key}"

    original = _refetched_issue

    def renamed(issue_id: str, key: str) -> dict[str, Any]:
        issue = original(issue_id, key)
        issue["fields"]["summary"] = "Renamed without a new update time"
        return issue

    monkeypatch.setattr(f"{__name__}._refetched_issue", renamed)
    _post(client, payload, "second")
    assert _item(client, issue_id)["title"] == "Renamed without a new update time"

    def older(issue_id: str, key: str) -> dict[str, Any]:
        issue = original(issue_id, key)
        issue["fields"]["summary"] = "Stale"
        issue["fields"]["updated"] = "2025-01-01T10:00:00.000+0000"
        return issue

    monkeypatch.setattr(f"{__name__}._refetched_issue", older)
    _post(client, payload, "third")
    assert _item(client, issue_id)["title"] == "Renamed without a new update time"  # never rolled back
