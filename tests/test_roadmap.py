"""GET /v1/roadmap and GET /v1/items/{id}/tree, with progress figures computed by hand."""

from __future__ import annotations

from typing import Any

import pytest

from hub.store import Store
from tests.api_support import api_client, assert_problem
from tests.factories import make_item


def _status(category: str) -> dict[str, str]:
    return {"category": category, "name": category}


def _seed(store: Store) -> None:
    jira = {"source": "acme-jira", "tool": "jira"}
    store.items.apply(
        [
            # Roadmap: a Productboard feature implemented by a Jira epic and a GitHub issue (by URL,
            # stored before either target exists), and an Aha! feature implemented by a Linear issue.
            make_item(
                "f1",
                source="pb",
                tool="productboard",
                key=None,
                kind="feature",
                title="Bulk export",
                release={"id": "r1", "name": "Q3"},
                links=[
                    {"type": "implemented_by", "url": "https://acme.atlassian.net/browse/PROJ-1"},
                    {"type": "implemented_by", "url": "https://github.com/acme/api/issues/7"},
                ],
            ),
            make_item(
                "f2",
                source="aha",
                tool="aha",
                key="APP-1",
                kind="feature",
                title="SSO",
                links=[{"type": "implemented_by", "url": "https://linear.app/acme/issue/ENG-1/sso"}],
            ),
        ]
    )
    store.items.apply(
        [
            make_item("100", key="PROJ-1", kind="epic", **jira),
            make_item(
                "101",
                key="PROJ-2",
                kind="story",
                parent_id="acme-jira:100",
                status=_status("done"),
                estimate={"value": 3, "unit": "points"},
                **jira,
            ),
            make_item(
                "102",
                key="PROJ-3",
                kind="story",
                parent_id="acme-jira:100",
                status=_status("in_progress"),
                estimate={"value": 5, "unit": "points"},
                **jira,
            ),
            make_item(
                "103",
                key="PROJ-4",
                kind="task",
                parent_id="acme-jira:100",
                status=_status("cancelled"),
                estimate={"value": 2, "unit": "points"},
                **jira,
            ),
            make_item("104", key="PROJ-5", kind="bug", minutes=30, **jira),  # covered by nothing
            make_item(
                "7001",
                source="gh",
                tool="github",
                key="acme/api#7",
                kind="task",
                links=[{"type": "blocked_by", "target_id": "acme-jira:102"}],
            ),
            make_item("lin-1", source="lin", tool="linear", key="ENG-1", kind="story", status=_status("done")),
        ]
    )


def _entry(body: dict[str, Any], item_id: str) -> dict[str, Any]:
    (entry,) = [e for e in body["roadmap"] if e["item"]["id"] == item_id]
    return entry


def test_rollup_progress_across_tools(store: Store) -> None:
    _seed(store)
    with api_client(store) as client:
        body = client.get("/v1/roadmap").json()
        assert {e["item"]["id"] for e in body["roadmap"]} == {"pb:f1", "aha:f2", "acme-jira:100"}

        f1 = _entry(body, "pb:f1")
        # Delivery: PROJ-2 done (3), PROJ-3 in progress (5), PROJ-4 cancelled (2), acme/api#7 todo.
        assert f1["delivery_total"] == 4
        assert f1["by_status"] == {"backlog": 0, "todo": 1, "in_progress": 1, "done": 1, "cancelled": 1}
        assert f1["progress"]["by_count"] == pytest.approx(1 / 3, abs=1e-4)  # 1 done of 3 not cancelled
        assert f1["progress"]["by_estimate"] == pytest.approx(3 / 8)  # 3 of 8 points (cancelled left out)
        assert f1["progress"]["estimated_items"] == 2
        assert f1["blocked"] == ["gh:7001"]  # blocked by PROJ-3, still open
        assert {d["id"] for d in f1["delivery_items"]} == {"acme-jira:101", "acme-jira:102", "acme-jira:103", "gh:7001"}

        epic = _entry(body, "acme-jira:100")
        assert epic["progress"]["by_count"] == 0.5 and epic["progress"]["by_estimate"] == pytest.approx(3 / 8)

        assert _entry(body, "aha:f2")["progress"]["by_count"] == 1.0
        assert body["uncovered"]["count"] == 1
        assert [i["id"] for i in body["uncovered"]["items"]] == ["acme-jira:104"]

        # Closing PROJ-3 in Jira moves the feature on the next read and unblocks the GitHub issue.
        store.items.apply(
            [
                make_item(
                    "102",
                    key="PROJ-3",
                    kind="story",
                    parent_id="acme-jira:100",
                    status=_status("done"),
                    estimate={"value": 5, "unit": "points"},
                    minutes=60,
                )
            ]
        )
        f1 = _entry(client.get("/v1/roadmap").json(), "pb:f1")
        assert f1["progress"]["by_count"] == pytest.approx(2 / 3, abs=1e-4)
        assert f1["progress"]["by_estimate"] == 1.0
        assert f1["blocked"] == []


def test_roadmap_filters(store: Store) -> None:
    _seed(store)
    with api_client(store) as client:
        only_pb = client.get("/v1/roadmap", params={"source": "pb"}).json()["roadmap"]
        assert [e["item"]["id"] for e in only_pb] == ["pb:f1"]
        by_release = client.get("/v1/roadmap", params={"release": "Q3"}).json()["roadmap"]
        assert [e["item"]["id"] for e in by_release] == ["pb:f1"]
        assert client.get("/v1/roadmap", params={"status_category": "done"}).json()["roadmap"] == []
        assert_problem(client.get("/v1/roadmap", params={"status_category": "finished"}), 422)


def test_item_tree(store: Store) -> None:
    _seed(store)
    with api_client(store) as client:
        tree = client.get("/v1/items/pb:f1/tree").json()
        assert tree["id"] == "pb:f1" and tree["via"] is None
        children = {c["id"]: c for c in tree["children"]}
        assert set(children) == {"acme-jira:100", "gh:7001"}
        assert children["acme-jira:100"]["via"] == "implemented_by"
        assert {c["id"] for c in children["acme-jira:100"]["children"]} == {
            "acme-jira:101",
            "acme-jira:102",
            "acme-jira:103",
        }
        assert all(c["via"] == "parent" for c in children["acme-jira:100"]["children"])
        shallow = client.get("/v1/items/pb:f1/tree", params={"depth": 1}).json()
        assert all(c["children"] == [] for c in shallow["children"])
        assert_problem(client.get("/v1/items/nope:1/tree"), 404)
        # The plain item route still answers ids that contain a slash.
        assert client.get("/v1/items/gh:7001").status_code == 200
