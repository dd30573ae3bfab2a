"""Real Jira webhook deliveries (../shared/fixtures/jira) become status history on Jira's clock.

Four real deliveries of one issue (TES-41: created, moved to In Progress, resolved, reopened)
are posted signed through the hub. Each delivery's top-level `changelog` is a status change
timed by the issue's `fields.updated` in the same payload; the expected history is read from
the payloads here (status names, categories and times), not from the code under test.
"""

from __future__ import annotations

import json
from datetime import datetime
from itertools import permutations
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import shared_fixtures

# The fixture `client`: the hub over a signed Jira source and a mocked Jira API (its payload tests').
from tests.test_jira_webhooks_real import (
    CATEGORY,
    SOURCE,
    _post,
    client,  # noqa: F401
)

LIFE = [
    "webhook-jira_issue_created.json",
    "webhook-jira_issue_updated-status-in-progress.json",
    "webhook-jira_issue_updated-description-edited.json",  # no status change: adds nothing
    "webhook-jira_issue_updated-resolved-status-and-resolution.json",
    "webhook-jira_issue_updated-reopened.json",
]


def _payloads() -> list[dict[str, Any]]:
    return [json.loads((shared_fixtures("jira") / name).read_text()) for name in LIFE]


def _expected(payloads: list[dict[str, Any]]) -> list[tuple[datetime, str, str, str | None]]:
    """(at, to category, to name, from name) of every delivery whose changelog changes the status."""
    out = []
    for payload in payloads:
        fields = payload["issue"]["fields"]
        for change in payload["changelog"]["items"]:
            if change.get("fieldId") == "status":
                assert change["toString"] == fields["status"]["name"]  # the delivery's own state
                at = datetime.strptime(fields["updated"], "%Y-%m-%dT%H:%M:%S.%f%z")
                category = CATEGORY[fields["status"]["statusCategory"]["key"]]
                out.append((at, category, change["toString"], change.get("fromString")))
    return sorted(out)


def _history(hub: TestClient, issue_id: str) -> dict[str, Any]:
    response = hub.get(f"/v1/items/{SOURCE}:{issue_id}/history")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _facts(doc: dict[str, Any]) -> list[tuple[datetime, str, str, str | None]]:
    return [
        (datetime.fromisoformat(t["at"]), t["to_category"], t["to_name"], t["from_name"]) for t in doc["transitions"]
    ]


def test_webhook_changelogs_become_transitions_with_jiras_times(client: TestClient) -> None:  # noqa: F811
    payloads = _payloads()
    issue_id = payloads[0]["issue"]["id"]
    assert {p["issue"]["id"] for p in payloads} == {issue_id}  # one issue's life
    for n, payload in enumerate(payloads):
        _post(client, payload, f"life-{n}")
    doc = _history(client, issue_id)
    expected = _expected(payloads)
    assert len(expected) == 4
    assert _facts(doc) == expected
    # The delivery's changelog is the better source for each change the hub also observed.
    assert [t["source"] for t in doc["transitions"]] == ["webhook"] * 4
    started = next(at for at, category, _, _ in expected if category == "in_progress")
    assert doc["start"] == "seen" and datetime.fromisoformat(doc["started_at"]) == started
    assert doc["reopened"] is True and doc["done_at"] is None  # reopened: not done now


@pytest.mark.parametrize("order", list(permutations(range(4)))[::5])
def test_any_delivery_order_or_a_replay_gives_the_same_history(client: TestClient, order: tuple[int, ...]) -> None:  # noqa: F811
    payloads = [p for n, p in enumerate(_payloads()) if n != 2]
    issue_id = payloads[0]["issue"]["id"]
    for n in order:
        _post(client, payloads[n], f"shuffled-{n}")
    for n in order[::-1]:
        _post(client, payloads[n], f"replayed-{n}")  # new delivery ids: applied again
    assert _facts(_history(client, issue_id)) == _expected(payloads)
