"""Redmine end to end against a real Redmine server (Debian's package on loopback).

`scripts/redmine-server` installs (once) and starts Redmine on 127.0.0.1:3999 and prints the
URL and the admin API key. Under CI=true a server that cannot be started fails the test;
elsewhere it skips with the reason. Each run seeds a fresh project (unique identifier)
through Redmine's own REST API, so runs never see each other's issues.

Scenario: seed issues (parent/child, custom fields, closed and rejected statuses, non-ASCII
text, estimated hours, Textile), sync through the hub, edit and delete some in Redmine, sync
again with the id sweep, and compare the hub with Redmine field by field.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import AuthFailed
from connectors.redmine import RedmineConnector
from hub.config import parse_config
from hub.store import Store
from hub.sync import SyncEngine

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
REDMINE_APP = Path("/usr/share/redmine")
SOURCE = "redmine-e2e"

# Default data of Debian's package (verified against /issue_statuses.json, /trackers.json,
# /enumerations/issue_priorities.json): ids are stable across installs of the default data.
BUG, FEATURE, SUPPORT = 1, 2, 3
NEW, IN_PROGRESS, RESOLVED, CLOSED, REJECTED = 1, 2, 3, 5, 6
LOW, NORMAL, HIGH, URGENT = 1, 2, 3, 4
EXPECTED_CATEGORY = {"New": "todo", "In Progress": "in_progress", "Resolved": "done", "Closed": "done"}
EXPECTED_CATEGORY["Rejected"] = "cancelled"
EXPECTED_LEVEL = {"Low": "low", "Normal": "medium", "High": "high", "Urgent": "urgent", "Immediate": "urgent"}
EXPECTED_KIND = {"Bug": "bug", "Feature": "feature", "Support": "task"}

# Custom fields cannot be created through the REST API (only read): `rails runner` makes them.
CUSTOM_FIELDS_RUBY = """
require "json"
ids = {}
[["Story Points", "float"], ["Customer", "string"]].each do |name, format|
  cf = IssueCustomField.find_by(name: name) || IssueCustomField.create!(
    name: name, field_format: format, is_for_all: true, visible: true, tracker_ids: Tracker.pluck(:id))
  ids[name] = cf.id
end
puts JSON.generate(ids)
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"a real Redmine is required under CI=true: {reason}")
    pytest.skip(f"real Redmine not available: {reason}")


REDMINE_SCRIPT = ROOT / "scripts" / "redmine-server"


def _script(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REDMINE_SCRIPT), *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def redmine_server() -> Iterator[tuple[str, str]]:
    """(base URL, admin API key) of the loopback Redmine, started by scripts/redmine-server.

    A server this session started is stopped after the suite; one that was already running
    (a developer's, or another session's) is reused and left running."""
    try:
        started_here = _script("status", timeout=30).returncode != 0
        done = _script("start")
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"scripts/redmine-server did not finish: {exc}")
    try:
        lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or len(lines) < 2 or not lines[-2].startswith("http"):
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            _unavailable(f"scripts/redmine-server exited {done.returncode}: {' | '.join(tail)}")
        yield lines[-2], lines[-1]
    finally:
        if started_here:
            _script("stop", timeout=60)


@pytest.fixture(scope="session")
def custom_fields(redmine_server: tuple[str, str]) -> dict[str, int]:
    """Ids of the `Story Points` (float) and `Customer` (string) issue custom fields."""
    try:
        done = subprocess.run(
            ["ruby", "bin/rails", "runner", CUSTOM_FIELDS_RUBY],
            cwd=REDMINE_APP,
            env={**os.environ, "RAILS_ENV": "production"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        ids = json.loads(done.stdout.strip().splitlines()[-1])
        return {str(k): int(v) for k, v in ids.items()}
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as exc:
        _unavailable(f"could not create the custom fields with rails runner: {exc}")
        raise


class Redmine:
    """A thin client for seeding through Redmine's own REST API."""

    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"X-Redmine-API-Key": key}, timeout=60)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(method, path, json=body)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:300]}"
        return response.json() if response.content.strip() else None

    def issue(self, native_id: int) -> dict[str, Any]:
        return dict(self.call("GET", f"/issues/{native_id}.json")["issue"])

    def create(self, **fields: Any) -> int:
        return int(self.call("POST", "/issues.json", {"issue": fields})["issue"]["id"])

    def update(self, native_id: int, **fields: Any) -> None:
        self.call("PUT", f"/issues/{native_id}.json", {"issue": fields})


@pytest.fixture
def redmine(redmine_server: tuple[str, str]) -> Iterator[Redmine]:
    client = Redmine(*redmine_server)
    try:
        yield client
    finally:
        client.http.close()


def seed(rm: Redmine, cf: dict[str, int]) -> dict[str, Any]:
    """A fresh project with a member to assign to, and issues covering the mapping's cases."""
    run = uuid.uuid4().hex[:8]
    identifier = f"e2e-{run}"
    project = rm.call(
        "POST",
        "/projects.json",
        {
            "project": {
                "name": f"Straße E2E {run}",
                "identifier": identifier,
                "enabled_module_names": ["issue_tracking"],
                "tracker_ids": [BUG, FEATURE, SUPPORT],
                "issue_custom_field_ids": list(cf.values()),
            }
        },
    )["project"]
    user = rm.call(
        "POST",
        "/users.json",
        {
            "user": {
                "login": f"zoe-{run}",
                "firstname": "Zoë",
                "lastname": "Ødegård",
                "mail": f"zoe-{run}@example.com",
                "password": uuid.uuid4().hex,
            }
        },
    )["user"]
    rm.call(
        "POST", f"/projects/{identifier}/memberships.json", {"membership": {"user_id": user["id"], "role_ids": [4]}}
    )
    pid = project["id"]
    epic = rm.create(
        project_id=pid,
        tracker_id=FEATURE,
        subject="Checkout überarbeiten — 決済",
        description="h2. Ziel\n\nDer *Checkout* soll schneller werden.\n\n* Schritt eins\n* Schritt zwei",
        priority_id=HIGH,
        start_date="2026-01-05",
        due_date="2026-03-31",
        estimated_hours=40.5,
        custom_fields=[{"id": cf["Customer"], "value": "ACME Gëmbh"}],
    )
    child = rm.create(
        project_id=pid,
        tracker_id=BUG,
        subject="Zahlung schlägt fehl",
        description="Steps: _pay_ with @card@.",
        priority_id=URGENT,
        parent_issue_id=epic,
        assigned_to_id=user["id"],
        estimated_hours=3,
        custom_fields=[{"id": cf["Story Points"], "value": "5"}],
    )
    closed = rm.create(project_id=pid, tracker_id=SUPPORT, subject="Old support request", priority_id=LOW)
    rejected = rm.create(project_id=pid, tracker_id=BUG, subject="Not a bug", priority_id=NORMAL)
    # Not the newest issue: Redmine on SQLite hands the highest id out again after it is
    # deleted (no AUTOINCREMENT), so a deleted newest issue can come back as a new one.
    doomed = rm.create(
        project_id=pid, tracker_id=BUG, subject="To be deleted", priority_id=NORMAL, parent_issue_id=epic
    )
    plain = rm.create(project_id=pid, tracker_id=FEATURE, subject="No description at all", priority_id=NORMAL)
    rm.update(closed, status_id=CLOSED)
    rm.update(rejected, status_id=REJECTED)
    return {
        "identifier": identifier,
        "project_id": pid,
        "user": user,
        "ids": {"epic": epic, "child": child, "closed": closed, "rejected": rejected, "plain": plain, "doomed": doomed},
    }


def hub_config(url: str, key: str, identifier: str) -> Any:
    return parse_config(
        {
            "sources": {
                SOURCE: {
                    "tool": "redmine",
                    "base_url": url,
                    "api_key": key,
                    "projects": [identifier],
                    # The sweep only tombstones items older than (listing start - overlap):
                    # a short overlap lets this test delete and sweep within seconds.
                    "overlap": "1s",
                    "page_size": 2,  # several pages even for a handful of issues
                    "mapping": {"custom": {"customer": "Customer"}},
                }
            }
        }
    )


def _utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _hub_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _hub_date(value: Any) -> date | None:
    if value is None:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def assert_matches(item: dict[str, Any], issue: dict[str, Any], cf: dict[str, int]) -> None:
    """The hub's item says what Redmine says, field by field."""
    where = f"issue {issue['id']}"
    assert item["native_id"] == str(issue["id"]), where
    assert item["deleted"] is False, where
    assert item["title"] == issue["subject"], where
    assert item["kind"] == EXPECTED_KIND[issue["tracker"]["name"]], where
    assert item["kind_raw"] == issue["tracker"]["name"], where
    assert item["status"] == {"category": EXPECTED_CATEGORY[issue["status"]["name"]], "name": issue["status"]["name"]}
    assert item["priority"] == {"level": EXPECTED_LEVEL[issue["priority"]["name"]], "name": issue["priority"]["name"]}
    assert item["container"]["id"] == str(issue["project"]["id"]), where
    assert item["container"]["name"] == issue["project"]["name"], where
    parent = issue.get("parent", {}).get("id")
    assert item.get("parent_id") == (f"{SOURCE}:{parent}" if parent else None), where
    assignee = issue.get("assigned_to")
    names = [p.get("name") or p.get("display_name") for p in item.get("assignees") or []]
    assert names == ([assignee["name"]] if assignee else []), where
    assert _hub_time(item["created_at"]) == _utc(issue["created_on"]), where
    assert _hub_time(item["updated_at"]) == _utc(issue["updated_on"]), where
    assert _hub_time(item.get("completed_at")) == _utc(issue.get("closed_on")), where
    assert _hub_date(item.get("start_on")) == _hub_date(issue.get("start_date")), where
    assert _hub_date(item.get("due_on")) == _hub_date(issue.get("due_date")), where
    points = next((f.get("value") for f in issue.get("custom_fields", []) if f["id"] == cf["Story Points"]), None)
    if points not in (None, ""):
        assert item["estimate"] == {"value": float(points), "unit": "points"}, where
    elif issue.get("estimated_hours") is not None:
        assert item["estimate"] == {"value": float(issue["estimated_hours"]), "unit": "hours"}, where
    else:
        assert item.get("estimate") is None, where
    customer = next((f.get("value") for f in issue.get("custom_fields", []) if f["id"] == cf["Customer"]), None)
    if customer:
        assert (item.get("custom") or {}).get("customer") == customer, where


async def test_sync_edit_delete_sync_matches_redmine_field_by_field(
    redmine: Redmine, redmine_server: tuple[str, str], custom_fields: dict[str, int], tmp_path: Path
) -> None:
    url, key = redmine_server
    world = seed(redmine, custom_fields)
    ids = world["ids"]
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    engine = SyncEngine(store, hub_config(url, key, world["identifier"]))

    first = await engine.run(SOURCE)
    assert first.status == "succeeded", first.error
    assert first.mode == "full"
    assert first.fetched == len(ids)
    assert first.failed_records == 0, first.record_errors
    assert first.pages >= 3  # page_size 2: the keyset paging really paged
    for native_id in ids.values():
        item = store.items.get(f"{SOURCE}:{native_id}")
        assert item is not None, native_id
        assert_matches(item, redmine.issue(native_id), custom_fields)

    epic = store.items.get(f"{SOURCE}:{ids['epic']}")
    assert epic is not None
    assert "**Checkout**" in epic["description"]  # Textile *strong* became Markdown
    assert "Schritt eins" in epic["description"]
    assert epic["url"].startswith(url)
    child = store.items.get(f"{SOURCE}:{ids['child']}")
    assert child is not None
    assert child["assignees"][0].get("email") in (None, world["user"]["mail"])  # Redmine hides mail from lists

    # Edits in Redmine: new title, status, priority, a new parent, an estimate, closing the
    # parent epic's child; one deletion. Redmine's times have whole seconds: wait one.
    await asyncio.sleep(1.1)
    redmine.update(ids["plain"], subject="Jetzt mit Beschreibung ✓", description="h3. Neu", status_id=IN_PROGRESS)
    redmine.update(ids["closed"], status_id=NEW, priority_id=URGENT)  # reopened
    redmine.update(ids["rejected"], parent_issue_id=ids["epic"], estimated_hours=2.25)
    redmine.update(
        ids["child"], status_id=RESOLVED, custom_fields=[{"id": custom_fields["Story Points"], "value": "8"}]
    )
    redmine.call("DELETE", f"/issues/{ids['doomed']}.json")
    added = redmine.create(project_id=world["project_id"], tracker_id=SUPPORT, subject="Nachzügler", priority_id=LOW)
    await asyncio.sleep(2.1)  # past the 1 s overlap, so the sweep may judge every stored item

    second = await engine.run(SOURCE, sweep=True)
    assert second.status == "succeeded", second.error
    assert second.mode == "incremental"
    assert second.failed_records == 0, second.record_errors
    assert second.deleted == 1

    live = {**ids, "added": added}
    del live["doomed"]
    for native_id in live.values():
        item = store.items.get(f"{SOURCE}:{native_id}")
        assert item is not None, native_id
        assert_matches(item, redmine.issue(native_id), custom_fields)
    tombstone = store.items.get(f"{SOURCE}:{ids['doomed']}")
    assert tombstone is not None
    assert tombstone["deleted"] is True
    assert tombstone["title"] == "To be deleted"  # a tombstone keeps the last known state

    # A third run with nothing changed writes nothing (upsert-if-newer on re-read overlap).
    third = await engine.run(SOURCE, sweep=True)
    assert third.status == "succeeded", third.error
    assert third.changed == 0
    assert third.deleted == 0


async def test_connector_against_the_real_server(
    redmine: Redmine, redmine_server: tuple[str, str], custom_fields: dict[str, int]
) -> None:
    """list_ids, fetch_one (404 -> None) and a wrong key (-> AuthFailed, not an empty listing)."""
    url, key = redmine_server
    world = seed(redmine, custom_fields)
    ids = world["ids"]
    redmine.call("DELETE", f"/issues/{ids['doomed']}.json")
    config = RedmineConnector.config_model.model_validate(
        {"tool": "redmine", "base_url": url, "api_key": key, "projects": [world["identifier"]], "page_size": 2}
    )
    async with RedmineConnector("e2e", config) as connector:
        listed = [native_id async for native_id in connector.list_ids()]
        assert listed == sorted((str(i) for k, i in ids.items() if k != "doomed"), key=int)
        one = await connector.fetch_one(str(ids["child"]))
        assert one is not None
        assert one["subject"] == "Zahlung schlägt fehl"
        assert await connector.fetch_one(str(ids["doomed"])) is None
        pages = [page async for page in connector.fetch(None)]
        times = [r["updated_on"] for page in pages for r in page.records]
        assert times == sorted(times)
        assert sorted(r["id"] for page in pages for r in page.records) == sorted(int(i) for i in listed)
    bad = config.model_copy(update={"api_key": config.api_key.__class__("not-a-key")})
    async with RedmineConnector("e2e", bad) as connector:
        with pytest.raises(AuthFailed, match="api_key"):
            [page async for page in connector.fetch(None)]
