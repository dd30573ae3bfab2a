"""`Normaliser.carried_transitions` skips its lookups when no entry can state a status change
(hub/normalise.py `_jira_carried`): the skip must never drop a fact the full readers find."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from hub.flow.history import Transition
from hub.flow.jira import (
    own_status_fallback,
    resolution_resolver,
    status_resolver,
    transitions_from_issue,
    transitions_from_webhook,
)
from hub.normalise import Normaliser
from tests.conftest import shared_fixtures

CONTEXT = {"source": "acme-jira", "tool": "jira", "base_url": "https://acme.atlassian.net"}


def webhooks() -> dict[str, dict[str, Any]]:
    """Every real Jira issue webhook payload (with an issue to map)."""
    loaded = {
        path.name: json.loads(path.read_text()) for path in sorted(shared_fixtures("jira").glob("webhook-*.json"))
    }
    return {name: p for name, p in loaded.items() if "updated" in ((p.get("issue") or {}).get("fields") or {})}


def unskipped(normaliser: Normaliser, issue: dict[str, Any], delivery: dict[str, Any] | None) -> list[Transition]:
    """What the readers give without the skip: resolvers built, both readers run."""
    item = normaliser.map(issue)
    resolve = own_status_fallback(status_resolver(normaliser.mapper, [issue["fields"]["status"]]), item)
    resolution = resolution_resolver(normaliser.mapper)
    facts = list(transitions_from_issue(item.id, issue, resolve, resolution=resolution).transitions)
    if delivery is not None:
        facts += transitions_from_webhook(item.id, delivery, resolve, resolution=resolution).transitions
    return facts


@pytest.fixture(scope="module")
def normaliser() -> Normaliser:
    return Normaliser("jira", CONTEXT, {})


@pytest.mark.parametrize("name", sorted(webhooks()))
def test_carried_equals_the_full_readers_on_real_webhooks(normaliser: Normaliser, name: str) -> None:
    payload = webhooks()[name]
    item = normaliser.map(payload["issue"])
    assert normaliser.carried_transitions([item], payload) == unskipped(normaliser, payload["issue"], payload)


def test_status_named_by_label_only_still_gives_its_fact(normaliser: Normaliser) -> None:
    """Jira Server sends changelog items with `field` ("Status") and no `fieldId`."""
    payload = copy.deepcopy(webhooks()["webhook-jira_issue_updated-status-in-progress.json"])
    for entry in payload["changelog"]["items"]:
        del entry["fieldId"]
        entry["field"] = "Status"
    item = normaliser.map(payload["issue"])
    facts = normaliser.carried_transitions([item], payload)
    assert [(f.from_name, f.to_name) for f in facts] == [("To Do", "In Progress")]


def test_record_histories_kept_when_the_delivery_names_no_status(normaliser: Normaliser) -> None:
    """A record carrying `changelog.histories` states its facts whatever its delivery says."""
    payload = copy.deepcopy(webhooks()["webhook-jira_issue_updated-status-in-progress.json"])
    issue = payload["issue"]
    issue["changelog"] = {"histories": [{**payload["changelog"], "created": issue["fields"]["updated"]}]}
    payload["changelog"]["items"] = [{"field": "summary", "fieldtype": "jira", "fieldId": "summary"}]
    item = normaliser.map(issue)
    facts = normaliser.carried_transitions([item], payload)
    assert [(f.from_name, f.to_name) for f in facts] == [("To Do", "In Progress")]
    assert facts == unskipped(normaliser, issue, payload)
