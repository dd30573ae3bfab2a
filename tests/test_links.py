"""Cross-tool links resolve to hub ids whichever side arrives first, in both directions;
RICE ranking across tools."""

from __future__ import annotations

from typing import Any

import pytest

from hub.links import Ref, ref_from_url
from hub.store import Store
from tests.api_support import api_client, assert_problem
from tests.factories import make_item


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acme.atlassian.net/browse/PROJ-12", Ref("jira", "PROJ-12")),
        ("https://acme.atlassian.net/browse/proj-12?focusedCommentId=1", Ref("jira", "PROJ-12")),
        ("https://jira.acme.com/jira/browse/OPS-7", Ref("jira", "OPS-7")),
        ("https://acme.atlassian.net/jira/software/projects/APP/issues/APP-3", Ref("jira", "APP-3")),
        ("jira:ENG-42", Ref("jira", "ENG-42")),
        ("https://linear.app/acme/issue/ENG-42/fix-the-thing", Ref("linear", "ENG-42")),
        ("https://github.com/acme/api/issues/7", Ref("github", "acme/api#7")),
        ("https://api.github.com/repos/acme/api/issues/7", Ref("github", "acme/api#7")),
        ("https://gitlab.com/acme/platform/api/-/issues/9", Ref("gitlab", "acme/platform/api#9")),
        ("https://redmine.acme.org/issues/31", Ref("redmine", "#31")),
        ("https://github.com/acme/api/pull/7", None),
        ("https://example.com/anything", None),
    ],
)
def test_ref_from_url(url: str, expected: Ref | None) -> None:
    assert ref_from_url(url) == expected


def _feature(**fields: Any) -> Any:
    return make_item(
        "feat-1",
        source="acme-pb",
        tool="productboard",
        key=None,
        kind="feature",
        title="Bulk export",
        links=[{"type": "implemented_by", "url": "https://acme.atlassian.net/browse/PROJ-1"}],
        **fields,
    )


def _jira_issue(minutes: int = 0) -> Any:
    return make_item("10001", key="PROJ-1", kind="story", minutes=minutes)


@pytest.mark.parametrize("feature_first", [True, False])
def test_link_resolves_whichever_side_arrives_first(store: Store, feature_first: bool) -> None:
    first, second = (_feature(), _jira_issue()) if feature_first else (_jira_issue(), _feature())
    store.items.apply([first])
    with api_client(store) as client:
        if feature_first:
            links = client.get("/v1/items/acme-pb:feat-1").json()["links"]
            assert links == [
                {"type": "implemented_by", "target_id": None, "url": "https://acme.atlassian.net/browse/PROJ-1"}
            ]
        store.items.apply([second])
        feature = client.get("/v1/items/acme-pb:feat-1").json()
        assert feature["links"][0]["target_id"] == "acme-jira:10001"
        issue = client.get("/v1/items/acme-jira:10001").json()
        assert {"type": "implements", "target_id": "acme-pb:feat-1", "url": None} in issue["links"]
        # List pages carry the same resolution.
        page = {i["id"]: i for i in client.get("/v1/items").json()["items"]}
        assert page["acme-pb:feat-1"]["links"][0]["target_id"] == "acme-jira:10001"
        assert any(link["type"] == "implements" for link in page["acme-jira:10001"]["links"])


def test_link_by_hub_id_shows_inverse_and_follows_updates(store: Store) -> None:
    blocker = make_item("1", key="PROJ-1")
    blocked = make_item("2", key="PROJ-2", links=[{"type": "blocked_by", "target_id": "acme-jira:1"}])
    store.items.apply([blocker, blocked])
    with api_client(store) as client:
        assert client.get("/v1/items/acme-jira:1").json()["links"] == [
            {"type": "blocks", "target_id": "acme-jira:2", "url": None}
        ]
        store.items.apply([make_item("2", key="PROJ-2", minutes=5, links=[])])  # the link was removed
        assert client.get("/v1/items/acme-jira:1").json()["links"] == []


def test_rice_ranking_across_tools(store: Store) -> None:
    store.items.apply(
        [
            make_item(
                "a", source="pb", tool="productboard", rice={"reach": 100, "impact": 2, "confidence": 0.5, "effort": 4}
            ),
            make_item("b", source="aha", tool="aha", rice={"reach": 1000, "impact": 1, "confidence": 0.8, "effort": 2}),
            make_item("c", source="jira", tool="jira", rice={"reach": 10, "impact": 3, "confidence": 1, "effort": 1}),
            make_item("d", source="pb", tool="productboard", rice={"reach": 500, "impact": 3}),  # missing inputs
            make_item("e", source="jira", tool="jira"),
        ]
    )
    with api_client(store) as client:
        ranked = client.get("/v1/items", params={"sort": "-rice_score"}).json()
        assert [i["id"] for i in ranked["items"]] == ["aha:b", "jira:c", "pb:a"]  # 400, 30, 25
        assert [i["rice"]["score"] for i in ranked["items"]] == [400.0, 30.0, 25.0]
        ascending = client.get("/v1/items", params={"sort": "rice_score", "limit": 2}).json()
        assert [i["id"] for i in ascending["items"]] == ["pb:a", "jira:c"]
        rest = client.get(
            "/v1/items", params={"sort": "rice_score", "limit": 2, "cursor": ascending["next_cursor"]}
        ).json()
        assert [i["id"] for i in rest["items"]] == ["aha:b"] and rest["next_cursor"] is None
        missing = client.get("/v1/items/pb:d").json()["rice"]
        assert missing["score"] is None and missing["missing"] == ["confidence", "effort"]
        # A cursor from one sort is refused under the other.
        assert_problem(client.get("/v1/items", params={"sort": "-updated_at", "cursor": ascending["next_cursor"]}), 400)
