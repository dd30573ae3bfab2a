"""Linear mapping: every real `Issue` webhook in ../shared/fixtures/linear, plus the quirks.

The payloads (2021 deliveries) are read in place, never copied. The connector passes a
delivery's `data` to the mapping. Not mapped, on purpose:
- `Comment`, `IssueLabel` and `Reaction` deliveries: their `data` is a comment, a label or a
  reaction, not an issue (the connector refetches the issue or ignores them).
- `schema.graphql`: the GraphQL schema, used to check the fields the spec documents.
`Issue` `remove` deliveries map like the others (the connector turns them into tombstones).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mappings.engine import Mapper, load_spec
from tests.conftest import shared_fixtures

LEVELS = {0: "none", 1: "urgent", 2: "high", 3: "medium", 4: "low"}
CATEGORIES = {
    "triage": "backlog",
    "backlog": "backlog",
    "unstarted": "todo",
    "started": "in_progress",
    "completed": "done",
    "canceled": "cancelled",
}


@pytest.fixture(scope="module")
def linear_dir() -> Path:
    return shared_fixtures("linear")


@pytest.fixture(scope="module")
def mapper() -> Mapper:
    return Mapper(load_spec("linear"), {"source": "real-linear", "tool": "linear"})


def test_every_real_issue_webhook_maps(linear_dir: Path, mapper: Mapper) -> None:
    mapped = 0
    for path in sorted(linear_dir.glob("webhook-*.json")):
        delivery = json.loads(path.read_text())
        if delivery["type"] != "Issue":
            assert delivery["type"] in ("Comment", "IssueLabel", "Reaction"), path.name
            continue
        data = delivery["data"]
        item = mapper.map(data)
        name = path.name
        assert item.id == f"real-linear:{data['id']}", name
        assert item.key == f"{data['team']['key']}-{data['number']}", name
        if "url" in delivery:
            assert delivery["url"].split("/issue/")[1].startswith(f"{item.key}/"), name
        assert item.title == data["title"], name
        assert item.status.name == data["state"]["name"], name
        assert item.status.category.value == CATEGORIES[data["state"]["type"]], name
        assert item.priority.level.value == LEVELS[data["priority"]], name
        assert item.priority.name == data["priorityLabel"], name
        assert [p.native_id for p in item.assignees] == ([data["assigneeId"]] if data.get("assigneeId") else []), name
        assert item.labels == [label["name"] for label in data.get("labels", [])], name
        assert item.kind.value == "task", name
        assert item.parent_id is None, name
        assert item.container is not None, name
        assert item.container.key == data["team"]["key"], name
        assert item.reporter is not None, name
        assert item.reporter.native_id == data["creatorId"], name
        assert (item.iteration.id if item.iteration else None) == data.get("cycleId"), name
        assert (item.estimate.value if item.estimate else None) == data.get("estimate"), name
        assert (item.due_on.isoformat() if item.due_on else None) == data.get("dueDate"), name
        mapped += 1
    assert mapped == 6  # create, remove and four updates


def test_documented_graphql_fields_exist_in_the_schema(linear_dir: Path) -> None:
    """The node shape in linear.yaml's header names only fields of Linear's published schema."""
    sdl = (linear_dir / "schema.graphql").read_text()
    header = (Path(__file__).parents[1] / "mappings" / "linear.yaml").read_text().split("tool: linear")[0]
    issue_fields = set(re.findall(r"^  (\w+)[(:]", _type(sdl, "Issue"), re.MULTILINE))
    selection = header.split("schema.graphql):", 1)[1].split("# Input, shape 2")[0]
    top = re.sub(r"\{[^}]*\}", "", selection.replace("#", " "))  # top-level fields only
    names = set(re.findall(r"\b([a-z][A-Za-z]+)\b", top))
    assert names, "no fields found in the header"
    assert names <= issue_fields, sorted(names - issue_fields)
    for type_name, fields in {
        "WorkflowState": {"id", "name", "type"},
        "Team": {"id", "key", "name"},
        "Project": {"id", "name"},
        "Cycle": {"id", "number", "name", "startsAt", "endsAt"},
        "User": {"id", "name", "displayName", "email"},
        "IssueLabel": {"id", "name"},
    }.items():
        declared = set(re.findall(r"^  (\w+)[(:]", _type(sdl, type_name), re.MULTILINE))
        assert fields <= declared, (type_name, sorted(fields - declared))


def _type(sdl: str, name: str) -> str:
    found = re.search(rf"^type {name} (?:implements [^{{]+)?\{{(.*?)^\}}", sdl, re.MULTILINE | re.DOTALL)
    assert found, name
    return found.group(1)


@pytest.mark.parametrize(
    ("priority", "level"), [(0, "none"), (1, "urgent"), (2, "high"), (3, "medium"), (4, "low"), (2.0, "high")]
)
def test_priority_scale(mapper: Mapper, priority: float, level: str) -> None:
    item = mapper.map({"id": "x", "priority": priority, "updatedAt": "2024-01-01T00:00:00.000Z"})
    assert item.priority.level.value == level


@pytest.mark.parametrize(("state_type", "category"), sorted(CATEGORIES.items()))
def test_state_types(mapper: Mapper, state_type: str, category: str) -> None:
    raw = {"id": "x", "state": {"id": "s", "name": "S", "type": state_type}, "updatedAt": "2024-01-01T00:00:00Z"}
    assert mapper.map(raw).status.category.value == category
