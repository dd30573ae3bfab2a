"""GET /v1/insights/quality and `opshub report quality` on a designed dataset, both backends.

As of 2026-03-01T00:00Z, stale_days 14 (stale = in progress, updated before 2026-02-15).

acme-jira, container PAY ("Payments"):
  J1 story in_progress, updated 2026-02-01: complete                     -> stale; twin of G2 (link)
  J2 epic done, child J3 open                                             -> done parent, open child J3
  J3 story todo, parent J2, nothing filled, priority "P9" fell back        -> twin of G1 (title)
  J4 feature todo, no child/link, RICE all four, assignee, description,
     priority "P9" fell back                                              -> roadmap without work
  J5 other todo, parent GONE, link to NOPE, kind "Spike" fell back,
     assignee, estimate, priority low, description, iteration             -> missing parent, missing target
acme-gh, container acme/payments:
  G1 task todo "Refund  flow!", assignee only, status "Triage" fell back  -> twin of J3 (same family+title)
  G2 task done, `duplicates` link to J1                                   -> twin of J1
  G3 task todo, complete

Completeness, acme-jira (open: J1 J3 J4 J5): assignee 3/4, estimate 2/4, priority 2/4,
description 3/4, iteration 2/4, rice 1/1 (J4) -> mean 4/6. Drifting 3/5 (J3 J4 J5), with a
finding 5/5. Score 100 x (0.5 x 4/6 + 0.2 x 2/5 + 0.3 x 0) = 41.33 -> 41.3.
acme-gh (open: G1 G3): assignee 2/2, estimate, priority, description, iteration 1/2 each, no
RICE -> mean 3/5. Drifting 1/3, with a finding 2/3 (G1 G2).
Score 100 x (0.5 x 0.6 + 0.2 x 2/3 + 0.3 x 1/3) = 53.33 -> 53.3. Each source has one container:
same figures. Drift: (acme-jira, priority, P9) x2 example J3; then (acme-gh, status, Triage)
and (acme-jira, kind, Spike) x1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hub.cli import app
from hub.store import Store
from mappings.engine import FALLBACKS_KEY
from tests.api_support import api_client
from tests.factories import make_item

AS_OF = "2026-03-01T00:00:00Z"
PAY = {"id": "P1", "key": "PAY", "name": "Payments"}
REPO = {"id": "R1", "key": "acme/payments", "name": "acme/payments"}
FULL: dict[str, Any] = {
    "assignees": [{"native_id": "u1", "name": "Ann"}],
    "estimate": {"value": 3, "unit": "points"},
    "priority": {"level": "high", "name": "High"},
    "description": "Why and how.",
    "iteration": {"id": "S1", "name": "Sprint 1"},
}


def _at(day: int, month: int = 2) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC)


def _fell_back(field: str, raw: str) -> dict[str, Any]:
    return {FALLBACKS_KEY: [{"field": field, "raw": raw}]}


def _jira(name: str, **fields: Any) -> Any:
    return make_item(
        name, key=f"PAY-{name}", url=f"https://acme.atlassian.net/browse/PAY-{name}", container=PAY, **fields
    )


def _gh(name: str, **fields: Any) -> Any:
    return make_item(
        name,
        source="acme-gh",
        tool="github",
        key=f"acme/payments#{name}",
        url=f"https://github.com/acme/payments/issues/{name}",
        container=REPO,
        **fields,
    )


def seed(store: Store) -> None:
    todo = {"category": "todo", "name": "To Do"}
    done = {"category": "done", "name": "Done"}
    store.items.apply(
        [
            _jira(
                "J1",
                kind="story",
                status={"category": "in_progress", "name": "Doing"},
                updated_at=_at(1),
                title="Card payments",
                **FULL,
            ),
            _jira("J2", kind="epic", status=done, updated_at=_at(20), title="Refunds"),
            _jira(
                "J3",
                kind="story",
                status=todo,
                parent_id="acme-jira:J2",
                updated_at=_at(25),
                title="Refund flow",
                priority={"level": "none", "name": "P9"},
                custom=_fell_back("priority", "P9"),
            ),
            _jira(
                "J4",
                kind="feature",
                status=todo,
                updated_at=_at(26),
                title="Wallets",
                assignees=FULL["assignees"],
                description="d",
                priority={"level": "none", "name": "P9"},
                rice={"reach": 100, "impact": 2, "confidence": 0.5, "effort": 3},
                custom=_fell_back("priority", "P9"),
            ),
            _jira(
                "J5",
                kind="other",
                kind_raw="Spike",
                status=todo,
                updated_at=_at(27),
                title="Spike",
                parent_id="acme-jira:GONE",
                links=[{"type": "relates", "target_id": "acme-jira:NOPE"}],
                custom=_fell_back("kind", "Spike"),
                **{**FULL, "priority": {"level": "low", "name": "Low"}},
            ),
            _gh(
                "G1",
                kind="task",
                status={"category": "todo", "name": "Triage"},
                updated_at=_at(10),
                title="Refund  flow!",
                assignees=FULL["assignees"],
                custom=_fell_back("status", "Triage"),
            ),
            _gh(
                "G2",
                kind="task",
                status=done,
                updated_at=_at(11),
                title="Card payments v2",
                links=[{"type": "duplicates", "target_id": "acme-jira:J1"}],
            ),
            _gh("G3", kind="task", status=todo, updated_at=_at(12), title="Receipts", **FULL),
        ]
    )


@pytest.fixture
def client(store: Store) -> Any:
    seed(store)
    with api_client(store) as c:
        yield c


def _quality(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/insights/quality", params={"as_of": AS_OF, "stale_days": 14, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _finding(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in body["findings"] if f["name"] == name)
    return found


def _ids(finding: dict[str, Any]) -> dict[str, list[str]]:
    return {i["id"]: i["related"] for i in finding["items"]}


def test_findings_match_the_hand_worked_ones(client: TestClient) -> None:
    body = _quality(client)
    assert body["items"] == 8
    assert _ids(_finding(body, "stale_in_progress")) == {"acme-jira:J1": []}
    assert _ids(_finding(body, "done_parent_open_children")) == {"acme-jira:J2": ["acme-jira:J3"]}
    assert _ids(_finding(body, "roadmap_without_work")) == {"acme-jira:J4": []}
    assert _ids(_finding(body, "missing_parent")) == {"acme-jira:J5": ["acme-jira:GONE"]}
    assert _ids(_finding(body, "missing_link_target")) == {"acme-jira:J5": ["acme-jira:NOPE"]}
    assert _ids(_finding(body, "duplicate_across_tools")) == {
        "acme-gh:G1": ["acme-jira:J3"],
        "acme-gh:G2": ["acme-jira:J1"],
        "acme-jira:J1": ["acme-gh:G2"],
        "acme-jira:J3": ["acme-gh:G1"],
    }
    assert all(f["next_offset"] is None for f in body["findings"])
    assert _finding(body, "stale_in_progress")["items"][0]["url"] == "https://acme.atlassian.net/browse/PAY-J1"


def test_scores_completeness_and_drift_match_the_hand_worked_ones(client: TestClient) -> None:
    body = _quality(client)
    gh, jira = body["sources"]
    assert (jira["source"], jira["items"], jira["open_items"]) == ("acme-jira", 5, 4)
    assert {s["field"]: (s["present"], s["applicable"]) for s in jira["completeness"]} == {
        "assignee": (3, 4),
        "estimate": (2, 4),
        "priority": (2, 4),
        "description": (3, 4),
        "iteration": (2, 4),
        "rice": (1, 1),
    }
    assert (jira["drifting_items"], jira["items_with_findings"], jira["score"]) == (3, 5, 41.3)
    assert {s["field"]: (s["present"], s["applicable"]) for s in gh["completeness"]} == {
        "assignee": (2, 2),
        "estimate": (1, 2),
        "priority": (1, 2),
        "description": (1, 2),
        "iteration": (1, 2),
        "rice": (0, 0),
    }
    assert (gh["source"], gh["drifting_items"], gh["items_with_findings"], gh["score"]) == ("acme-gh", 1, 2, 53.3)
    assert [(c["source"], c["container_key"], c["score"]) for c in body["containers"]] == [
        ("acme-gh", "acme/payments", 53.3),
        ("acme-jira", "PAY", 41.3),
    ]
    assert [(d["source"], d["field"], d["raw"], d["count"], d["example"]["id"]) for d in body["drift"]] == [
        ("acme-jira", "priority", "P9", 2, "acme-jira:J3"),
        ("acme-gh", "status", "Triage", 1, "acme-gh:G1"),
        ("acme-jira", "kind", "Spike", 1, "acme-jira:J5"),
    ]
    assert body["drift"][0]["example"]["url"] == "https://acme.atlassian.net/browse/PAY-J3"


def test_findings_are_paged_with_limit_and_offset(client: TestClient) -> None:
    first = _finding(_quality(client, limit=1, offset=1), "duplicate_across_tools")
    assert (first["count"], [i["id"] for i in first["items"]], first["next_offset"]) == (4, ["acme-gh:G2"], 2)
    last = _finding(_quality(client, limit=1, offset=3), "duplicate_across_tools")
    assert ([i["id"] for i in last["items"]], last["next_offset"]) == (["acme-jira:J3"], None)


def test_stale_days_and_filters_change_the_answer(client: TestClient) -> None:
    assert _finding(_quality(client, stale_days=30), "stale_in_progress")["count"] == 0
    body = _quality(client, container="PAY")
    assert [s["source"] for s in body["sources"]] == ["acme-jira"]
    # A link stated by an item outside the filter still makes J1 a twin; a title twin needs both matched.
    assert _ids(_finding(body, "duplicate_across_tools")) == {"acme-jira:J1": ["acme-gh:G2"]}
    assert [d["raw"] for d in body["drift"]] == ["P9", "Spike"]


def test_bad_parameters_are_problems(client: TestClient) -> None:
    response = client.get("/v1/insights/quality", params={"stale_days": 0})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    # An offset past what any finding holds is refused, not sent to the database (PostgreSQL
    # answered 2^63 with "bigint out of range": a 500).
    response = client.get("/v1/insights/quality", params={"offset": 2**63})
    assert response.status_code == 422
    # as_of minus stale_days left the calendar (OverflowError: a 500, found by schemathesis).
    response = client.get("/v1/insights/quality", params={"as_of": "0001-01-01T00:00:00Z"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_cli_prints_the_report_and_gates_on_the_score(store: Store, db_url: str) -> None:
    seed(store)
    runner = CliRunner()
    base = ["--database-url", db_url, "report", "quality", "--as-of", "2026-03-01", "--stale-days", "14"]
    failed = runner.invoke(app, [*base, "--fail-under", "50"])
    assert failed.exit_code == 1
    assert "quality score 41.3 of container PAY of source acme-jira is below 50" in failed.output
    passed = runner.invoke(app, [*base, "--fail-under", "41.3"])
    assert passed.exit_code == 0, passed.output
    assert "Vocabulary drift" in passed.output and "P9" in passed.output
