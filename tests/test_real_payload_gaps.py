"""Mapping gaps seen on real payloads (issue 8, item 6), each on a shape the tool documents.

The payloads are the real ones in ../shared/fixtures, read in place and changed only to the
documented older or thinner shape under test (a key removed), so each test shows what the
hub did with such a delivery and what it must do.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.base import IgnoreEvent, RefetchRecord, UpsertRecord
from connectors.github import GitHubConfig, GitHubConnector
from connectors.jira import JiraConfig, JiraConnector
from mappings import Mapper, load_spec
from tests.conftest import SHARED_FIXTURES, shared_fixtures

pytestmark = pytest.mark.fixtures


def _load(tool: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_fixtures(tool) / name).read_text())
    return data


# ------------------------------------------------------------------ GitLab: singular assignee

GITLAB_HOOKS = ["webhook-issue-hook.docs-example.json", "webhook-issue-hook.go-gitlab-testdata.json"]


def _gitlab_mapper() -> Mapper:
    return Mapper(load_spec("gitlab"), {"source": "gl", "tool": "gitlab"}, keep_raw=False)


@pytest.mark.parametrize("name", GITLAB_HOOKS)
def test_gitlab_hook_with_only_the_singular_assignee_keeps_it(name: str) -> None:
    """Before multiple assignees (GitLab < 10), and in some hook kinds, a hook names its one
    assignee as `assignee` beside the issue and `object_attributes.assignee_id`, with no
    `assignees` list and no `assignee_ids`. That user is the item's assignee."""
    delivery = _load("gitlab", name)
    attrs = delivery["object_attributes"]
    expected_id, expected_name = str(attrs["assignee_id"]), delivery["assignee"]["name"]
    older = copy.deepcopy(delivery)
    del older["assignees"]
    del older["object_attributes"]["assignee_ids"]
    item = _gitlab_mapper().map(older)
    assert [(p.native_id, p.name) for p in item.assignees] == [(expected_id, expected_name)]
    # The same person as the current shape gives.
    current = _gitlab_mapper().map(delivery)
    assert [(p.native_id, p.name) for p in current.assignees] == [(expected_id, expected_name)]


@pytest.mark.parametrize("name", GITLAB_HOOKS)
def test_gitlab_hook_with_only_an_assignee_id_keeps_it(name: str) -> None:
    delivery = copy.deepcopy(_load("gitlab", name))
    for key in ("assignees", "assignee"):
        delivery.pop(key)
    del delivery["object_attributes"]["assignee_ids"]
    item = _gitlab_mapper().map(delivery)
    assert [p.native_id for p in item.assignees] == [str(delivery["object_attributes"]["assignee_id"])]


# ------------------------------------------------------------------ GitHub: no repository_url


def _github_deliveries() -> list[str]:
    """Real deliveries the connector upserts as delivered (issues.* and issue_comment.*)."""
    directory = SHARED_FIXTURES / "github"
    if not directory.exists():
        return []
    names = []
    for path in sorted(directory.glob("webhook-issue*.json")):
        data = json.loads(path.read_text())
        action = data.get("action")
        issue = data.get("issue")
        if not isinstance(issue, dict) or "pull_request" in issue:
            continue  # pull requests are not synced
        if action not in ("deleted", "transferred", "pinned", "unpinned"):
            names.append(path.name)
    return names


GITHUB_DELIVERIES = _github_deliveries()


def _github_item(connector: GitHubConnector, name: str, delivery: dict[str, Any]) -> Any:
    event_name = "issue_comment" if name.startswith("webhook-issue_comment") else "issues"
    headers = {"X-GitHub-Event": event_name, "X-GitHub-Delivery": f"d-{name}"}
    events = connector.parse(headers, orjson.dumps(delivery)).events
    upserts = [e for e in events if isinstance(e, UpsertRecord)]
    assert len(upserts) == 1, events
    mapper = Mapper(load_spec("github"), {"source": "gh", "tool": "github"}, keep_raw=False)
    return mapper.map(upserts[0].record)


@pytest.mark.skipif(not GITHUB_DELIVERIES, reason="real payloads not found in ../shared/fixtures/github")
@pytest.mark.parametrize("name", GITHUB_DELIVERIES)
def test_github_delivery_without_repository_url_takes_the_deliverys_repository(name: str) -> None:
    """Older deliveries' issues have no `repository_url`; every delivery names its repository
    at the top level. The item gets the same key and container as a current delivery."""
    delivery = _load("github", name)
    repository = delivery["repository"]["full_name"]
    connector = GitHubConnector("gh", GitHubConfig(token="t", repositories=[repository], webhook_secret="s"))
    current = _github_item(connector, name, delivery)
    older = copy.deepcopy(delivery)
    del older["issue"]["repository_url"]
    item = _github_item(connector, name, older)
    assert item.key == f"{repository}#{delivery['issue']['number']}"
    assert item.container is not None and item.container.key == repository
    assert item.model_dump(exclude={"raw"}) == current.model_dump(exclude={"raw"})


# ------------------------------------------------------------------ Jira


def _jira() -> JiraConnector:
    return JiraConnector(
        "acme-jira",
        JiraConfig(
            base_url="https://acme.atlassian.net",
            email="bot@acme.test",
            api_token="tok",
            projects=["TES", "KT"],
            webhook_secret="s",
        ),
    )


@pytest.mark.parametrize(("issue_type", "kind"), [("Improvement", "feature"), ("New Feature", "feature")])
def test_jira_server_default_issue_types_are_features(issue_type: str, kind: str) -> None:
    """Jira Server/Data Center's default scheme has Improvement and New Feature beside Bug and Task."""
    issue = copy.deepcopy(_load("jira", "webhook-jira_issue_created.json")["issue"])
    issue["fields"]["issuetype"] = {"id": "4", "name": issue_type, "subtask": False}
    item = Mapper(load_spec("jira"), {"source": "j", "tool": "jira"}).map(issue)
    assert (item.kind.value, item.kind_raw) == (kind, issue_type)


@pytest.mark.parametrize(
    "name", ["webhook-comment_created.json", "webhook-comment_updated.json", "webhook-comment_deleted.json"]
)
def test_jira_server_comment_delivery_without_issue_refetches_the_commented_issue(name: str) -> None:
    """Jira Server sends comment events with the comment only; its `self` names the issue."""
    delivery = _load("jira", name)
    issue_id = str(delivery["issue"]["id"])
    assert f"/issue/{issue_id}/comment/" in delivery["comment"]["self"]
    server = {k: v for k, v in delivery.items() if k != "issue"}
    events = _jira().parse({}, orjson.dumps(server)).events
    assert events == [RefetchRecord(issue_id)]


def test_jira_comment_delivery_naming_no_issue_is_still_ignored() -> None:
    delivery = _load("jira", "webhook-comment_created.json")
    server = {k: v for k, v in delivery.items() if k != "issue"}
    server["comment"] = {**server["comment"], "self": "https://acme.atlassian.net/rest/api/2/comment/10019"}
    events = _jira().parse({}, orjson.dumps(server)).events
    assert len(events) == 1 and isinstance(events[0], IgnoreEvent)


def test_fixture_directories_exist() -> None:
    for tool in ("gitlab", "github", "jira"):
        assert isinstance(shared_fixtures(tool), Path)
