"""Each tool's documented default vocabularies map as mappings/README.md says.

`DEFAULTS` holds, per tool, the values the tool's own documentation lists as defaults (issue
types, work item types, record types, state types, default workflow states, priorities),
each with the kind or category it must become. Every row is mapped through the shipped spec
(mappings/<tool>.yaml) on a minimal record of the documented shape, so a YAML edit that
changes one fails here. The README's "Vocabularies" table must list the same rows with the
same result, and every value left as `other` must say why there.

Sources (the documented defaults):
- Jira issue types (Software, Work Management, Service Management, Product Discovery):
  https://support.atlassian.com/jira-cloud-administration/docs/what-are-issue-types/
- Jira Server/Data Center default issue types and priorities:
  https://confluence.atlassian.com/adminjiraserver/defining-issue-type-field-values-938847087.html
  https://confluence.atlassian.com/adminjiraserver/defining-priority-field-values-938847101.html
- Jira status categories: https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-workflow-status-categories/
- GitHub issue types (organisation defaults Task, Bug, Feature):
  https://docs.github.com/en/issues/tracking-your-work-with-issues/configuring-issues/managing-issue-types-in-an-organization
  and `state_reason`: https://docs.github.com/en/rest/issues/issues#update-an-issue
- GitLab work item types: https://docs.gitlab.com/user/work_items/ and `issue_type`:
  https://docs.gitlab.com/api/issues/
- Linear workflow state types and a new team's states: https://linear.app/docs/configuring-workflows
- Productboard feature types: https://developer.productboard.com/reference/getfeature
- Aha! record types: https://www.aha.io/api (initiatives, epics (formerly master features),
  features, requirements, ideas)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.schema import WorkItem
from mappings import Mapper, load_spec

README = Path(__file__).resolve().parents[1] / "mappings" / "README.md"
UPDATED = "2025-01-02T03:04:05.000+0000"

# (tool, vocabulary, documented value, expected kind / status category / priority level)
Row = tuple[str, str, str, str]
DEFAULTS: list[Row] = [
    # Jira issue types: Software (company- and team-managed), Server/DC, Work Management,
    # Product Discovery, Advanced Roadmaps, Service Management.
    *[
        ("jira", "issue type", name, kind)
        for name, kind in [
            ("Epic", "epic"),
            ("Story", "story"),
            ("Task", "task"),
            ("Bug", "bug"),
            ("Sub-task", "subtask"),
            ("Subtask", "subtask"),
            ("Improvement", "feature"),
            ("New Feature", "feature"),
            ("Technical task", "subtask"),
            ("Initiative", "initiative"),
            ("Idea", "idea"),
            ("Incident", "bug"),
            ("Service request", "other"),
            ("Service request with approval", "other"),
            ("Change", "other"),
            ("Problem", "other"),
            ("IT help", "other"),
            ("Support", "other"),
        ]
    ],
    *[
        ("jira", "status category", key, category)
        for key, category in [
            ("new", "todo"),
            ("indeterminate", "in_progress"),
            ("done", "done"),
            ("undefined", "todo"),
        ]
    ],
    *[
        ("jira", "priority", name, level)
        for name, level in [
            ("Highest", "urgent"),
            ("High", "high"),
            ("Medium", "medium"),
            ("Low", "low"),
            ("Lowest", "low"),
            ("Blocker", "urgent"),
            ("Critical", "urgent"),
            ("Major", "high"),
            ("Minor", "low"),
            ("Trivial", "low"),
        ]
    ],
    # GitHub: organisation issue types, and the closing reasons of an issue.
    *[
        ("github", "issue type", name, kind)
        for name, kind in [("Task", "task"), ("Bug", "bug"), ("Feature", "feature")]
    ],
    *[
        ("github", "state_reason", reason, category)
        for reason, category in [
            ("completed", "done"),
            ("not_planned", "cancelled"),
            ("duplicate", "cancelled"),
            ("reopened", "todo"),
        ]
    ],
    # GitLab work item types, as hooks name them (`type`) and as REST does (`issue_type`).
    *[
        ("gitlab", "work item type", name, kind)
        for name, kind in [
            ("Issue", "task"),
            ("Incident", "bug"),
            ("Test case", "task"),
            ("Requirement", "feature"),
            ("Task", "subtask"),
            ("Objective", "initiative"),
            ("Key Result", "task"),
            ("Epic", "epic"),
            ("Ticket", "other"),
        ]
    ],
    *[
        ("gitlab", "issue_type", name, kind)
        for name, kind in [
            ("issue", "task"),
            ("incident", "bug"),
            ("test_case", "task"),
            ("requirement", "feature"),
            ("task", "subtask"),
            ("objective", "initiative"),
            ("key_result", "task"),
            ("epic", "epic"),
            ("ticket", "other"),
        ]
    ],
    # Linear: the fixed state types, then a new team's default states (name/type).
    *[
        ("linear", "state type", name, category)
        for name, category in [
            ("triage", "backlog"),
            ("backlog", "backlog"),
            ("unstarted", "todo"),
            ("started", "in_progress"),
            ("completed", "done"),
            ("canceled", "cancelled"),
        ]
    ],
    *[
        ("linear", "default state", name, category)
        for name, category in [
            ("Triage/triage", "backlog"),
            ("Backlog/backlog", "backlog"),
            ("Todo/unstarted", "todo"),
            ("In Progress/started", "in_progress"),
            ("In Review/started", "in_progress"),
            ("Done/completed", "done"),
            ("Canceled/canceled", "cancelled"),
            ("Duplicate/canceled", "cancelled"),
        ]
    ],
    # Productboard feature types (components and products are containers, not items).
    *[("productboard", "feature type", name, "feature") for name in ("feature", "subfeature")],
    # Aha! record types.
    *[
        ("aha", "record type", name, kind)
        for name, kind in [
            ("initiative", "initiative"),
            ("epic", "epic"),
            ("master_feature", "epic"),
            ("feature", "feature"),
            ("requirement", "subtask"),
            ("idea", "idea"),
        ]
    ],
]


# ------------------------------------------------------------------ minimal documented records


def _jira(value: str, vocabulary: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "issuetype": {"name": "Task"},
        "status": {"name": "Status", "statusCategory": {"key": "new"}},
        "updated": UPDATED,
    }
    if vocabulary == "issue type":
        fields["issuetype"] = {"name": value}  # by name alone: no subtask flag, no hierarchy level
    elif vocabulary == "status category":
        fields["status"] = {"name": "Status", "statusCategory": {"key": value}}
    else:
        fields["priority"] = {"name": value}
    return {"id": "10001", "key": "PROJ-1", "fields": fields}


def _github(value: str, vocabulary: str) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "id": 1,
        "number": 1,
        "repository_url": "https://api.github.com/repos/octo/api",
        "state": "open",
        "labels": [],
        "updated_at": "2025-01-02T03:04:05Z",
    }
    if vocabulary == "issue type":
        issue["type"] = {"id": 1, "name": value}
    else:
        issue["state"] = "open" if value == "reopened" else "closed"
        issue["state_reason"] = value
    return issue


def _gitlab(value: str, vocabulary: str) -> dict[str, Any]:
    if vocabulary == "issue_type":
        return {"id": 1, "iid": 1, "project_id": 2, "state": "opened", "labels": [], "issue_type": value, "updated_at": "2025-01-02T03:04:05Z"}  # fmt: skip
    attrs = {"id": 1, "iid": 1, "project_id": 2, "state": "opened", "type": value, "updated_at": "2025-01-02 03:04:05 UTC"}  # fmt: skip
    return {"object_kind": "work_item", "object_attributes": attrs, "project": {"id": 2, "path_with_namespace": "g/p"}}


def _linear(value: str, vocabulary: str) -> dict[str, Any]:
    name, _, state_type = value.partition("/") if vocabulary == "default state" else ("State", "", value)
    return {
        "id": "0b0c",
        "number": 1,
        "team": {"id": "t", "key": "ENG"},
        "state": {"id": "s", "name": name, "type": state_type},
        "updatedAt": "2025-01-02T03:04:05.000Z",
    }


def _productboard(value: str, vocabulary: str) -> dict[str, Any]:
    return {"id": "f1", "type": value, "status": {"id": "s", "name": "Planned"}, "updatedAt": "2025-01-02T03:04:05Z"}


def _aha(value: str, vocabulary: str) -> dict[str, Any]:
    return {
        "id": "1",
        "reference_num": "PRJ1-1",
        "_opshub": {"type": value},
        "workflow_status": {"name": "Under consideration", "complete": False},
        "updated_at": "2025-01-02T03:04:05Z",
    }


RECORDS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "jira": _jira,
    "github": _github,
    "gitlab": _gitlab,
    "linear": _linear,
    "productboard": _productboard,
    "aha": _aha,
}


def _result(item: WorkItem, vocabulary: str) -> str:
    if vocabulary == "priority":
        assert item.priority is not None
        return item.priority.level.value
    if vocabulary in ("status category", "state_reason", "state type", "default state"):
        return item.status.category.value
    return item.kind.value


@pytest.fixture(scope="module")
def mappers() -> dict[str, Mapper]:
    return {tool: Mapper(load_spec(tool), {"source": "s", "tool": tool}, keep_raw=False) for tool in RECORDS}


@pytest.mark.parametrize(("tool", "vocabulary", "value", "expected"), DEFAULTS, ids=lambda v: str(v))
def test_documented_default_maps_as_documented(
    mappers: dict[str, Mapper], tool: str, vocabulary: str, value: str, expected: str
) -> None:
    item = mappers[tool].map(RECORDS[tool](value, vocabulary))
    assert _result(item, vocabulary) == expected


def _readme_rows() -> dict[tuple[str, str, str], tuple[str, str]]:
    """`| tool | vocabulary | value | maps to | why |` rows of the README's Vocabularies section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Vocabularies", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, str, str], tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) == 5 and cells[0] in RECORDS:
            value = re.sub(r"^`(.*)`$", r"\1", cells[2])
            rows[(cells[0], cells[1], value)] = (re.sub(r"^`(.*)`$", r"\1", cells[3]), cells[4])
    return rows


def test_readme_lists_every_default_with_the_same_result() -> None:
    rows = _readme_rows()
    expected = {(tool, vocab, value): result for tool, vocab, value, result in DEFAULTS}
    assert {key: rows[key][0] for key in rows} == expected


def test_every_deliberate_other_says_why_in_the_readme() -> None:
    rows = _readme_rows()
    unexplained = [key for key, (result, why) in rows.items() if result == "other" and len(why) < 20]
    assert unexplained == []
    assert any(result == "other" for result, _ in rows.values())
