"""GET /v1/items/{id}/history: the canonical status history and its derived facts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from hub.api.models import ItemHistoryPublic
from hub.flow.history import Transition
from hub.schema import ItemDeletion
from hub.schema import StatusCategory as C
from hub.store import Store
from tests.api_support import api_client, assert_problem
from tests.factories import BASE_TIME, make_item

TODO = {"category": "todo", "name": "To Do"}
DOING = {"category": "in_progress", "name": "In Progress"}
DONE = {"category": "done", "name": "Done"}


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with api_client(store) as c:
        yield c


def _iso(minutes: int) -> str:
    return (BASE_TIME + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def test_history_of_a_reopened_item(client: TestClient, store: Store) -> None:
    for minutes, status in [(0, TODO), (10, DOING), (20, DONE), (30, DOING), (40, DONE)]:
        store.items.apply([make_item(5, minutes=minutes, status=status)])
    # The tool's changelog states the first start earlier than the hub saw it: both are kept,
    # and the start is the first entry into in_progress.
    changelog = Transition(
        "acme-jira:5", BASE_TIME + timedelta(minutes=4), C.in_progress, "In Progress", C.todo, "To Do"
    )
    store.items.apply([], transitions=[changelog])
    response = client.get("/v1/items/acme-jira:5/history")
    assert response.status_code == 200, response.text
    body = ItemHistoryPublic.model_validate(response.json())
    doc = response.json()
    assert doc["start"] == "seen" and doc["started_at"] == _iso(4)
    assert doc["done_at"] == _iso(40) and doc["reopened"] is True
    assert [(t["at"], t["to_category"], t["source"]) for t in doc["transitions"]] == [
        (_iso(0), "todo", "first_seen"),
        (_iso(4), "in_progress", "changelog"),
        (_iso(20), "done", "observed"),
        (_iso(30), "in_progress", "observed"),
        (_iso(40), "done", "observed"),
    ]
    assert body.transitions[2].from_category is C.in_progress and body.transitions[2].from_name == "In Progress"
    assert doc["transitions"][0]["from_category"] is None


def test_item_first_seen_in_progress_states_an_unknown_start(client: TestClient, store: Store) -> None:
    store.items.apply([make_item("a/b#7", minutes=3, status=DOING)])
    response = client.get(f"/v1/items/{quote('acme-jira:a/b#7', safe='')}/history")
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["item_id"] == "acme-jira:a/b#7"
    assert doc["start"] == "before_history" and doc["started_at"] is None
    assert doc["done_at"] is None and doc["reopened"] is False


def test_tombstoned_item_keeps_its_history(client: TestClient, store: Store) -> None:
    store.items.apply([make_item(9, minutes=0, status=TODO)])
    store.items.apply([ItemDeletion(source="acme-jira", native_id="9", deleted_at=BASE_TIME + timedelta(minutes=5))])
    doc = client.get("/v1/items/acme-jira:9/history").json()
    assert [t["to_category"] for t in doc["transitions"]] == ["todo"]
    assert doc["start"] == "not_started"


def test_unknown_item_is_a_404_problem(client: TestClient, store: Store) -> None:
    store.items.apply([], transitions=[Transition("acme-jira:404", BASE_TIME, C.done, "Done")])  # dropped
    problem = assert_problem(client.get("/v1/items/acme-jira:404/history"), 404)
    assert "acme-jira:404" in problem["detail"]


def test_history_needs_a_key(store: Store) -> None:
    store.items.apply([make_item(1)])
    with api_client(store, scope=None) as c:
        assert_problem(c.get("/v1/items/acme-jira:1/history"), 401)
