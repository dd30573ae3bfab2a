"""The demo organisation (hub/demo/org.py) and its loading into the fakes (hub/demo/fakes.py):
coherent links, people across tools, six months of history, determinism."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from hub.demo.fakes import TOOLS, load_fakes
from hub.demo.org import HISTORY_DAYS, Org, build_org

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def org() -> Org:
    return build_org(7, NOW)


def test_every_link_names_an_item_of_the_organisation(org: Org) -> None:
    refs = org.by_ref()
    assert len(refs) == len(org.items), "refs are unique"
    for item in org.items:
        targets = [item.parent, item.duplicate_of, *item.implemented_by, *item.blocked_by]
        for target in filter(None, targets):
            assert target in refs, f"{item.ref} names {target}, which does not exist"
        if item.parent:
            parent = refs[item.parent]
            assert parent.tool == item.tool, "a parent is in the same tool"
            assert parent.created < item.created, "a tool has the parent before the child"


def test_roadmap_rolls_up_across_tools(org: Org) -> None:
    refs = org.by_ref()
    features = [i for i in org.items if i.kind == "feature" and i.tool in ("productboard", "aha")]
    assert {f.tool for f in features} == {"productboard", "aha"}
    delivery_tools: set[str] = set()
    for feature in features:
        epics = [refs[r] for r in feature.implemented_by]
        assert [e.kind for e in epics] == ["epic"] and epics[0].tool == "jira", feature.title
        epic = epics[0]
        stories = [i for i in org.items if i.parent == epic.ref]
        assert stories and all(s.tool == "jira" for s in stories)
        implementers = [refs[r] for r in epic.implemented_by]
        assert implementers, f"{epic.title} has engineering work in a team's tool"
        delivery_tools |= {i.tool for i in implementers}
    assert delivery_tools == {"github", "linear", "gitlab", "redmine"}
    # Some delivery work belongs to no roadmap item (the rollup's "uncovered" list).
    covered = {r for i in org.items for r in i.implemented_by} | {i.ref for i in org.items if i.parent}
    uncovered = [i for i in org.items if i.kind in ("bug", "task") and i.ref not in covered]
    assert len(uncovered) > 20


def test_people_work_across_tools_under_one_email(org: Org) -> None:
    tools_of: dict[str, set[str]] = {}
    for item in org.items:
        for person in filter(None, (item.assignee, item.reporter)):
            tools_of.setdefault(person.email, set()).add(item.tool)
    assert len({p.email for p in org.people}) == len(org.people)
    assert all(email.endswith("@northwind.example") for email in tools_of)
    assert sum(len(tools) >= 3 for tools in tools_of.values()) >= 5


def test_history_spans_about_six_months_and_ends_before_now(org: Org) -> None:
    assert min(i.created for i in org.items) <= NOW - timedelta(days=HISTORY_DAYS - 20)
    assert max(i.updated for i in org.items) <= NOW
    assert all(i.created < i.updated for i in org.items)
    done = [i for i in org.items if i.category == "done" and i.kind in ("story", "task", "bug")]
    months = Counter((i.updated.year, i.updated.month) for i in done)
    assert len(months) >= 5, f"work was finished over the months, not at once: {months}"
    categories = Counter(i.category for i in org.items)
    assert set(categories) == {"backlog", "todo", "in_progress", "done", "cancelled"}
    open_items = [i for i in org.items if i.category in ("todo", "in_progress")]
    assert any(i.due and i.due < NOW.date() for i in open_items), "some open items are past due"
    assert any(i.blocked_by for i in org.items), "some items are blocked"
    assert any(i.reopened for i in org.items)
    assert any(i.rice and "confidence" not in i.rice for i in org.items if i.kind == "feature"), "missing RICE input"


def test_size_is_realistic_and_fast_to_sync(org: Org) -> None:
    counts = Counter(i.tool for i in org.items)
    assert set(counts) == set(TOOLS)
    assert 300 <= len(org.items) <= 1500


def test_same_seed_same_organisation_other_seed_another() -> None:
    first, again, other = build_org(3, NOW), build_org(3, NOW), build_org(4, NOW)
    assert [asdict(i) for i in first.items] == [asdict(i) for i in again.items]
    assert [asdict(i) for i in first.items] != [asdict(i) for i in other.items]


def test_build_org_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        build_org(1, datetime(2026, 1, 1))


def test_loaded_fakes_hold_every_item_in_its_container(org: Org) -> None:
    urls = {tool: f"http://127.0.0.1:{9000 + k}" for k, tool in enumerate(TOOLS)}
    demo = load_fakes(org, urls)
    assert set(demo.placed) == set(org.by_ref())
    for tool in TOOLS:
        assert len(demo.fakes[tool].ids()) == len(org.of_tool(tool)), tool
    for item in org.items:
        placed = demo.placed[item.ref]
        record = demo.fakes[item.tool].record(placed.native_id)
        assert record is not None, item.ref
        if item.tool == "jira":
            assert placed.key.startswith(item.container + "-")
            assert record["fields"]["summary"] == item.title
            assert datetime.fromisoformat(record["fields"]["updated"]) == item.updated
        elif item.tool == "github":
            assert placed.key.startswith(item.container + "#")
            assert record["updated_at"] == item.updated.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif item.tool == "gitlab":
            assert placed.key.startswith(item.container + "#")
    jira = demo.fakes["jira"]
    epic = next(i for i in org.items if i.kind == "epic" and i.implemented_by)
    links = jira.remote_links(demo.native_id(epic.ref))
    assert [link["object"]["url"] for link in links] == [demo.placed[r].url for r in epic.implemented_by]
    assert {link["relationship"] for link in links} == {"is implemented by"}
    # Reopenings show in the histories of the tools whose fakes can tell one.
    github = demo.fakes["github"]
    for item in org.of_tool("github"):
        events = [e["event"] for e in github.events(demo.native_id(item.ref))]
        assert ("reopened" in events) == item.reopened, (item.ref, events)


def test_each_blocked_feature_waits_on_an_open_issue_of_the_other_project(org: Org) -> None:
    refs = org.by_ref()
    blocked_epics = [i for i in org.items if i.kind == "epic" and "blocked" in i.labels]
    assert blocked_epics
    for epic in blocked_epics:
        waiting = [i for i in org.items if i.parent == epic.ref and i.blocked_by]
        assert waiting, epic.title
        blocker = refs[waiting[0].blocked_by[0]]
        assert blocker.container != epic.container and blocker.category in ("todo", "in_progress")
        assert waiting[0].category in ("todo", "in_progress")
