"""GET /v1/insights/priorities on a designed dataset, on both backends.

`as_of` is 2026-03-18, so with the default 14-day window the horizon is 2026-04-01
(included). Container TEAM (Jira, keys TEAM-n) holds, by hand:

| item | facts                                          | urgent by     | important by   | quadrant             |
|------|------------------------------------------------|---------------|----------------|----------------------|
| I1   | initiative                                     |               | kind           | important_not_urgent |
| E1   | epic, child of I1, due 03-25                   | due           | roadmap, kind  | urgent_important     |
| S1   | story, child of E1, priority high              | priority      | roadmap        | urgent_important     |
| S2   | story, `implements` E1 by hub id               |               | roadmap        | important_not_urgent |
| S10  | story, `implements` E1 by its Jira URL         |               | roadmap        | important_not_urgent |
| T1   | sub-task, child of S2 (two levels below E1)    |               | roadmap        | important_not_urgent |
| S3   | story, due 03-10 (past)                        | overdue       |                | urgent_not_important |
| S4   | story, release on 04-01 (the horizon's day)    | release       |                | urgent_not_important |
| S12  | story, release on 03-01, still open            | release_passed|                | urgent_not_important |
| S5   | story, due and release 04-02 (a day past), med |               |                | neither              |
| R1   | RICE 100, priority urgent                      | priority      | rice           | urgent_important     |
| R2   | RICE 80                                        |               | rice           | important_not_urgent |
| R3   | RICE 80 (a tie at the threshold)               |               | rice           | important_not_urgent |
| R4-6 | RICE 60, 40, 20                                |               |                | neither              |
| F1   | feature; says `implemented_by` S9 (hub id) and X2 (GitHub URL) | | kind     | important_not_urgent |
| S9   | story, priority low, implements nothing itself |               | roadmap        | important_not_urgent |
| S11  | story, child of E2 (a DONE epic)               |               | roadmap        | important_not_urgent |

Left out as not open: E2 (done), S6 (done, urgent), S7 (cancelled, urgent), RD (done, RICE
1000: were it counted, the threshold would be 100 and R2/R3 would not fire), S8 (deleted,
urgent). RICE: the 6 open scores 100, 80, 80, 60, 40, 20; nearest rank ceil(0.25 x 6) = 2
from the highest is 80, so R1, R2, R3 fire `rice`.

Container OTHER (GitHub) adds X1 (priority urgent, urgent_not_important) and X2 (implements
F1 through F1's link: important_not_urgent): the container filter keeps them out.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from hub.schema import ItemDeletion
from hub.settings import Settings
from hub.store import Store
from tests.api_support import api_client, assert_problem
from tests.factories import make_item

AS_OF = "2026-03-18"
TEAM = {"id": "10001", "key": "TEAM", "name": "Team"}
OTHER = {"id": "20002", "key": "acme/app", "name": "App"}
NUMBERS = {
    name: n
    for n, name in enumerate(
        [
            "I1",
            "E1",
            "S1",
            "S2",
            "S3",
            "S4",
            "S5",
            "S6",
            "S7",
            "S8",
            "S9",
            "S10",
            "S11",
            "S12",
            "E2",
            "F1",
            "R1",
            "R2",
            "R3",
            "R4",
            "R5",
            "R6",
            "RD",
            "T1",
        ],
        start=1,
    )
}


def hid(name: str) -> str:
    if name.startswith("X"):
        return f"acme-gh:{name}"
    return f"acme-jira:{NUMBERS[name]}"


def rice(score: float) -> dict[str, float]:
    return {"reach": score, "impact": 1, "confidence": 1, "effort": 1}


def _jira(name: str, kind: str = "story", category: str = "todo", **fields: Any) -> Any:
    n = NUMBERS[name]
    return make_item(
        n,
        key=f"TEAM-{n}",
        title=name,
        kind=kind,
        container=TEAM,
        status={"category": category, "name": category},
        url=f"https://acme.atlassian.net/browse/TEAM-{n}",
        **fields,
    )


def seed(store: Store) -> None:
    release = {"id": "r", "name": "R"}
    store.items.apply(
        [
            _jira("I1", "initiative"),
            _jira("E1", "epic", "in_progress", parent_id=hid("I1"), due_on=date(2026, 3, 25)),
            _jira("S1", parent_id=hid("E1"), priority={"level": "high"}),
            _jira("S2", links=[{"type": "implements", "target_id": hid("E1")}]),
            _jira("T1", "subtask", parent_id=hid("S2")),
            _jira(
                "S10", links=[{"type": "implements", "url": f"https://acme.atlassian.net/browse/TEAM-{NUMBERS['E1']}"}]
            ),
            _jira("S3", due_on=date(2026, 3, 10)),
            _jira("S4", release={**release, "release_on": date(2026, 4, 1)}),
            _jira("S12", release={**release, "release_on": date(2026, 3, 1)}),
            _jira(
                "S5",
                due_on=date(2026, 4, 2),
                release={**release, "release_on": date(2026, 4, 2)},
                priority={"level": "medium"},
            ),
            _jira("S6", category="done", priority={"level": "urgent"}),
            _jira("S7", category="cancelled", priority={"level": "urgent"}),
            _jira("S8", priority={"level": "urgent"}),
            _jira("S9", priority={"level": "low"}),
            _jira("E2", "epic", "done"),
            _jira("S11", parent_id=hid("E2")),
            _jira(
                "F1",
                "feature",
                links=[
                    {"type": "implemented_by", "target_id": hid("S9")},
                    {"type": "implemented_by", "url": "https://github.com/acme/app/issues/2"},
                ],
            ),
            _jira("R1", rice=rice(100), priority={"level": "urgent"}),
            _jira("R2", rice=rice(80)),
            _jira("R3", rice=rice(80)),
            _jira("R4", rice=rice(60)),
            _jira("R5", rice=rice(40)),
            _jira("R6", rice=rice(20)),
            _jira("RD", category="done", rice=rice(1000)),
            make_item(
                "X1",
                source="acme-gh",
                tool="github",
                key="acme/app#1",
                kind="story",
                container=OTHER,
                priority={"level": "urgent"},
            ),
            make_item("X2", source="acme-gh", tool="github", key="acme/app#2", kind="story", container=OTHER),
        ]
    )
    store.items.apply([ItemDeletion(source="acme-jira", native_id=str(NUMBERS["S8"]))])


EXPECTED_TEAM = {
    "urgent_important": {"E1": ["due", "roadmap", "kind"], "S1": ["priority", "roadmap"], "R1": ["priority", "rice"]},
    "important_not_urgent": {
        "I1": ["kind"],
        "S2": ["roadmap"],
        "S10": ["roadmap"],
        "F1": ["kind"],
        "S9": ["roadmap"],
        "S11": ["roadmap"],
        "T1": ["roadmap"],
        "R2": ["rice"],
        "R3": ["rice"],
    },
    "urgent_not_important": {"S3": ["overdue"], "S4": ["release"], "S12": ["release_passed"]},
    "neither": {"S5": [], "R4": [], "R5": [], "R6": []},
}


@pytest.fixture
def client(store: Store) -> Any:
    seed(store)
    with api_client(store, settings=Settings(database_url="sqlite://", page_limit_max=500)) as c:
        yield c


def _matrix(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/insights/priorities", params={"as_of": AS_OF, "limit": 100, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _why(quadrant: dict[str, Any]) -> dict[str, list[str]]:
    return {item["id"]: item["why"] for item in quadrant["items"]}


def _by_id(expected: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
    return {q: {hid(name): why for name, why in found.items()} for q, found in expected.items()}


def test_designed_dataset_gives_the_hand_worked_matrix(client: TestClient) -> None:
    body = _matrix(client, container="TEAM")
    expected = _by_id(EXPECTED_TEAM)
    assert {q: _why(found) for q, found in body["quadrants"].items()} == expected
    assert {q: found["count"] for q, found in body["quadrants"].items()} == {q: len(v) for q, v in expected.items()}
    assert body["open_items"] == 19
    assert body["rice_threshold"] == 80
    assert body["delegate_or_drop"] == body["quadrants"]["urgent_not_important"]
    (item,) = [i for i in body["quadrants"]["urgent_important"]["items"] if i["id"] == hid("E1")]
    assert item == {
        "id": hid("E1"),
        "key": f"TEAM-{NUMBERS['E1']}",
        "title": "E1",
        "kind": "epic",
        "url": f"https://acme.atlassian.net/browse/TEAM-{NUMBERS['E1']}",
        "why": ["due", "roadmap", "kind"],
    }
    assert "2026-04-01" in body["rules"]["urgent"]


def test_without_filters_the_other_team_joins(client: TestClient) -> None:
    body = _matrix(client)
    assert _why(body["quadrants"]["urgent_not_important"])[hid("X1")] == ["priority"]
    # F1 says X2 implements it, by X2's GitHub URL: X2 is on the roadmap.
    assert _why(body["quadrants"]["important_not_urgent"])[hid("X2")] == ["roadmap"]
    assert body["open_items"] == 21


def test_filters_are_the_items_filters(client: TestClient) -> None:
    body = _matrix(client, priority_level=["urgent", "high"], kind="story")
    assert {q: sorted(_why(found)) for q, found in body["quadrants"].items()} == {
        "urgent_important": sorted([hid("S1"), hid("R1")]),
        "important_not_urgent": [],
        "urgent_not_important": [hid("X1")],
        "neither": [],
    }
    # RICE ranks the open items the filters keep: R1 is the only score, so it is the top.
    assert body["rice_threshold"] == 100


def test_settings_override_the_rules(store: Store) -> None:
    seed(store)
    settings = Settings(
        database_url="sqlite://",
        priorities_window_days=6,
        priorities_urgent_levels=["urgent"],
        priorities_important_kinds=["initiative"],
        priorities_rice_top_share=0.6,
    )
    with api_client(store, settings=settings) as client:
        body = _matrix(client, container="TEAM")
    quadrants = {q: _why(found) for q, found in body["quadrants"].items()}
    # E1 is due on 03-25, seven days away: past a six-day window; still on I1's roadmap.
    assert quadrants["important_not_urgent"][hid("E1")] == ["roadmap"]
    # high no longer urgent; S4's release (04-01) out of the window; F1 (a feature) not important.
    assert quadrants["important_not_urgent"][hid("S1")] == ["roadmap"]
    assert quadrants["neither"][hid("S4")] == []
    assert quadrants["neither"][hid("F1")] == []
    # A 0.6 share of 6 scores: nearest rank ceil(3.6) = 4 from the top is R4's 60.
    assert body["rice_threshold"] == 60
    assert quadrants["important_not_urgent"][hid("R4")] == ["rice"]


def test_a_quadrant_pages_by_id(client: TestClient) -> None:
    expected = sorted(_by_id(EXPECTED_TEAM)["important_not_urgent"])
    seen: list[str] = []
    params: dict[str, Any] = {"container": "TEAM", "limit": 3}
    for _ in range(5):
        found = _matrix(client, **params)["quadrants"]["important_not_urgent"]
        assert found["count"] == len(expected)
        seen.extend(item["id"] for item in found["items"])
        if found["next_after"] is None:
            break
        params = {**params, "quadrant": "important_not_urgent", "after": found["next_after"]}
    assert seen == expected


def test_after_without_quadrant_and_bad_as_of_are_problems(client: TestClient) -> None:
    assert_problem(client.get("/v1/insights/priorities", params={"after": "x"}), 422)
    assert_problem(client.get("/v1/insights/priorities", params={"as_of": "0001-01-01"}), 422)
    assert_problem(client.get("/v1/insights/priorities", params={"quadrant": "nope"}), 422)


def test_rule_settings_only_take_known_levels_and_kinds() -> None:
    with pytest.raises(ValidationError):
        Settings(database_url="sqlite://", priorities_urgent_levels=["asap"])
    with pytest.raises(ValidationError):
        Settings(database_url="sqlite://", priorities_important_kinds=["theme"])
    with pytest.raises(ValidationError):
        Settings(database_url="sqlite://", priorities_rice_top_share=0)
