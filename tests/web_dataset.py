"""A small, realistic dataset for the dashboard tests, stored through the real write path.

Four sources (Productboard features, Jira epics and stories, Linear and GitHub issues), the
features implemented by Jira epics, stories under the epics, Linear and GitHub issues that
implement an epic, a blocked story, uncovered GitHub issues, RICE inputs with gaps, and
status history: each item is applied once per status it went through (backlog -> in
progress -> done over several weeks), so the store records the changes as it does in a sync.

Times are relative to now, so the flow page's default period (the last 12 weeks) holds them.
`sources_config()` configures the same source names against an unreachable host: the
Overview can offer "Sync now" without any tool being reachable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.config import HubConfig, parse_config
from hub.schema import WorkItem
from hub.store import Store
from hub.store.items import utcnow
from hub.store.runs import RunStore

PB, JIRA, LINEAR, GH = "acme-pb", "acme-jira", "acme-linear", "acme-gh"
UNREACHABLE = "http://127.0.0.1:9"  # discard port: a sync fails fast, never leaves the machine


@dataclass
class DashboardDataset:
    now: datetime
    features: list[str] = field(default_factory=list)
    epics: list[str] = field(default_factory=list)
    delivery: list[str] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)
    blocked: str = ""


def sources_config() -> HubConfig:
    return parse_config(
        {
            "sources": {
                JIRA: {
                    "tool": "jira",
                    "base_url": UNREACHABLE,
                    "email": "ops@acme.example",
                    "api_token": "x",
                    "projects": ["ACME"],
                },
                LINEAR: {"tool": "linear", "base_url": UNREACHABLE, "api_key": "x", "teams": ["ENG"]},
                GH: {"tool": "github", "base_url": UNREACHABLE, "token": "x", "repositories": ["acme/web"]},
                PB: {"tool": "productboard", "base_url": UNREACHABLE, "token": "x"},
            }
        }
    )


def _item(source: str, tool: str, native_id: str, **fields: Any) -> dict[str, Any]:
    return {"source": source, "tool": tool, "native_id": native_id, **fields}


def seed_dashboard_dataset(store: Store, *, now: datetime | None = None, seed: int = 11) -> DashboardDataset:
    """Store the dataset (idempotent for the same `now`); returns the ids the tests look for."""
    now = now or utcnow()
    rng = random.Random(seed)
    start = now - timedelta(days=84)
    data = DashboardDataset(now=now)
    people = [
        {"native_id": "u1", "name": "Ada Lovelace", "email": "ada@acme.example"},
        {"native_id": "u2", "name": "Grace Hopper", "email": "grace@acme.example"},
        {"native_id": "u3", "name": "Alan Turing", "email": "alan@acme.example"},
    ]
    # versions[item index] = list of (updated_at, status category, status name)
    plans: list[tuple[dict[str, Any], list[tuple[datetime, str, str]]]] = []

    def plan(doc: dict[str, Any], created: datetime, path: list[tuple[str, str]], step_days: list[float]) -> None:
        versions, at = [], created
        for (category, name), gap in zip(path, [0.0, *step_days], strict=False):
            at = at + timedelta(days=gap)
            versions.append((min(at, now - timedelta(hours=1)), category, name))
        doc["created_at"] = created
        plans.append((doc, versions))

    epic_rice = [
        {"reach": 500, "impact": 2, "confidence": 0.9, "effort": 8},
        {"reach": 2000, "impact": 1, "confidence": 0.5, "effort": 13},
        {"reach": 150, "impact": 3, "confidence": 0.8, "effort": None},
    ]
    epics = []
    for n, title in enumerate(["Self-serve onboarding", "Usage-based billing", "Audit log export"], start=1):
        epic_id = f"{JIRA}:{10000 + n}"
        epics.append(epic_id)
        plan(
            _item(
                JIRA,
                "jira",
                str(10000 + n),
                key=f"ACME-{n}",
                kind="epic",
                title=title,
                url=f"https://acme.atlassian.net/browse/ACME-{n}",
                container={"id": "10000", "key": "ACME", "name": "Acme"},
                priority={"level": "high", "name": "High"},
                labels=["roadmap"],
                rice=epic_rice[n - 1],
            ),
            start,
            [("todo", "To Do"), ("in_progress", "In Progress")],
            [10],
        )
    data.epics = epics
    rice = [
        {"reach": 800, "impact": 2, "confidence": 0.8, "effort": 5},
        {"reach": 300, "impact": 3, "confidence": None, "effort": 8},
        {"reach": None, "impact": 1, "confidence": None, "effort": 3},
    ]
    for n, (title, epic) in enumerate(
        zip(["Onboarding wizard", "Pay as you go", "Export audit trail"], epics, strict=True), start=1
    ):
        feature_id = f"{PB}:feat-{n}"
        data.features.append(feature_id)
        plan(
            _item(
                PB,
                "productboard",
                f"feat-{n}",
                key=None,
                kind="feature",
                title=title,
                url=f"https://acme.productboard.com/feature-board/features/feat-{n}",
                links=[{"type": "implemented_by", "target_id": epic}],
                rice={k: v for k, v in rice[n - 1].items()},
                due_on=(now + timedelta(days=7 * n)).date(),
            ),
            start - timedelta(days=5),
            [("todo", "Candidate"), ("in_progress", "In progress")],
            [3],
        )
    story = 100
    for e, epic in enumerate(epics):
        for s in range(6):
            story += 1
            created = start + timedelta(days=rng.uniform(0, 40))
            fate = rng.random()
            if fate < 0.55:
                path, steps = (
                    [("backlog", "Backlog"), ("in_progress", "In Progress"), ("done", "Done")],
                    [rng.uniform(1, 10), rng.uniform(1, 15)],
                )
            elif fate < 0.8:
                path, steps = [("backlog", "Backlog"), ("in_progress", "In Progress")], [rng.uniform(5, 30)]
            else:
                path, steps = [("backlog", "Backlog"), ("todo", "Selected")], [rng.uniform(1, 5)]
            item_id = f"{JIRA}:{story}"
            data.delivery.append(item_id)
            plan(
                _item(
                    JIRA,
                    "jira",
                    str(story),
                    key=f"ACME-{story}",
                    kind=rng.choice(["story", "story", "task", "bug"]),
                    title=f"{['Wizard', 'Billing', 'Audit'][e]} step {s + 1}",
                    parent_id=epic,
                    url=f"https://acme.atlassian.net/browse/ACME-{story}",
                    container={"id": "10000", "key": "ACME", "name": "Acme"},
                    estimate={"value": rng.choice([1, 2, 3, 5, 8]), "unit": "points"},
                    assignees=[rng.choice(people)],
                    priority={"level": rng.choice(["urgent", "high", "medium", "low"])},
                    labels=rng.sample(["frontend", "backend", "api", "ux"], 2),
                ),
                created,
                path,
                steps,
            )
    data.blocked = f"{JIRA}:102"
    blockers = {data.blocked: [{"type": "blocked_by", "target_id": f"{JIRA}:101"}]}
    for n in range(1, 9):
        created = start + timedelta(days=rng.uniform(0, 60))
        done = n % 3 != 0
        path = [("todo", "Todo"), ("in_progress", "In Progress")] + ([("done", "Done")] if done else [])
        item_id = f"{LINEAR}:lin-{n}"
        data.delivery.append(item_id)
        plan(
            _item(
                LINEAR,
                "linear",
                f"lin-{n}",
                key=f"ENG-{n}",
                kind="task",
                title=f"API endpoint {n}",
                url=f"https://linear.app/acme/issue/ENG-{n}",
                container={"id": "team-eng", "key": "ENG", "name": "Engineering"},
                links=[{"type": "implements", "target_id": epics[n % 3]}],
                assignees=[people[n % 3]],
                estimate={"value": n % 4 + 1, "unit": "points"},
            ),
            created,
            path,
            [rng.uniform(1, 6), rng.uniform(2, 12)],
        )
    for n in range(1, 7):
        created = start + timedelta(days=rng.uniform(10, 70))
        item_id = f"{GH}:acme/web#{n}"
        links = [{"type": "implements", "target_id": epics[0]}] if n <= 2 else []
        (data.delivery if links else data.uncovered).append(item_id)
        plan(
            _item(
                GH,
                "github",
                f"acme/web#{n}",
                key=f"acme/web#{n}",
                kind="bug" if n % 2 else "task",
                title=f"Fix flaky {['login', 'signup', 'export', 'search', 'invoice', 'banner'][n - 1]}",
                url=f"https://github.com/acme/web/issues/{n}",
                container={"id": "acme/web", "key": "acme/web", "name": "acme/web"},
                links=links,
                labels=["bug"] if n % 2 else [],
            ),
            created,
            [("todo", "open"), ("done", "closed")] if n % 2 else [("todo", "open")],
            [rng.uniform(1, 9)],
        )
    # Apply version by version, in time order across items, as syncs would have seen them.
    events = [(at, i, v) for i, (_, versions) in enumerate(plans) for v, (at, _, _) in enumerate(versions)]
    for at, i, v in sorted(events):
        doc, versions = plans[i]
        _, category, name = versions[v]
        fields = dict(doc)
        fields["links"] = list(doc.get("links", [])) + blockers.get(f"{doc['source']}:{doc['native_id']}", [])
        fields["completed_at"] = at if category == "done" else None
        store.items.apply(
            [WorkItem.model_validate({**fields, "status": {"category": category, "name": name}, "updated_at": at})]
        )
    runs = RunStore(store.engine)
    for source in (PB, JIRA, LINEAR, GH):
        run_id = runs.start(source, "full")
        failed = source == LINEAR
        runs.finish(
            run_id,
            "failed" if failed else "succeeded",
            {"fetched": 0},
            None,
            error="linear: HTTP 401 Unauthorized (check api_key)" if failed else None,
        )
    return data
