"""GitHub Issues mapping: every real payload in ../shared/fixtures/github, plus guard rails.

The payloads are read in place (never copied). Expected values come from each payload.
Not mapped, on purpose:
- `webhook-ping*.json`: a hook's ping carries no issue.
- `webhook-issues-{milestoned,demilestoned}*.json`: their `issue` is a pull request (it has
  `pull_request`), which the mapping refuses (the connector drops pull requests).
- `webhook-issues-{pinned,unpinned}.json`: a thin issue without `state`, `labels` or `user`;
  the mapping refuses it (no status) so the connector refetches instead of wiping labels.
`issue_comment` deliveries carry the full issue and are mapped like `issues` ones.
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

THIN = ("webhook-issues-pinned.json", "webhook-issues-unpinned.json")
CONTEXT = {"source": "real-github", "tool": "github"}


def _issues(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith(".response-meta.json"):
            continue  # headers of a recorded request, no issue
        if path.name.endswith(".recorded-session.json"):
            continue  # a list of HTTP exchanges: its GET pages are read below
        data = json.loads(path.read_text())
        if isinstance(data, list):  # a list response
            for n, item in enumerate(data):
                yield f"{path.name}[{n}]", item
        elif isinstance(data, dict) and isinstance(data.get("issue"), dict):  # a webhook delivery
            yield path.name, data["issue"]
    for path in sorted(directory.glob("*.recorded-session.json")):
        for n, exchange in enumerate(json.loads(path.read_text())):
            if exchange.get("method") == "get" and isinstance(exchange.get("response"), list):
                for m, item in enumerate(exchange["response"]):
                    yield f"{path.name}[{n}][{m}]", item


@pytest.fixture(scope="module")
def github_dir() -> Path:
    return shared_fixtures("github")


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    return Mapper(load_spec("github"), CONTEXT)


def _level(labels: list[str]) -> str:
    return "none"  # none of the real payloads carries a priority label


def test_every_real_issue_maps(github_dir: Path, mapper: Mapper) -> None:
    mapped = refused_prs = 0
    for name, issue in _issues(github_dir):
        if "pull_request" in issue:
            with pytest.raises(MappingError, match="pull request"):
                mapper.map(issue)
            refused_prs += 1
            continue
        if name in THIN:
            continue
        item = mapper.map(issue)
        owner_repo = issue["repository_url"].split("/repos/", 1)[1]
        labels = [label["name"] for label in issue["labels"]]
        assert item.id == f"real-github:{issue['id']}", name
        assert item.key == f"{owner_repo}#{issue['number']}", name
        assert item.url == issue["html_url"], name
        assert item.title == issue["title"], name
        assert item.description == issue["body"], name
        assert item.labels == labels, name
        expected_kind = "bug" if "bug" in labels else "feature" if "enhancement" in labels else "task"
        assert item.kind.value == expected_kind, name
        reason = issue.get("state_reason")
        if issue["state"] == "open":
            expected = "todo"
        else:
            expected = "cancelled" if reason in ("not_planned", "duplicate") else "done"
        assert item.status.category.value == expected, name
        assert item.priority.level.value == _level(labels), name
        assert [p.native_id for p in item.assignees] == [str(a["id"]) for a in issue["assignees"]], name
        assert [p.name for p in item.assignees] == [a["login"] for a in issue["assignees"]], name
        assert item.reporter is not None, name
        assert item.reporter.native_id == str(issue["user"]["id"]), name
        assert item.container is not None, name
        assert item.container.id == owner_repo, name
        assert item.parent_id is None, name  # no real payload is a sub-issue
        milestone = issue.get("milestone")
        assert (item.iteration.name if item.iteration else None) == (milestone["title"] if milestone else None), name
        assert item.updated_at.isoformat().replace("+00:00", "Z") == issue["updated_at"], name
        assert (item.completed_at is not None) == bool(issue.get("closed_at")), name
        mapped += 1
    assert mapped >= 60, mapped  # 21 issues of the 2024 list, 13 of the paged session, 30+ webhooks
    assert refused_prs >= 13, refused_prs  # 9 PRs in the 2024 list + 4 milestone deliveries


def test_deliveries_without_an_issue_are_listed(github_dir: Path) -> None:
    """Every delivery either carries an issue or is a ping (nothing else is silently skipped)."""
    for path in sorted(github_dir.glob("webhook-*.json")):
        data = json.loads(path.read_text())
        assert isinstance(data.get("issue"), dict) or path.name.startswith("webhook-ping"), path.name


def test_thin_pinned_issue_is_refused(github_dir: Path, mapper: Mapper) -> None:
    for name in THIN:
        issue = json.loads((github_dir / name).read_text())["issue"]
        with pytest.raises(MappingError) as caught:
            mapper.map(issue)
        assert caught.value.native_id == str(issue["id"])
        assert "status" in caught.value.message


def test_closed_webhook_from_2017(github_dir: Path, mapper: Mapper) -> None:
    issue = json.loads((github_dir / "webhook-issues-closed.json").read_text())["issue"]
    item = mapper.map(issue)
    assert (item.status.category.value, item.status.name) == ("done", "closed")
    assert item.kind.value == "feature"  # `enhancement` label
    assert item.description == "This repo needs some content, as currently, it does not have **any**."


def _issue(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 1,
        "number": 1,
        "repository_url": "https://api.github.com/repos/o/r",
        "title": "t",
        "state": "open",
        "labels": [],
        "updated_at": "2024-01-01T00:00:00Z",
    }
    return {**base, **fields}


def test_pull_request_is_refused_with_its_id(mapper: Mapper) -> None:
    with pytest.raises(MappingError) as caught:
        mapper.map(_issue(id=77, pull_request={"url": "https://api.github.com/repos/o/r/pulls/1"}))
    assert caught.value.native_id == "77"


@pytest.mark.parametrize(
    ("state", "reason", "category"),
    [
        ("open", None, "todo"),
        ("open", "reopened", "todo"),
        ("closed", None, "done"),
        ("closed", "completed", "done"),
        ("closed", "not_planned", "cancelled"),
        ("closed", "duplicate", "cancelled"),
    ],
)
def test_state_reason(mapper: Mapper, state: str, reason: str | None, category: str) -> None:
    assert mapper.map(_issue(state=state, state_reason=reason)).status.category.value == category


@pytest.mark.parametrize(
    ("labels", "level", "name"),
    [
        (["priority: high"], "high", "priority: high"),
        (["P0"], "urgent", "P0"),
        (["p3"], "low", "p3"),
        (["priority/critical"], "urgent", "priority/critical"),
        (["docs"], "none", None),
    ],
)
def test_priority_labels(mapper: Mapper, labels: list[str], level: str, name: str | None) -> None:
    priority = mapper.map(_issue(labels=labels)).priority
    assert (priority.level.value, priority.name) == (level, name)


def test_issue_type_wins_over_labels(mapper: Mapper) -> None:
    item = mapper.map(_issue(type={"id": 1, "name": "Feature"}, labels=["bug"]))
    assert (item.kind.value, item.kind_raw) == ("feature", "Feature")
