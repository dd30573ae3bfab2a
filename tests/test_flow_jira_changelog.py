"""Jira changelogs -> transitions, on every real Jira payload in ../shared/fixtures/jira that has one.

Expected values are read from each payload with what is written here (the status names of
Jira's default workflow and their categories, Python's own ISO parser), not by re-running
hub.flow.jira, so a wrong field, time or category shows up as a mismatch.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.flow.history import TransitionSource, build_history
from hub.flow.jira import (
    StatusResolver,
    resolution_resolver,
    status_resolver,
    transitions_from_histories,
    transitions_from_issue,
    transitions_from_webhook,
)
from hub.schema import StatusCategory as C
from mappings import mapper_for
from tests.conftest import shared_fixtures

CONTEXT = {"source": "acme-jira", "tool": "jira", "base_url": "https://acme.atlassian.net"}
DEFAULT_WORKFLOW = {"To Do": C.todo, "In Progress": C.in_progress, "Done": C.done}


def payloads() -> dict[str, Any]:
    """Every JSON object payload (the field catalog, a list, is not an issue or an event)."""
    loaded = {path.name: json.loads(path.read_text()) for path in sorted(shared_fixtures("jira").glob("*.json"))}
    return {name: payload for name, payload in loaded.items() if isinstance(payload, dict)}


def site_statuses(all_payloads: dict[str, Any]) -> list[dict[str, Any]]:
    """The statuses the real payloads show on their issues (id, name, statusCategory): what
    `GET /rest/api/3/status` would list for these sites."""
    seen = {}
    for payload in all_payloads.values():
        status = ((payload.get("issue") or {}).get("fields") or {}).get("status")
        if status:
            seen[status["id"]] = status
    return list(seen.values())


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    return payloads()


@pytest.fixture(scope="module")
def resolve(real: dict[str, Any]) -> StatusResolver:
    return status_resolver(mapper_for("jira", CONTEXT), site_statuses(real))


def status_items(changelog: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in changelog.get("items", []) if i.get("fieldId") == "status" or i.get("field") == "status"]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def changelog_carriers(payload: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Where a payload carries a changelog: a webhook's top-level one, an issue fetched with
    `expand=changelog` (alone or in a search envelope)."""
    if isinstance(payload.get("changelog"), dict) and "items" in payload["changelog"]:
        return [("webhook", payload)]
    issues = payload.get("issues") if isinstance(payload.get("issues"), list) else [payload]
    return [
        ("issue", issue)
        for issue in issues
        if isinstance(issue, dict) and "histories" in (issue.get("changelog") or {})
    ]


def test_every_real_changelog_becomes_its_status_transitions(real: dict[str, Any], resolve: StatusResolver) -> None:
    carriers = [(name, kind, obj) for name, payload in real.items() for kind, obj in changelog_carriers(payload)]
    assert carriers, "no Jira payload with a changelog found"
    with_status_change = []
    for name, kind, payload in carriers:
        if kind == "webhook":
            item_id = f"acme-jira:{payload['issue']['id']}"
            extracted = transitions_from_webhook(item_id, payload, resolve)
            # The tool's clock: the issue's `updated` in the same payload, never the hub's time.
            entries = [(utc(payload["issue"]["fields"]["updated"]), payload["changelog"])]
            source = TransitionSource.webhook
        else:
            item_id = f"acme-jira:{payload['id']}"
            extracted = transitions_from_issue(item_id, payload, resolve)
            entries = [(utc(entry["created"]), entry) for entry in payload["changelog"]["histories"]]
            source = TransitionSource.changelog
        expected = [(when, entry, raw) for when, entry in entries for raw in status_items(entry)]
        assert extracted.unresolved == (), name
        assert len(extracted.transitions) == len(expected), name
        for transition, (when, entry, raw) in zip(extracted.transitions, expected, strict=True):
            with_status_change.append(name)
            assert transition.item_id == item_id
            assert transition.at == when, name
            assert transition.to_name == raw["toString"]
            assert transition.to_category is DEFAULT_WORKFLOW[raw["toString"]]
            assert transition.from_name == raw["fromString"]
            assert transition.from_category is (DEFAULT_WORKFLOW[raw["fromString"]] if raw["fromString"] else None)
            assert transition.source is source
            assert transition.native_id == str(entry["id"])
    # Creation (Status: none -> To Do), start, resolution and reopening are all among them.
    assert {
        "webhook-jira_issue_created.json",
        "webhook-jira_issue_updated-status-in-progress.json",
        "webhook-jira_issue_updated-resolved-status-and-resolution.json",
        "webhook-jira_issue_updated-reopened.json",
    } <= set(with_status_change)


def test_real_deliveries_of_one_issue_make_its_history_in_any_order(
    real: dict[str, Any], resolve: StatusResolver
) -> None:
    tes_41 = [p for p in real.values() if (p.get("issue") or {}).get("key") == "TES-41" and "changelog" in p]
    facts = [t for p in tes_41 for t in transitions_from_webhook("acme-jira:10040", p, resolve).transitions]
    history = build_history("acme-jira:10040", facts)
    # Jira's times are -08:00: 19:01:52.971 on Feb 15 is 03:01:52.971 UTC on Feb 16.
    assert [(t.at, t.to_category) for t in history.transitions] == [
        (datetime(2019, 2, 16, 3, 1, 52, 971000, tzinfo=UTC), C.todo),
        (datetime(2019, 2, 16, 3, 14, 22, 2000, tzinfo=UTC), C.in_progress),
        (datetime(2019, 2, 16, 3, 15, 40, 477000, tzinfo=UTC), C.done),
        (datetime(2019, 2, 16, 3, 17, 6, 501000, tzinfo=UTC), C.todo),
    ]
    assert history.started_at == datetime(2019, 2, 16, 3, 14, 22, 2000, tzinfo=UTC)
    assert history.reopened is True
    assert history.done_at is None
    assert history.done_entries == (datetime(2019, 2, 16, 3, 15, 40, 477000, tzinfo=UTC),)
    assert build_history("acme-jira:10040", [*reversed(facts), *facts]) == history


def test_backfilled_changelog_and_webhook_are_one_change(real: dict[str, Any], resolve: StatusResolver) -> None:
    payload = real["webhook-jira_issue_updated-status-in-progress.json"]
    # The same change as `GET /issue/{key}?expand=changelog` returns it: one history entry
    # stamped `created` with the time Jira also wrote into the issue's `updated`.
    issue = {
        "id": payload["issue"]["id"],
        "changelog": {
            "startAt": 0,
            "maxResults": 100,
            "total": 1,
            "histories": [
                {
                    "id": payload["changelog"]["id"],
                    "created": payload["issue"]["fields"]["updated"],
                    "items": payload["changelog"]["items"],
                }
            ],
        },
    }
    backfilled = transitions_from_issue("acme-jira:10040", issue, resolve).transitions
    delivered = transitions_from_webhook("acme-jira:10040", payload, resolve).transitions
    assert [t.identity for t in backfilled] == [t.identity for t in delivered]
    history = build_history("acme-jira:10040", [*delivered, *backfilled, *delivered])
    assert len(history.transitions) == 1
    assert history.transitions[0].source is TransitionSource.changelog


def test_changelog_page_without_status_changes_gives_none(real: dict[str, Any], resolve: StatusResolver) -> None:
    page = real["openapi-example-GET-rest-api-3-issue-changelog-200.json"]
    extracted = transitions_from_histories("acme-jira:1", page["values"], resolve)
    assert extracted.transitions == ()
    assert extracted.unresolved == ()


def test_history_entry_time_is_its_created(resolve: StatusResolver) -> None:
    entry = {
        "id": "10001",
        "created": "2026-03-02T10:15:00.000+0100",
        "items": [
            {
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": "10001",
                "fromString": "To Do",
                "to": "3",
                "toString": "In Progress",
            }
        ],
    }
    (transition,) = transitions_from_histories("acme-jira:7", [entry], resolve).transitions
    assert transition.at == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)
    assert (transition.from_category, transition.to_category) == (C.todo, C.in_progress)
    assert transition.source is TransitionSource.changelog


def test_webhook_without_updated_uses_the_delivery_timestamp(real: dict[str, Any], resolve: StatusResolver) -> None:
    payload = copy.deepcopy(real["webhook-jira_issue_updated-status-in-progress.json"])
    del payload["issue"]["fields"]["updated"]
    (transition,) = transitions_from_webhook("acme-jira:10040", payload, resolve).transitions
    assert transition.at == datetime.fromtimestamp(payload["timestamp"] / 1000, tz=UTC)


def test_a_not_done_resolution_makes_the_move_to_done_cancelled(real: dict[str, Any], resolve: StatusResolver) -> None:
    payload = copy.deepcopy(real["webhook-jira_issue_updated-resolved-status-and-resolution.json"])
    for item in payload["changelog"]["items"]:
        if item["field"] == "resolution":
            item["toString"] = "Won't Do"
    mapper = mapper_for("jira", CONTEXT)
    (transition,) = transitions_from_webhook(
        "acme-jira:10040", payload, resolve, resolution=resolution_resolver(mapper)
    ).transitions
    assert (transition.to_name, transition.to_category) == ("Done", C.cancelled)
    original = real["webhook-jira_issue_updated-resolved-status-and-resolution.json"]
    (done,) = transitions_from_webhook(
        "acme-jira:10040", original, resolve, resolution=resolution_resolver(mapper)
    ).transitions
    assert done.to_category is C.done  # resolution "Done" forces nothing


def test_the_sources_overrides_and_name_table_win(real: dict[str, Any]) -> None:
    statuses = site_statuses(real)
    entry = {
        "id": "1",
        "created": "2026-03-02T10:00:00.000+0000",
        "items": [
            {
                "fieldId": "status",
                "field": "status",
                "from": "3",
                "fromString": "In Progress",
                "to": "10101",
                "toString": "In Review",
            }
        ],
    }
    plain = transitions_from_histories("acme-jira:7", [entry], status_resolver(mapper_for("jira", CONTEXT), statuses))
    assert plain.transitions == ()
    assert plain.unresolved == ("In Review",)  # not guessed: reported
    overridden = status_resolver(mapper_for("jira", CONTEXT, {"status": {"In Review": "in_progress"}}), statuses)
    (transition,) = transitions_from_histories("acme-jira:7", [entry], overridden).transitions
    assert transition.to_category is C.in_progress
    # The mapping's name table beats Jira's category: "Backlog" sits in Jira's "To Do" category.
    backlog = status_resolver(
        mapper_for("jira", CONTEXT), [{"id": "1", "name": "Backlog", "statusCategory": {"key": "new"}}]
    )
    assert backlog("Backlog", "1") is C.backlog
    assert backlog(None, "1") is C.todo  # by id alone: the category


@pytest.mark.parametrize("path", ["webhook-comment_created.json", "webhook-jira_issue_deleted.json"])
def test_payloads_without_a_changelog_give_nothing(real: dict[str, Any], resolve: StatusResolver, path: str) -> None:
    assert transitions_from_webhook("acme-jira:1", real[path], resolve).transitions == ()
