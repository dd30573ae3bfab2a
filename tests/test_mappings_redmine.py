"""Redmine mapping: every real issue in ../shared/fixtures/redmine, Textile, both date styles.

Read in place, never copied. Issues are the items of `GET-issues.json...` and the issues of
`GET-issues-id...` and the two `POST-issues.json` responses. Not mapped, on purpose: the
project lists, the custom field list and the status list (no issue in them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mappings.engine import Mapper, load_spec
from mappings.transforms.redmine import parse_redmine_time
from mappings.transforms.textile import textile_to_markdown
from tests.conftest import shared_fixtures

KINDS = {"Bug": "bug", "Feature": "feature", "Support": "task"}
LEVELS = {"Low": "low", "Normal": "medium", "High": "high", "Urgent": "urgent", "Immediate": "urgent"}
NOT_ISSUES = ("GET-custom_fields", "GET-issue_statuses", "GET-projects")


def _issues(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data.get("issues"), list):
            for n, issue in enumerate(data["issues"]):
                yield f"{path.name}[{n}]", issue
        elif isinstance(data.get("issue"), dict):
            yield path.name, data["issue"]
        elif "subject" in data and "tracker" in data:
            yield path.name, data
        else:
            assert path.name.startswith(NOT_ISSUES), path.name


@pytest.fixture(scope="module")
def redmine_dir() -> Path:
    return shared_fixtures("redmine")


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    return Mapper(
        load_spec("redmine"), {"source": "real-redmine", "tool": "redmine", "base_url": "http://redmine.test"}
    )


def test_every_real_issue_maps(redmine_dir: Path, mapper: Mapper) -> None:
    seen = 0
    for name, issue in _issues(redmine_dir):
        item = mapper.map(issue)
        assert item.id == f"real-redmine:{issue['id']}", name
        assert item.key == f"#{issue['id']}", name
        assert item.url == f"http://redmine.test/issues/{issue['id']}", name
        assert item.title == issue["subject"], name
        assert item.kind.value == KINDS[issue["tracker"]["name"]], name
        assert item.status.name == issue["status"]["name"] == "New", name
        assert item.status.category.value == "todo", name
        assert item.priority.level.value == LEVELS[issue["priority"]["name"]], name
        assigned = issue.get("assigned_to")
        assert [p.native_id for p in item.assignees] == ([str(assigned["id"])] if assigned else []), name
        assert item.parent_id == (f"real-redmine:{issue['parent']['id']}" if issue.get("parent") else None), name
        assert item.container is not None, name
        assert item.container.name == issue["project"]["name"], name
        hours = issue.get("estimated_hours")
        assert (item.estimate.value if item.estimate else None) == hours, name
        version = issue.get("fixed_version")
        assert (item.release.name if item.release else None) == (version["name"] if version else None), name
        text = (issue.get("description") or "").replace("\r\n", "\n").strip()
        assert item.description == (text or None), name  # plain text: Textile leaves it as it is
        assert item.updated_at == parse_redmine_time(issue["updated_on"]), name
        assert item.start_on is not None, name
        assert item.start_on.isoformat() == issue["start_date"].replace("/", "-"), name
        seen += 1
    assert seen == 29  # 26 list items + 1 single issue + 2 create responses


def test_old_time_style() -> None:
    moment = parse_redmine_time("2011/01/12 16:00:31 -0800")
    assert moment is not None
    assert moment.isoformat() == "2011-01-12T16:00:31-08:00"
    iso = parse_redmine_time("2026-11-21T18:00:00Z")
    assert iso is not None
    assert iso.isoformat() == "2026-11-21T18:00:00+00:00"


@pytest.mark.parametrize(
    ("textile", "markdown"),
    [
        ("h1. Title", "# Title"),
        ("h3. *Bold* heading", "### **Bold** heading"),
        ("*bold* and _italic_ and -gone-", "**bold** and *italic* and ~~gone~~"),
        ("run @make test@ now", "run `make test` now"),
        ("@*not bold* in code@", "`*not bold* in code`"),
        ('see "the docs":https://example.org/x.', "see [the docs](https://example.org/x)."),
        ('"titled(hover)":https://example.org', '[titled](https://example.org "hover")'),
        ("!https://example.org/a.png!", "![](https://example.org/a.png)"),
        ("!/attachments/1/a.png(alt)!:https://example.org", "[![alt](/attachments/1/a.png)](https://example.org)"),
        ("* one\n** two\n* three", "- one\n  - two\n- three"),
        ("# one\n## two", "1. one\n   1. two"),
        ("<pre>\nx = *y*\n</pre>", "```\nx = *y*\n```"),
        ('<pre><code class="ruby">\nputs 1\n</code></pre>', "```ruby\nputs 1\n```"),
        ("bc. code line", "```\ncode line\n```"),
        ("bq. wise words", "> wise words"),
        ("p. plain", "plain"),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4"),
        ("|a|b|\n|c|d|", "|a|b|\n|c|d|"),
        ("%{color:red}unknown%", "%{color:red}unknown%"),
        ("Ünïcödé _text_", "Ünïcödé *text*"),
    ],
)
def test_textile_to_markdown(textile: str, markdown: str) -> None:
    assert textile_to_markdown(textile) == markdown


@pytest.mark.parametrize(
    ("status", "category"),
    [
        ({"name": "New", "is_closed": False}, "todo"),
        ({"name": "In Progress", "is_closed": False}, "in_progress"),
        ({"name": "Resolved", "is_closed": False}, "done"),
        ({"name": "Feedback", "is_closed": False}, "in_progress"),
        ({"name": "Closed", "is_closed": True}, "done"),
        ({"name": "Rejected", "is_closed": True}, "cancelled"),
        ({"name": "Shipped", "is_closed": True}, "done"),
        ({"name": "Waiting", "is_closed": False}, "todo"),
    ],
)
def test_status_names_then_is_closed(mapper: Mapper, status: dict[str, Any], category: str) -> None:
    raw = {"id": 1, "status": {"id": 1, **status}, "updated_on": "2026-01-01T00:00:00Z"}
    assert mapper.map(raw).status.category.value == category


def test_custom_fields_by_name(mapper: Mapper) -> None:
    spec = load_spec("redmine")
    from mappings.engine import merge_overrides

    custom_mapper = Mapper(
        merge_overrides(spec, {"custom": {"team": "team", "tags": "Tags"}}), {"source": "r", "tool": "redmine"}
    )
    raw = {
        "id": 2,
        "status": {"id": 1, "name": "New"},
        "updated_on": "2026-01-01T00:00:00Z",
        "estimated_hours": 4,
        "custom_fields": [
            {"id": 7, "name": "Story points", "value": "3"},
            {"id": 8, "name": "Team", "value": "Core"},
            {"id": 9, "name": "Tags", "multiple": True, "value": ["a", "b"]},
        ],
    }
    item = custom_mapper.map(raw)
    assert item.estimate is not None
    assert (item.estimate.value, item.estimate.unit.value) == (3.0, "points")
    assert item.custom == {"team": "Core", "tags": ["a", "b"]}
