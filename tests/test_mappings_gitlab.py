"""GitLab mapping: every real payload in ../shared/fixtures/gitlab that carries an issue.

Read in place, never copied. The REST list maps item by item; an `Issue Hook` delivery maps
whole (the spec reads `object_attributes` and the `project`/`labels`/`assignees` beside it).
Not mapped, on purpose: the two `Note Hook` deliveries (a comment; their `issue` is a thin
copy without labels or assignees: the connector refetches the issue instead).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappings.engine import Mapper, load_spec
from tests.conftest import shared_fixtures

NOTE_HOOKS = ("webhook-note-hook-comment-on-issue.docs-example.json", "webhook-note-hook-issue.go-gitlab-testdata.json")


@pytest.fixture(scope="module")
def gitlab_dir() -> Path:
    return shared_fixtures("gitlab")


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    return Mapper(load_spec("gitlab"), {"source": "real-gitlab", "tool": "gitlab"})


def test_rest_list_items_map(gitlab_dir: Path, mapper: Mapper) -> None:
    items = json.loads((gitlab_dir / "rest-GET-issues.docs-example.json").read_text())
    assert items
    for issue in items:
        item = mapper.map(issue)
        assert item.id == f"real-gitlab:{issue['id']}"
        assert item.key == issue["references"]["full"]
        assert item.url == issue["web_url"]
        assert item.title == issue["title"]
        assert item.description == issue["description"]
        assert item.status.category.value == ("todo" if issue["state"] == "opened" else "done")
        assert item.kind.value == "task"  # no type label, no issue_type in this old doc shape
        assert item.priority.level.value == "none"
        assert item.labels == issue["labels"]
        assert [p.native_id for p in item.assignees] == [str(a["id"]) for a in issue["assignees"]]
        assert [p.name for p in item.assignees] == [a["name"] for a in issue["assignees"]]
        assert item.reporter is not None
        assert item.reporter.native_id == str(issue["author"]["id"])
        assert item.container is not None
        assert item.container.id == str(issue["project_id"])
        assert item.container.key == "my-group/my-project"
        assert item.iteration is not None
        assert item.iteration.name == issue["milestone"]["title"]
        assert str(item.due_on) == issue["due_date"]
        assert item.parent_id is None
        assert item.estimate is None  # time_estimate 0 is "not set"


@pytest.mark.parametrize("name", ["webhook-issue-hook.docs-example.json", "webhook-issue-hook.go-gitlab-testdata.json"])
def test_issue_hook_deliveries_map(gitlab_dir: Path, mapper: Mapper, name: str) -> None:
    delivery = json.loads((gitlab_dir / name).read_text())
    attrs = delivery["object_attributes"]
    item = mapper.map(delivery)
    assert item.id == f"real-gitlab:{attrs['id']}"
    assert item.key == f"{delivery['project']['path_with_namespace']}#{attrs['iid']}"
    assert item.url == attrs["url"]
    assert item.title == attrs["title"]
    assert item.description == attrs["description"]
    assert item.status.category.value == "todo"
    assert item.status.name == attrs["state"]
    assert item.kind.value == "task"
    assert item.priority.level.value == "none"
    assert item.labels == [label["title"] for label in delivery["labels"]]
    # Assignees in these examples have no id: paired with object_attributes.assignee_ids.
    assert [p.native_id for p in item.assignees] == [str(i) for i in attrs["assignee_ids"]]
    assert [p.name for p in item.assignees] == [a["name"] for a in delivery["assignees"]]
    assert item.reporter is not None
    assert item.reporter.native_id == str(attrs["author_id"])
    assert item.container is not None
    assert item.container.id == str(delivery["project"]["id"])
    assert item.parent_id is None
    weight = attrs.get("weight")
    assert (item.estimate.value if item.estimate else None) == weight
    assert item.updated_at.isoformat().startswith(attrs["updated_at"].rstrip("Z"))


def test_note_hooks_are_not_issue_hooks(gitlab_dir: Path) -> None:
    for name in NOTE_HOOKS:
        delivery = json.loads((gitlab_dir / name).read_text())
        assert delivery["object_kind"] == "note"
        assert "labels" not in delivery
    listed = {p.name for p in gitlab_dir.glob("*.json")}
    assert listed == {
        *NOTE_HOOKS,
        "rest-GET-issues.docs-example.json",
        "webhook-issue-hook.docs-example.json",
        "webhook-issue-hook.go-gitlab-testdata.json",
    }


@pytest.mark.parametrize(
    ("labels", "state", "category"),
    [
        (["workflow::in progress"], "opened", "in_progress"),
        (["workflow::backlog"], "opened", "backlog"),
        (["workflow::in progress"], "closed", "done"),
        (["workflow::won't do"], "closed", "cancelled"),
        ([], "opened", "todo"),
    ],
)
def test_scoped_workflow_labels(mapper: Mapper, labels: list[str], state: str, category: str) -> None:
    raw = {"id": 1, "iid": 1, "state": state, "labels": labels, "updated_at": "2024-01-01T00:00:00Z"}
    assert mapper.map(raw).status.category.value == category


def test_hook_time_format(mapper: Mapper) -> None:
    delivery = {
        "object_kind": "issue",
        "object_attributes": {"id": 3, "iid": 1, "state": "opened", "updated_at": "2017-09-15 16:52:00 UTC"},
    }
    assert mapper.map(delivery).updated_at.isoformat() == "2017-09-15T16:52:00+00:00"
