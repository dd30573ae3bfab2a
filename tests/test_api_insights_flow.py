"""GET /v1/insights/flow on the designed dataset of tests/test_flow_metrics.py, on both backends.

Its docstring works every figure out by hand (period Wed 2026-03-04 .. Tue 2026-03-17, WIP
at 2026-03-18 00:00Z). Here the same 21 items sit in the store, in container TEAM, next to
items that the filters must keep out: the same histories in another team, and an epic of
TEAM finished in the period (flow counts delivery kinds unless asked). The API must give
the hand-worked figures exactly.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.store import Store
from tests.api_support import api_client, assert_problem
from tests.insights_support import TEAM, hub_id, seed_dataset, seed_item
from tests.test_flow_metrics import DATASET

PARAMS = {"from": "2026-03-04", "to": "2026-03-17", "as_of": "2026-03-18T00:00:00Z"}
OTHER = {"id": "20002", "key": "OTHER", "name": "Other team"}


@pytest.fixture
def client(store: Store) -> Any:
    seed_dataset(store)
    for flow_item in DATASET[:6]:  # A..F again, in another team and tool
        seed_item(store, flow_item, source="acme-gh", tool="github", container=OTHER, prefix="X")
    seed_item(store, DATASET[0], kind="epic", prefix="EPIC")  # A's history, as an epic of TEAM
    with api_client(store) as c:
        yield c


def _flow(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/insights/flow", params={**PARAMS, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(*names: str) -> list[str]:
    return [hub_id(n) for n in names]


def test_designed_dataset_figures_match_the_hand_worked_ones(client: TestClient) -> None:
    body = _flow(client, container="TEAM")
    assert body["period"] == {"start": "2026-03-04", "end": "2026-03-17"}
    assert body["items"] == 21
    assert body["filters"]["container"] == ["TEAM"]
    assert "nearest rank" in body["percentile_definition"]

    throughput = body["throughput"]
    assert [(w["week"], w["starts_on"], w["count"]) for w in throughput["weeks"]] == [
        ("2026-W10", "2026-03-02", 3),
        ("2026-W11", "2026-03-09", 4),
        ("2026-W12", "2026-03-16", 3),
    ]
    assert throughput["total"] == 10
    assert throughput["left_out"] == {"cancelled": 1, "no_completion_time": 1, "reopened": 1}

    cycle = body["cycle_time"]
    assert [(p["item_id"], p["days"]) for p in cycle["points"]] == list(
        zip(ids("E", "A", "Q", "B", "C", "F", "R"), [1.0, 2.0, 3.0, 4.0, 6.0, 5.5, 10.0], strict=True)
    )
    assert cycle["points"][4]["done_at"] == "2026-03-12T00:00:00Z"
    assert cycle["percentiles"] == {"p50": 4.0, "p85": 6.0, "p95": 10.0}
    assert cycle["left_out"] == {"never_in_progress": 1, "no_history": 1, "start_before_history": 1}

    lead = body["lead_time"]
    assert sorted((p["item_id"], p["days"]) for p in lead["points"]) == sorted(
        zip(
            ids("E", "L", "Q", "A", "B", "F", "C", "K", "R", "D"),
            [1.25, 2.0, 4.0, 5.0, 7.5, 7.5, 9.0, 12.0, 12.0, 18.25],
            strict=True,
        )
    )
    assert lead["percentiles"] == {"p50": 7.5, "p85": 12.0, "p95": 18.25}
    assert lead["left_out"] == {}

    wip = body["wip"]
    assert wip["count"] == 6
    assert [(a["item_id"], a["age_days"], a["zone"]) for a in wip["items"]] == [
        (hub_id("H"), 15.0, "above_p95"),
        (hub_id("T"), 8.0, "p85_to_p95"),
        (hub_id("S"), 5.0, "p50_to_p85"),
        (hub_id("I"), 3.0, "up_to_p50"),
        (hub_id("O"), 0.5, "up_to_p50"),
        (hub_id("J"), None, None),
    ]
    assert wip["items"][0]["started_at"] == "2026-03-03T00:00:00Z"
    assert wip["left_out"] == {"start_before_history": 1}

    cfd = {d["day"]: d["counts"] for d in body["cumulative_flow"]["days"]}
    assert len(cfd) == 14
    categories = ("backlog", "todo", "in_progress", "done", "cancelled")
    for day, counts in {
        "2026-03-04": (1, 4, 4, 1, 0),
        "2026-03-08": (1, 2, 5, 5, 0),
        "2026-03-12": (1, 4, 4, 8, 1),
        "2026-03-17": (1, 1, 6, 10, 1),
    }.items():
        assert cfd[day] == dict(zip(categories, counts, strict=True)), day
    assert body["cumulative_flow"]["left_out"] == {"no_history": 2, "status_unknown": 1}


def test_filters_select_the_items_as_v1_items_does(client: TestClient) -> None:
    everything = _flow(client)
    # 21 of TEAM + 6 of OTHER; the epic is not a delivery item.
    assert everything["items"] == 27
    # A, B, C, D, E, F of OTHER are done in the period too: W10 +2 (A, E), W11 +3 (B, C, D), W12 +1 (F).
    assert [w["count"] for w in everything["throughput"]["weeks"]] == [5, 7, 4]
    other = _flow(client, container="OTHER")
    assert other["items"] == 6
    assert other["throughput"]["total"] == 6
    assert _flow(client, tool="github")["throughput"] == other["throughput"]
    assert _flow(client, source="acme-jira", container=TEAM["id"])["throughput"]["total"] == 10
    epics = _flow(client, kind="epic")
    assert epics["items"] == 1
    assert [p["item_id"] for p in epics["cycle_time"]["points"]] == [hub_id("EPICA")]
    assert _flow(client, label="nothing-has-this")["items"] == 0


def test_default_period_is_the_last_twelve_complete_weeks(client: TestClient) -> None:
    response = client.get("/v1/insights/flow", params={"as_of": "2026-03-18T00:00:00Z", "container": "TEAM"})
    body = response.json()
    # Wed Mar 18 is in W12: the period is W00..W11, i.e. Mon Dec 22 2025 .. Sun Mar 15 2026.
    assert body["period"] == {"start": "2025-12-22", "end": "2026-03-15"}
    assert len(body["throughput"]["weeks"]) == 12
    # The whole weeks W10 and W11: A, E, Q then B, D, C, K (F, L and R finish in W12).
    assert [w["count"] for w in body["throughput"]["weeks"]][-2:] == [3, 4]


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-03-01"}, "from"),
        ({"from": "not-a-date"}, "from"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"kind": "saga"}, "kind"),
    ],
)
def test_a_bad_period_or_filter_is_a_422_problem(client: TestClient, params: dict[str, str], name: str) -> None:
    body = assert_problem(client.get("/v1/insights/flow", params=params), 422)
    assert [e["name"] for e in body["errors"]] == [name]


def test_flow_needs_a_read_key(store: Store) -> None:
    with api_client(store, scope=None) as anonymous:
        assert_problem(anonymous.get("/v1/insights/flow"), 401)
