"""Backfilled status history: each tool's raw history -> transitions (`hub.flow.extract`).

Items are real payloads from ../shared/fixtures mapped with the tool's mapping; history
records have the shapes the tools' docs give (Jira's changelog page, Linear's IssueHistory,
GitLab's resource state events, GitHub's issue events), with times written out here so each
expected time and category is stated, not recomputed by the code under test.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.registry import available
from hub.flow.extract import READERS, history_transitions
from hub.flow.history import Transition, TransitionSource, build_history, canonical_transitions
from hub.flow.jira import status_resolver, transitions_from_webhook
from hub.flow.linear import unresolved_states
from hub.schema import StatusCategory as C
from hub.schema import WorkItem
from mappings import Mapper, mapper_for
from tests.conftest import shared_fixtures


def fixture(path: str) -> Any:
    return json.loads((shared_fixtures() / path).read_text())


def mapper(tool: str, overrides: dict[str, Any] | None = None) -> Mapper:
    context = {"source": f"acme-{tool}", "tool": tool, "base_url": f"https://{tool}.example"}
    return mapper_for(tool, context, overrides)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def facts(transitions: list[Transition]) -> list[tuple[datetime, C | None, str | None, C, str | None]]:
    return [(t.at, t.from_category, t.from_name, t.to_category, t.to_name) for t in transitions]


def test_every_connector_with_history_has_a_reader() -> None:
    with_history = {tool for tool, cls in available().items() if cls.supports_history}
    assert with_history == set(READERS) == {"jira", "linear", "gitlab", "github"}
    item = mapper("github").map(fixture("github/webhook-issues-closed.json")["issue"])
    with pytest.raises(LookupError, match="redmine"):
        history_transitions("redmine", item, [], mapper("redmine"))


# ---------------------------------------------------------------- Jira


def jira_status_change(ident: str, created: str, old: tuple[str, str], new: tuple[str, str], *extra: Any) -> Any:
    status = {"field": "status", "fieldtype": "jira", "fieldId": "status"}
    change = {**status, "from": old[0], "fromString": old[1], "to": new[0], "toString": new[1]}
    return {"id": ident, "created": created, "items": [change, *extra]}


@pytest.fixture(scope="module")
def jira_webhook() -> dict[str, Any]:
    """A real `jira:issue_updated` delivery: To Do -> In Progress, issue updated at
    2019-02-15T19:14:22.002-0800."""
    payload: dict[str, Any] = fixture("jira/webhook-jira_issue_updated-status-in-progress.json")
    return payload


def test_jira_changelog_entries_become_status_transitions_on_jiras_clock(jira_webhook: dict[str, Any]) -> None:
    jira_mapper = mapper("jira")
    item = jira_mapper.map(jira_webhook["issue"])
    assert (item.status.category, item.status.name) == (C.in_progress, "In Progress")
    labels = {"field": "labels", "fieldtype": "jira", "fieldId": "labels", "fromString": "", "toString": "ux"}
    to_do = {"id": "10001", "name": "To Do", "statusCategory": {"id": 2, "key": "new", "name": "To Do"}}
    page = [
        {"id": "10300", "created": "2019-02-14T09:00:00.000-0800", "items": [labels]},
        jira_status_change("10301", "2019-02-15T09:30:00.500-0800", ("10000", "Backlog"), ("10001", "To Do")),
        jira_status_change("10302", "2019-02-15T19:14:22.002-0800", ("10001", "To Do"), ("3", "In Progress")),
        # A status neither the mapping's name table nor a known status object places: left out.
        jira_status_change("10303", "2019-02-16T08:00:00.000-0800", ("3", "In Progress"), ("10400", "Peer Review")),
    ]
    unplaced = history_transitions("jira", item, page, jira_mapper)
    # Without the site's statuses "To Do" has no category: only the move into the issue's own
    # status ("In Progress", placed by its statusCategory) is kept, from an unknown category.
    assert facts(unplaced) == [(utc(2019, 2, 16, 3, 14, 22, 2_000), None, "To Do", C.in_progress, "In Progress")]
    for entry in page[1:3]:  # as JiraConnector.fetch_history attaches the site's statuses
        entry["_opshub"] = {"statuses": [to_do]}
    transitions = history_transitions("jira", item, page, jira_mapper)
    assert facts(transitions) == [
        (utc(2019, 2, 15, 17, 30, 0, 500_000), C.backlog, "Backlog", C.todo, "To Do"),
        # "In Progress" is placed by the issue's own status object (statusCategory indeterminate).
        (utc(2019, 2, 16, 3, 14, 22, 2_000), C.todo, "To Do", C.in_progress, "In Progress"),
    ]
    assert [t.native_id for t in transitions] == ["10301", "10302"]
    assert {t.source for t in transitions} == {TransitionSource.changelog}
    # The webhook's changelog and the backfilled entry are one change: one fact, the changelog's.
    resolve = status_resolver(jira_mapper, [jira_webhook["issue"]["fields"]["status"]])
    pushed = transitions_from_webhook(item.id, jira_webhook, resolve).transitions
    assert len(pushed) == 1
    merged = canonical_transitions([*pushed, *transitions])
    assert [(t.at, t.to_name, t.source) for t in merged] == [
        (utc(2019, 2, 15, 17, 30, 0, 500_000), "To Do", TransitionSource.changelog),
        (utc(2019, 2, 16, 3, 14, 22, 2_000), "In Progress", TransitionSource.changelog),
    ]


def test_jira_current_status_is_placed_without_the_raw_record(jira_webhook: dict[str, Any]) -> None:
    """A stored item may come without its raw payload: its mapped status still files its name."""
    jira_mapper = mapper("jira")
    item = jira_mapper.map(jira_webhook["issue"]).model_copy(update={"raw": None})
    page = [jira_status_change("1", "2019-02-15T19:14:22.002-0800", ("10001", "To Do"), ("3", "In Progress"))]
    (only,) = history_transitions("jira", item, page, jira_mapper)
    assert (only.to_category, only.from_category) == (C.in_progress, None)  # "To Do" alone: unplaced


def test_jira_done_with_a_wont_do_resolution_is_cancelled(jira_webhook: dict[str, Any]) -> None:
    jira_mapper = mapper("jira")
    item = jira_mapper.map(jira_webhook["issue"])
    resolution = {"field": "resolution", "fieldtype": "jira", "fieldId": "resolution", "from": None}
    page = [
        jira_status_change(
            "20",
            "2019-03-01T12:00:00.000+0000",
            ("3", "In Progress"),
            ("10002", "Won't Do"),
        ),
        jira_status_change(
            "21",
            "2019-03-02T12:00:00.000+0000",
            ("10002", "Won't Do"),
            ("10003", "Backlog"),
        ),
    ]
    transitions = history_transitions("jira", item, page, jira_mapper)
    assert [(t.to_category, t.to_name) for t in transitions] == [(C.cancelled, "Won't Do"), (C.backlog, "Backlog")]
    closing = jira_status_change(
        "22",
        "2019-03-03T12:00:00.000+0000",
        ("10003", "Backlog"),
        ("3", "In Progress"),
        {**resolution, "to": "10001", "toString": "Won't Do"},
    )
    (moved,) = history_transitions("jira", item, [closing], jira_mapper)
    assert moved.to_category is C.in_progress  # a "not done" resolution only overrules a done status


def test_jira_published_changelog_page_without_status_changes_gives_no_transition(
    jira_webhook: dict[str, Any],
) -> None:
    page = fixture("jira/openapi-example-GET-rest-api-3-issue-changelog-200.json")["values"]
    item = mapper("jira").map(jira_webhook["issue"])
    assert history_transitions("jira", item, page, mapper("jira")) == []


# ---------------------------------------------------------------- Linear


def linear_state(name: str, kind: str) -> dict[str, Any]:
    return {"id": f"state-{name.lower().replace(' ', '-')}", "name": name, "type": kind}


def linear_entry(ident: str, created: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> Any:
    return {"id": ident, "createdAt": created, "fromState": old, "toState": new}


@pytest.fixture(scope="module")
def linear_item() -> WorkItem:
    """A real 2021 Issue webhook's data (state Backlog), mapped."""
    return mapper("linear").map(fixture("linear/webhook-korosuke613-Issue-createIssue.json")["data"])


def test_linear_history_state_changes_become_transitions(linear_item: WorkItem) -> None:
    backlog, todo = linear_state("Backlog", "backlog"), linear_state("Todo", "unstarted")
    doing, done = linear_state("In Progress", "started"), linear_state("Done", "completed")
    entries = [
        linear_entry("h1", "2021-01-30T11:19:40.000Z", None, None),  # e.g. a title change
        linear_entry("h2", "2021-02-01T09:00:00.125Z", backlog, todo),
        linear_entry("h3", "2021-02-03T14:30:00.000Z", todo, doing),
        linear_entry("h4", "2021-02-05T17:45:59.999Z", doing, done),
    ]
    transitions = history_transitions("linear", linear_item, entries, mapper("linear"))
    assert facts(transitions) == [
        (utc(2021, 2, 1, 9, 0, 0, 125_000), C.backlog, "Backlog", C.todo, "Todo"),
        (utc(2021, 2, 3, 14, 30), C.todo, "Todo", C.in_progress, "In Progress"),
        (utc(2021, 2, 5, 17, 45, 59, 999_000), C.in_progress, "In Progress", C.done, "Done"),
    ]
    history = build_history(linear_item.id, transitions)
    assert (history.started_at, history.done_at) == (utc(2021, 2, 3, 14, 30), utc(2021, 2, 5, 17, 45, 59, 999_000))


def test_linear_state_names_in_the_sources_mapping_win_over_the_state_type(linear_item: WorkItem) -> None:
    ready, odd = linear_state("Ready", "unstarted"), {"id": "s9", "name": "Parked", "type": "someday"}
    entries = [
        linear_entry("h1", "2021-02-01T09:00:00.000Z", None, ready),
        linear_entry("h2", "2021-02-02T09:00:00.000Z", ready, odd),
    ]
    default = history_transitions("linear", linear_item, entries, mapper("linear"))
    overridden = history_transitions(
        "linear", linear_item, entries, mapper("linear", {"status": {"Ready": "in_progress"}})
    )
    assert [t.to_category for t in default] == [C.todo]
    assert [t.to_category for t in overridden] == [C.in_progress]
    assert unresolved_states(entries, mapper("linear")) == ["Parked"]


# ---------------------------------------------------------------- GitLab


def gitlab_event(ident: int, created: str, state: str, issue_id: int = 76) -> dict[str, Any]:
    """A resource state event as https://docs.gitlab.com/api/resource_state_events/ shows it."""
    user = {"id": 1, "name": "Administrator", "username": "root", "state": "active"}
    return {
        "id": ident,
        "user": user,
        "created_at": created,
        "resource_type": "Issue",
        "resource_id": issue_id,
        "state": state,
    }


@pytest.fixture(scope="module")
def gitlab_issue() -> dict[str, Any]:
    """GitLab's documented issue (opened, labels foo and bar, created 2016-01-04T15:31:51.081Z)."""
    issues = fixture("gitlab/rest-GET-issues.docs-example.json")
    return dict(issues[0] if isinstance(issues, list) else issues)


def test_gitlab_state_events_become_transitions(gitlab_issue: dict[str, Any]) -> None:
    gitlab_mapper = mapper("gitlab")
    item = gitlab_mapper.map(gitlab_issue)
    events = [
        gitlab_event(142, "2016-01-04T15:31:51.081Z", "opened"),
        gitlab_event(143, "2016-01-05T10:00:00.000Z", "closed"),
        gitlab_event(144, "2016-01-06T08:15:30.250Z", "reopened"),
    ]
    transitions = history_transitions("gitlab", item, events, gitlab_mapper)
    assert facts(transitions) == [
        (utc(2016, 1, 4, 15, 31, 51, 81_000), None, None, C.todo, "opened"),
        (utc(2016, 1, 5, 10), C.todo, "opened", C.done, "closed"),
        (utc(2016, 1, 6, 8, 15, 30, 250_000), C.done, "closed", C.todo, "opened"),
    ]
    assert build_history(item.id, transitions).reopened


def test_gitlab_final_closing_takes_the_closed_label_the_mapping_reads(gitlab_issue: dict[str, Any]) -> None:
    """Closed with "won't do": the item maps to cancelled, so its final closing is the cancel;
    an earlier closing (reopened since) stays done, as the `state` table says."""
    gitlab_mapper = mapper("gitlab")
    closed = {**gitlab_issue, "state": "closed", "labels": ["won't do"], "closed_at": "2016-01-08T09:00:00.000Z"}
    item = gitlab_mapper.map(closed)
    assert item.status.category is C.cancelled
    events = [
        gitlab_event(150, "2016-01-05T10:00:00.000Z", "closed"),
        gitlab_event(151, "2016-01-06T10:00:00.000Z", "reopened"),
        gitlab_event(152, "2016-01-08T09:00:00.000Z", "closed"),
    ]
    transitions = history_transitions("gitlab", item, events, gitlab_mapper)
    assert [(t.at, t.to_category, t.to_name) for t in transitions] == [
        (utc(2016, 1, 5, 10), C.done, "closed"),
        (utc(2016, 1, 6, 10), C.todo, "opened"),
        (utc(2016, 1, 8, 9), C.cancelled, "closed"),
    ]
    assert transitions[0].from_category is None  # the labels before the first closing are unknown
    assert build_history(item.id, transitions).done_at is None  # cancelled is never a completion


def test_gitlab_backfill_in_any_order_or_twice_gives_one_history(gitlab_issue: dict[str, Any]) -> None:
    gitlab_mapper = mapper("gitlab")
    item = gitlab_mapper.map(gitlab_issue)
    events = [
        gitlab_event(160 + k, f"2016-02-{k + 1:02d}T12:00:00.000Z", "closed" if k % 2 == 0 else "reopened")
        for k in range(6)
    ]
    once = build_history(item.id, history_transitions("gitlab", item, events, gitlab_mapper))
    rng = random.Random(9)
    for _ in range(20):
        shuffled = rng.sample(events, len(events))
        twice = history_transitions("gitlab", item, shuffled, gitlab_mapper) * 2
        assert build_history(item.id, twice).transitions == once.transitions


# ---------------------------------------------------------------- GitHub


def github_event(ident: int, kind: str, created: str, reason: str | None = None) -> dict[str, Any]:
    """An issue event as https://docs.github.com/en/rest/issues/events#list-issue-events shows it."""
    event: dict[str, Any] = {
        "id": ident,
        "node_id": f"IE_{ident}",
        "url": f"https://api.github.com/repos/octocat/Hello-World/issues/events/{ident}",
        "actor": {"login": "octocat", "id": 1},
        "event": kind,
        "commit_id": None,
        "commit_url": None,
        "created_at": created,
        "performed_via_github_app": None,
    }
    if kind in ("closed", "reopened"):
        event["state_reason"] = reason
    return event


def test_github_closing_without_a_reason_takes_the_items_mapped_category() -> None:
    """A real 2017 `closed` delivery's issue (no state_reason yet): closed at 2017-10-19T16:35:13Z."""
    github_mapper = mapper("github")
    item = github_mapper.map(fixture("github/webhook-issues-closed.json")["issue"])
    events = [
        github_event(1, "labeled", "2017-10-16T16:30:00Z"),
        github_event(2, "assigned", "2017-10-17T09:00:00Z"),
        github_event(3, "closed", "2017-10-19T16:35:13Z"),
    ]
    transitions = history_transitions("github", item, events, github_mapper)
    assert facts(transitions) == [(utc(2017, 10, 19, 16, 35, 13), None, "open", C.done, "closed")]
    assert build_history(item.id, transitions).done_at == item.completed_at == utc(2017, 10, 19, 16, 35, 13)


def test_github_state_reason_decides_done_or_cancelled_as_the_mapping_says() -> None:
    """A real 2021 `reopened` delivery's issue (open now): closed as not planned, then reopened."""
    github_mapper = mapper("github")
    item = github_mapper.map(fixture("github/webhook-issues-reopened.json")["issue"])
    events = [
        github_event(10, "closed", "2021-09-01T08:00:00Z", "not_planned"),
        github_event(11, "reopened", "2021-10-11T16:40:56Z", "reopened"),
        github_event(12, "referenced", "2021-10-11T17:00:00Z"),
    ]
    transitions = history_transitions("github", item, events, github_mapper)
    assert facts(transitions) == [
        (utc(2021, 9, 1, 8), None, "open", C.cancelled, "closed: not_planned"),
        (utc(2021, 10, 11, 16, 40, 56), C.cancelled, "closed: not_planned", C.todo, "open"),
    ]
    done_when_duplicate = mapper("github", {"state_reason": {"not_planned": "done"}})
    remapped = history_transitions("github", item, events, done_when_duplicate)
    assert [t.to_category for t in remapped] == [C.done, C.todo]


# ---------------------------------------------------------------- properties

# Alternating closings and reopenings of one issue at distinct whole seconds (tools stamp
# events to the second or the millisecond), given as offsets from 2026-01-05.
EVENT_OFFSETS = st.lists(st.integers(0, 10_000_000), min_size=1, max_size=12, unique=True)


@settings(max_examples=60, deadline=None)
@given(offsets=EVENT_OFFSETS, order=st.randoms(use_true_random=False), repeat=st.integers(1, 3))
def test_state_event_backfill_replayed_in_any_order_or_repeatedly_gives_one_history(
    gitlab_issue: dict[str, Any], offsets: list[int], order: random.Random, repeat: int
) -> None:
    """GitLab and GitHub: whatever order a tool's pages come in and however often the same
    backfill runs, the history is the one read from the events in order once."""
    start = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
    times = [datetime.fromtimestamp(start + offset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for offset in sorted(offsets)]
    cases = [
        (
            "gitlab",
            mapper("gitlab").map(gitlab_issue),
            [gitlab_event(k, at, "closed" if k % 2 == 0 else "reopened") for k, at in enumerate(times)],
        ),
        (
            "github",
            mapper("github").map(fixture("github/webhook-issues-reopened.json")["issue"]),
            [github_event(k, "closed" if k % 2 == 0 else "reopened", at, "completed") for k, at in enumerate(times)],
        ),
    ]
    for tool, item, events in cases:
        once = build_history(item.id, history_transitions(tool, item, events, mapper(tool)))
        assert len(once.transitions) == len(events)
        assert [t.at for t in once.transitions] == sorted(t.at for t in once.transitions)
        assert all(t.from_category != t.to_category for t in once.transitions[1:])
        replayed = history_transitions(tool, item, order.sample(events * repeat, len(events) * repeat), mapper(tool))
        assert build_history(item.id, replayed).transitions == once.transitions
