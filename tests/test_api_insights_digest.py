"""GET /v1/insights/digest on a designed dataset, on SQLite and PostgreSQL.

Period: Mon 2026-03-09 00:00Z .. Mon 2026-03-16 00:00Z (until excluded). Teams: TEAM (Jira)
and OPS (GitHub). Roadmap: epic E1 (TEAM) and feature F1 (OPS). Each item's history is
stored as transitions; its `updated_at` is its last change unless stated.

| item | facts (dates in March 2026 unless said)               | counts as (hand-worked)      |
|------|--------------------------------------------------------|------------------------------|
| A    | story under E1: todo 1, in progress 5, done 10         | finished (started before)    |
| B    | story under E1: todo 1, in progress 10                 | started                      |
| C    | bug under E1: todo 1, in progress 2, done 5, back 11   | reopened (not started again) |
| D    | story: todo 1, In Progress 9, "Blocked" 12             | started, blocked (status)    |
| G    | task: blocked_by D (open), updated 13                  | blocked (link)               |
| H    | task: blocked_by A (done), updated 13                  | nothing: blocker finished    |
| I    | task: blocked_by D (open), updated 5                   | nothing: not updated in it   |
| J    | bug created 12, urgent                                 | new urgent/high              |
| K    | bug created 8, high                                    | nothing: created before      |
| L    | bug created 14, medium                                 | nothing: not urgent/high     |
| R    | story: todo 1, in progress 15, done 16 00:00           | started; done is at `until`  |
| W    | story: todo 1, "Blocked" 3, "Unblocked" 12             | nothing: not a blocked status|
| V    | story: done 12, then deleted (tombstone)               | nothing: deleted             |
| M    | OPS story implements F1: todo 1, due_on 10             | overdue                      |
| N    | OPS story: todo 1, due_on 16 (= until's date)          | nothing: the day has not ended|
| O    | OPS story: in progress 1, release_on 15                | overdue                      |
| P    | OPS story: done 2, due_on 1                            | nothing: done                |
| Q    | OPS story under F1: todo 1, in progress 3, done 14     | finished                     |
| T    | TEAM feature, RICE 400: in progress Feb, done 11       | finished; leaves the top     |
| S    | TEAM feature, RICE 150, created 12                     | new in the RICE top          |
| U    | TEAM feature, RICE 120, cancelled 2                    | in neither ranking           |

E1 (RICE 100, in progress since Feb) and F1 (RICE 200, todo since Feb) have no change in
the period. Totals: finished A, Q, T = 3; started B, D, R = 3; blocked D, G = 2; reopened
C = 1; new urgent/high J = 1; overdue M, O = 2. TEAM: 2/3/2/1/1/0; OPS: 1/0/0/0/0/2.
E1 covers A, B, C: finished 1, started 1, reopened 1. F1 covers Q (parent) and M
(implements): finished 1, overdue 1.

RICE now (open): F1 200, S 150, E1 100. At the start (created before it and open then, by
current score): T 400, F1 200, E1 100 (U was cancelled). So F1 is 1st (was 2nd: +1), S is
2nd (new), E1 3rd (was 3rd: 0).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.flow.history import Transition, TransitionSource
from hub.schema import ItemDeletion, StatusCategory
from hub.store import Store
from hub.store.transitions import TransitionStore
from tests.api_support import api_client, assert_problem
from tests.factories import make_item

PERIOD = {"since": "2026-03-09T00:00:00Z", "until": "2026-03-16T00:00:00Z"}
TEAM = {"id": "1", "key": "TEAM", "name": "Team"}
OPS = {"id": "2", "key": "OPS", "name": "Ops"}
NAMES = {"todo": "To Do", "in_progress": "In Progress", "done": "Done", "cancelled": "Cancelled"}


def at(day: int, month: int = 3, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def hid(name: str) -> str:
    return f"acme-jira:{name}" if not name.startswith("gh") else f"acme-gh:{name}"


def seed_one(
    store: Store,
    name: str,
    steps: list[tuple[datetime, str] | tuple[datetime, str, str]],
    *,
    kind: str = "story",
    updated_at: datetime | None = None,
    **fields: Any,
) -> None:
    """One item whose status is its history's last step; `steps` are (time, category[, name])."""
    item_id = hid(name)
    facts = []
    before: tuple[str, str] | None = None
    for step in steps:
        when, category = step[0], step[1]
        status_name = step[2] if len(step) == 3 else NAMES[category]  # type: ignore[misc]
        facts.append(
            Transition(
                item_id,
                when,
                StatusCategory(category),
                status_name,
                None if before is None else StatusCategory(before[0]),
                None if before is None else before[1],
                TransitionSource.changelog,
            )
        )
        before = (category, status_name)
    assert before is not None
    github = name.startswith("gh")
    store.items.apply(
        [
            make_item(
                name,
                source="acme-gh" if github else "acme-jira",
                tool="github" if github else "jira",
                key=f"acme/ops#{name[2:]}" if github else f"TEAM-{name}",
                url=f"https://github.com/acme/ops/issues/{name[2:]}"
                if github
                else f"https://acme.atlassian.net/browse/TEAM-{name}",
                title=f"Item {name}",
                kind=kind,
                created_at=fields.pop("created_at", steps[0][0]),
                updated_at=updated_at or steps[-1][0],
                status={"category": before[0], "name": before[1]},
                container=OPS if github else TEAM,
                **fields,
            )
        ]
    )
    TransitionStore(store.engine).record(facts)


def rice(score: float) -> dict[str, float]:
    return {"reach": score, "impact": 1, "confidence": 1, "effort": 1}


def seed(store: Store) -> None:
    seed_one(store, "E1", [(at(1, 2), "todo"), (at(5, 2), "in_progress")], kind="epic", rice=rice(100))
    seed_one(store, "ghF1", [(at(1, 2), "todo")], kind="feature", rice=rice(200))
    under_e1 = {"parent_id": hid("E1")}
    seed_one(store, "A", [(at(1), "todo"), (at(5), "in_progress"), (at(10), "done")], **under_e1)
    seed_one(store, "B", [(at(1), "todo"), (at(10), "in_progress")], **under_e1)
    seed_one(
        store, "C", [(at(1), "todo"), (at(2), "in_progress"), (at(5), "done"), (at(11), "in_progress")], **under_e1
    )
    seed_one(store, "D", [(at(1), "todo"), (at(9), "in_progress"), (at(12), "in_progress", "Blocked")])
    blocked_by_d = [{"type": "blocked_by", "target_id": hid("D")}]
    seed_one(store, "G", [(at(1), "todo")], kind="task", updated_at=at(13), links=blocked_by_d)
    seed_one(
        store,
        "H",
        [(at(1), "todo")],
        kind="task",
        updated_at=at(13),
        links=[{"type": "blocked_by", "target_id": hid("A")}],
    )
    seed_one(store, "I", [(at(1), "todo")], kind="task", updated_at=at(5), links=blocked_by_d)
    seed_one(store, "J", [(at(12), "todo")], kind="bug", priority={"level": "urgent", "name": "Highest"})
    seed_one(store, "K", [(at(8), "todo")], kind="bug", priority={"level": "high", "name": "High"})
    seed_one(store, "L", [(at(14), "todo")], kind="bug", priority={"level": "medium", "name": "Medium"})
    seed_one(store, "W", [(at(1), "todo"), (at(3), "in_progress", "Blocked"), (at(12), "in_progress", "Unblocked")])
    seed_one(store, "R", [(at(1), "todo"), (at(15), "in_progress"), (at(16), "done")])
    seed_one(store, "V", [(at(1), "todo"), (at(12), "done")])
    store.items.apply([ItemDeletion(source="acme-jira", native_id="V", deleted_at=at(12, hour=1))])
    seed_one(
        store, "ghM", [(at(1), "todo")], due_on="2026-03-10", links=[{"type": "implements", "target_id": hid("ghF1")}]
    )
    seed_one(store, "ghN", [(at(1), "todo")], due_on="2026-03-16")
    seed_one(
        store,
        "ghO",
        [(at(1), "in_progress")],
        release={"id": "r1", "name": "1.0", "release_on": "2026-03-15"},
    )
    seed_one(store, "ghP", [(at(1), "todo"), (at(2), "done")], due_on="2026-03-01")
    seed_one(store, "ghQ", [(at(1), "todo"), (at(3), "in_progress"), (at(14), "done")], parent_id=hid("ghF1"))
    seed_one(
        store, "T", [(at(1, 2), "todo"), (at(10, 2), "in_progress"), (at(11), "done")], kind="feature", rice=rice(400)
    )
    seed_one(store, "S", [(at(12), "todo")], kind="feature", rice=rice(150))
    seed_one(store, "U", [(at(1, 2), "todo"), (at(2), "cancelled")], kind="feature", rice=rice(120))


@pytest.fixture
def client(store: Store) -> Any:
    seed(store)
    with api_client(store) as c:
        yield c


def digest(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/insights/digest", params={**PERIOD, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def named(point: dict[str, Any]) -> list[str]:
    return [item["id"] for item in point["items"]]


def counts(finished: int, started: int, blocked: int, reopened: int, new_urgent: int, overdue: int) -> dict[str, int]:
    return {
        "finished": finished,
        "started": started,
        "blocked": blocked,
        "reopened": reopened,
        "new_urgent": new_urgent,
        "overdue": overdue,
    }


def test_designed_dataset_counts_match_the_hand_worked_ones(client: TestClient) -> None:
    body = digest(client)
    assert body["totals"]["counts"] == counts(3, 3, 2, 1, 1, 2)
    teams = {t["team"]: t for t in body["teams"]}
    assert set(teams) == {"TEAM", "OPS"}
    assert teams["TEAM"]["counts"] == counts(2, 3, 2, 1, 1, 0)
    assert teams["OPS"]["counts"] == counts(1, 0, 0, 0, 0, 2)
    roadmap = {r["item"]["id"]: r for r in body["roadmap"]}
    assert set(roadmap) == {hid("E1"), hid("ghF1")}
    assert roadmap[hid("E1")]["counts"] == counts(1, 1, 0, 1, 0, 0)
    assert roadmap[hid("ghF1")]["counts"] == counts(1, 0, 0, 0, 0, 1)


def test_named_items_are_the_ones_counted_most_recent_first(client: TestClient) -> None:
    points = digest(client)["totals"]["points"]
    assert named(points["finished"]) == [hid("ghQ"), hid("T"), hid("A")]
    assert named(points["started"]) == [hid("R"), hid("B"), hid("D")]
    assert named(points["blocked"]) == [hid("G"), hid("D")]
    assert named(points["reopened"]) == [hid("C")]
    assert named(points["new_urgent"]) == [hid("J")]
    assert named(points["overdue"]) == [hid("ghO"), hid("ghM")]
    q = points["finished"]["items"][0]
    assert q == {
        "id": hid("ghQ"),
        "key": "acme/ops#Q",
        "title": "Item ghQ",
        "url": "https://github.com/acme/ops/issues/Q",
        "tool": "github",
    }


def test_named_caps_the_items_per_point_not_the_counts(client: TestClient) -> None:
    body = digest(client, named=1)
    started = body["totals"]["points"]["started"]
    assert started["count"] == 3
    assert named(started) == [hid("R")]
    assert digest(client, named=0)["totals"]["points"]["finished"] == {"count": 3, "items": []}


def test_rice_top_and_its_movement_since_the_period_began(client: TestClient) -> None:
    top = digest(client)["rice_top"]
    assert [(e["rank"], e["item"]["id"], e["score"], e["start_rank"], e["movement"]) for e in top] == [
        (1, hid("ghF1"), 200.0, 2, 1),
        (2, hid("S"), 150.0, None, None),
        (3, hid("E1"), 100.0, 3, 0),
    ]


def test_default_period_is_the_last_seven_days(client: TestClient) -> None:
    response = client.get("/v1/insights/digest", params={"until": "2026-03-16T00:00:00Z"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["since"] == "2026-03-09T00:00:00Z"
    assert body["totals"]["counts"] == counts(3, 3, 2, 1, 1, 2)


def test_markdown_by_accept_or_format_links_every_named_item(client: TestClient) -> None:
    by_header = client.get("/v1/insights/digest", params=PERIOD, headers={"Accept": "text/markdown"})
    by_param = client.get("/v1/insights/digest", params={**PERIOD, "format": "markdown"})
    for response in (by_header, by_param):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/markdown")
    assert by_header.text == by_param.text
    text = by_header.text
    assert "Finished: 3 · Started: 3 · Became blocked: 2" in text
    assert "[TEAM-C Item C](https://acme.atlassian.net/browse/TEAM-C)" in text
    assert "| 2 | [TEAM-S Item S](https://acme.atlassian.net/browse/TEAM-S) | 150 | new |" in text
    assert "acme-jira:" not in text and "acme-gh:" not in text


@pytest.mark.parametrize(
    ("accept", "markdown"),
    [
        ("text/markdown, application/json;q=0.9", True),
        ("application/json, text/markdown", False),
        ("text/html, text/*", True),
        ("*/*", False),
    ],
)
def test_the_first_acceptable_type_wins(client: TestClient, accept: str, markdown: bool) -> None:
    response = client.get("/v1/insights/digest", params=PERIOD, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/markdown" if markdown else "application/json")


@pytest.mark.parametrize(
    ("params", "headers", "status", "name"),
    [
        ({"format": "html"}, {}, 422, "format"),
        ({}, {"Accept": "text/html"}, 406, None),
        ({"since": "2026-03-16T00:00:00Z"}, {}, 422, "since"),
        ({"since": "2020-01-01T00:00:00Z"}, {}, 422, "since"),
        ({"named": "-1"}, {}, 422, "named"),
        ({"since": "yesterday"}, {}, 422, "since"),
        ({"until": "0001-01-03T00:00:00Z"}, {}, 422, "until"),  # until - 7 days left the calendar
    ],
)
def test_bad_requests_are_problems(
    client: TestClient, params: dict[str, str], headers: dict[str, str], status: int, name: str | None
) -> None:
    response = client.get("/v1/insights/digest", params={**PERIOD, **params}, headers=headers)
    problem = assert_problem(response, status)
    if name is not None:
        assert name in [e["name"] for e in problem.get("errors", [])] or name in problem["detail"]
