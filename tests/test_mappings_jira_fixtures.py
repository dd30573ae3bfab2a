"""Every real Jira payload in ../shared/fixtures/jira maps without error to sensible values.

The payloads (Atlassian's OpenAPI examples, captured webhook deliveries, a captured search
result) are read in place, never copied. Expected values are taken from each payload itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mappings.engine import Mapper, load_spec
from mappings.errors import MappingError
from tests.conftest import shared_fixtures

pytestmark = pytest.mark.fixtures

KINDS = {"story": "story", "task": "task", "bug": "bug", "epic": "epic", "sub-task": "subtask", "subtask": "subtask"}
CATEGORIES = {"new": "todo", "indeterminate": "in_progress", "done": "done"}
LEVELS = {"highest": "urgent", "high": "high", "medium": "medium", "low": "low", "lowest": "low"}


def _issues(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("issue"), dict):  # webhook delivery
            yield path.name, data["issue"]
        elif isinstance(data, dict) and isinstance(data.get("issues"), list):  # search result
            for n, issue in enumerate(data["issues"]):
                yield f"{path.name}[{n}]", issue
        elif isinstance(data, dict) and "fields" in data and "key" in data:  # GET /issue/{key}
            yield path.name, data


def _catalog(directory: Path) -> list[dict[str, Any]]:
    catalog: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*field*.json")):
        data = json.loads(path.read_text())
        entries = data.get("values", []) if isinstance(data, dict) else data
        catalog += [e for e in entries if isinstance(e, dict) and "id" in e and "name" in e]
    return catalog


@pytest.fixture(scope="module")
def jira_dir() -> Path:
    return shared_fixtures("jira")


def test_fixture_set_is_present(jira_dir: Path) -> None:
    names = [name for name, _ in _issues(jira_dir)]
    assert any(n.startswith("openapi-example-GET-rest-api-3-search-jql") for n in names)
    assert any(n.startswith("openapi-example-GET-rest-api-3-issue-200") for n in names)
    assert sum(n.startswith("webhook-") for n in names) >= 10


def test_every_real_issue_maps(jira_dir: Path) -> None:
    mapper = Mapper(
        load_spec("jira"), {"source": "real-jira", "tool": "jira", "base_url": "https://example.atlassian.net"}
    )
    seen = 0
    for name, issue in _issues(jira_dir):
        fields = issue.get("fields") or {}
        if name.startswith("webhook-comment_"):
            continue  # a thin issue (no `updated`): see test_comment_event_issue_is_refused_clearly
        item = mapper.map(issue)  # MappingError fails the test with the record's id
        assert item.id == f"real-jira:{issue['id']}", name
        assert item.key == issue["key"], name
        assert item.url == f"https://example.atlassian.net/browse/{issue['key']}", name
        assert item.title == (fields.get("summary") or ""), name
        issuetype = (fields.get("issuetype") or {}).get("name")
        assert item.kind_raw == issuetype, name
        assert item.kind.value == KINDS.get(str(issuetype).lower(), "other"), name
        status = fields.get("status") or {}
        category_key = (status.get("statusCategory") or {}).get("key")
        assert item.status.name == status.get("name"), name
        assert item.status.category.value == CATEGORIES.get(category_key, "todo"), name
        priority = (fields.get("priority") or {}).get("name")
        assert item.priority.name == priority, name
        assert item.priority.level.value == LEVELS.get(str(priority).lower(), "none"), name
        assert item.labels == (fields.get("labels") or []), name
        assignee = fields.get("assignee")
        assert [p.native_id for p in item.assignees] == ([assignee["accountId"]] if assignee else []), name
        if isinstance(fields.get("project"), dict):
            assert item.container is not None, name
            assert item.container.key == fields["project"]["key"], name
        if isinstance(fields.get("description"), str):
            assert item.description == fields["description"], name  # v2 text passes through
        assert item.raw is issue
        seen += 1
    assert seen >= 20


def test_comment_event_issue_is_refused_clearly(jira_dir: Path) -> None:
    """Comment deliveries carry a thin issue (summary, status, type, no times): the connector
    refetches the issue; mapping the stub itself is refused with a clear error, not guessed."""
    mapper = Mapper(load_spec("jira"), {"source": "real-jira", "tool": "jira"})
    for path in sorted(jira_dir.glob("webhook-comment_*.json")):
        issue = json.loads(path.read_text())["issue"]
        with pytest.raises(MappingError) as caught:
            mapper.map(issue)
        assert caught.value.native_id == issue["id"]
        assert "updated_at" in caught.value.message


def test_adf_descriptions_become_markdown(jira_dir: Path) -> None:
    mapper = Mapper(load_spec("jira"), {"source": "real-jira", "tool": "jira"})
    issue = json.loads((jira_dir / "openapi-example-GET-rest-api-3-issue-200.json").read_text())
    item = mapper.map(issue)
    assert item.description == "Main order flow broken"
    # The example's issue links use the "Dependent" type (not in the table): kept as relates.
    assert {(link.type.value, link.target_id) for link in item.links} == {
        ("relates", "real-jira:10004L"),
        ("relates", "real-jira:10004"),
    }


def test_webhook_many_custom_fields_with_site_catalog(jira_dir: Path) -> None:
    delivery = json.loads((jira_dir / "webhook-jira_issue_created-many-custom-fields.json").read_text())
    catalog = [
        {"id": "customfield_10021", "name": "Sprint", "custom": True},
        {"id": "customfield_10014", "name": "Epic Link", "custom": True},
    ]
    item = Mapper(load_spec("jira"), {"source": "mm", "tool": "jira", "fields": catalog}).map(delivery["issue"])
    # Sprint in the pre-2020 text form, active sprint picked.
    assert item.iteration is not None
    assert (item.iteration.id, item.iteration.name) == ("1", "SCRUM1 Sprint 1")
    assert str(item.iteration.starts_on) == "2019-05-23"
    # Classic Epic Link holds a key: kept as custom.parent_key (no key index given).
    assert item.custom["parent_key"] == "KT-17"
    assert item.parent_id is None
    assert item.release is not None
    assert item.release.name == "version1"


def test_resolved_webhook_is_done_with_completion_time(jira_dir: Path) -> None:
    delivery = json.loads((jira_dir / "webhook-jira_issue_updated-resolved-status-and-resolution.json").read_text())
    item = Mapper(load_spec("jira"), {"source": "mm", "tool": "jira"}).map(delivery["issue"])
    assert item.status.category.value == "done"
    assert (item.completed_at is not None) == bool(delivery["issue"]["fields"].get("resolutiondate"))


def test_real_field_catalogs_resolve_custom_fields(jira_dir: Path) -> None:
    catalog = _catalog(jira_dir)
    assert catalog, "no field catalog fixture"
    mapper = Mapper(load_spec("jira"), {"source": "s", "tool": "jira", "fields": catalog})
    # The captured 2013 catalog has Story Points, Sprint and Epic Link (no RICE, no Start date).
    for role in ("field:estimate", "field:sprint", "field:epic_link"):
        assert role not in mapper.unresolved
    assert "field:reach" in mapper.unresolved
