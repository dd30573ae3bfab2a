"""End to end: four fake tools, synced through the SyncEngine, read through /v1/roadmap.

Fake Jira + fake GitHub + fake Productboard + fake Aha!, wired to their connectors in-process.
Roadmap features in Productboard and Aha! are linked to a Jira epic, to Jira stories and to
GitHub issues the ways the real tools and mappings link them:

- Productboard: its Jira integration's connections (no `jira_base_url` configured, so the
  links are the URNs `jira:PROJ-1`, `jira:PROJ-7`);
- Aha!: `integration_fields` of its Jira integration (one feature with the issue's URL, one
  with a key only -> the URN `jira:KEY`) and of its GitHub integration (issue URLs; the source
  turns GitHub on with the `aha_links` rule's `services` argument, a documented override).

Every figure asserted below is computed by hand in the comments, not by re-running the rollup.
Then a signed Jira `jira:issue_updated` webhook closes one story, and the next read moves the
features above it.

The state (store, fakes, API client) is shared by the module; the webhook test runs last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connectors.base import Connector
from fakes.aha import FakeAha
from fakes.common import asgi_transport
from fakes.github import FakeGitHub
from fakes.jira import CF_EPIC_LINK, CF_STORY_POINTS, FakeJira
from fakes.productboard import FakeProductboard
from hub.api.app import create_app
from hub.config import SourceDefinition, parse_config
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from hub.sync import SyncEngine
from tests.conformance.cases import CASES, WEBHOOK_SECRET
from tests.conftest import _reset

JIRA, GITHUB, PB, AHA = "acme-jira", "octo-gh", "acme-pb", "acme-aha"
NO_STATUS = {"backlog": 0, "todo": 0, "in_progress": 0, "done": 0, "cancelled": 0}


# ----------------------------------------------------------------------------- the tools' data


def _jira_status(name: str, category: str) -> dict[str, Any]:
    return {"id": name, "name": name, "statusCategory": {"key": category, "name": category}}


TODO = _jira_status("To Do", "new")
IN_PROGRESS = _jira_status("In Progress", "indeterminate")
IN_REVIEW = _jira_status("In Review", "indeterminate")
DONE = _jira_status("Done", "done")
CANCELLED = _jira_status("Cancelled", "done")


def _blocked_by(blocker: dict[str, Any]) -> dict[str, Any]:
    """An issuelinks entry as Jira shows it on the blocked issue (the blocker is its inwardIssue)."""
    return {
        "id": f"link-{blocker['id']}",
        "type": {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
        "inwardIssue": {"id": blocker["id"], "key": blocker["key"]},
    }


def _jira_issue(
    jira: FakeJira,
    summary: str,
    kind: str,
    status: dict[str, Any],
    *,
    points: float | None = None,
    epic: dict[str, Any] | None = None,
    blocked_by: dict[str, Any] | None = None,
    resolution: str | None = None,
) -> dict[str, Any]:
    """A new issue with every field that decides the rollup set (none left to the fake's dice)."""
    return jira.add(
        summary=summary,
        issuetype={"id": kind, "name": kind, "subtask": False, "hierarchyLevel": 1 if kind == "Epic" else 0},
        status=status,
        resolution={"id": resolution, "name": resolution} if resolution else None,
        parent={"id": epic["id"], "key": epic["key"]} if epic else None,
        issuelinks=[_blocked_by(blocked_by)] if blocked_by else [],
        **{CF_STORY_POINTS: points, CF_EPIC_LINK: None},
    )


@dataclass
class Scenario:
    store: Store
    client: TestClient
    jira: FakeJira
    github: FakeGitHub
    pb: FakeProductboard
    aha: FakeAha
    ids: dict[str, str] = field(default_factory=dict)  # short name -> hub id

    def roadmap(self) -> dict[str, dict[str, Any]]:
        response = self.client.get("/v1/roadmap")
        assert response.status_code == 200, response.text
        return {entry["item"]["id"]: entry for entry in response.json()["roadmap"]}

    def entry(self, name: str) -> dict[str, Any]:
        return self.roadmap()[self.ids[name]]

    def name(self, hub_id: str) -> str:
        return next((k for k, v in self.ids.items() if v == hub_id and k != "PROJ-1"), hub_id)

    def names(self, hub_ids: list[str]) -> set[str]:
        return {self.name(i) for i in hub_ids}

    def drain(self) -> int:
        runtime = self.client.app.state.runtime  # type: ignore[attr-defined]
        return int(self.client.portal.call(runtime.worker.drain))  # type: ignore[union-attr]


def _build(store: Store) -> tuple[Scenario, dict[str, Any], dict[str, Any]]:
    jira = FakeJira(0, projects=("PROJ",), time_zone="UTC")
    github = FakeGitHub(0, repositories=("octo-org/api",))
    pb = FakeProductboard(0)
    aha = FakeAha(0, jira_url=jira.base_url)

    # Jira: one epic with five children (mixed statuses, one cancelled, one unestimated), one
    # story outside the epic, and one done bug no roadmap item covers.
    epic = _jira_issue(jira, "Bulk export", "Epic", IN_PROGRESS)  # PROJ-1
    s2 = _jira_issue(jira, "Export CSV", "Story", DONE, points=3, epic=epic, resolution="Done")  # PROJ-2
    s3 = _jira_issue(jira, "Export XLSX", "Story", IN_PROGRESS, points=5, epic=epic)  # PROJ-3
    s4 = _jira_issue(jira, "Export schedule", "Story", TODO, points=2, epic=epic, blocked_by=s3)  # PROJ-4
    s5 = _jira_issue(jira, "Export to FTP", "Task", CANCELLED, points=8, epic=epic, resolution="Won't Do")  # PROJ-5
    s6 = _jira_issue(jira, "Export docs", "Bug", TODO, epic=epic)  # PROJ-6, no estimate
    s7 = jira.add()  # PROJ-7, filled in below once PROJ-8 (its blocker) exists
    b8 = _jira_issue(jira, "Old SAML bug", "Bug", DONE, points=1, resolution="Done")  # PROJ-8, uncovered
    s7 = jira.edit(
        s7["id"],
        summary="SAML login",
        issuetype={"id": "Story", "name": "Story", "subtask": False, "hierarchyLevel": 0},
        status=IN_REVIEW,
        resolution=None,
        parent=None,
        issuelinks=[_blocked_by(b8)],
        **{CF_STORY_POINTS: 8, CF_EPIC_LINK: None},
    )
    assert [i["key"] for i in (epic, s2, s3, s4, s5, s6, s7, b8)] == [f"PROJ-{n}" for n in range(1, 9)]

    # GitHub: one open issue, one closed as completed, one open issue nothing links to.
    g1 = github.add(title="SAML: IdP metadata", state="open", state_reason=None, closed_at=None, labels=[])
    g2 = github.add(
        title="SAML: ACS endpoint",
        state="closed",
        state_reason="completed",
        closed_at="2025-01-07T08:00:00Z",
        labels=[],
    )
    g3 = github.add(title="Flaky CI", state="open", state_reason=None, closed_at=None, labels=[])
    assert [g["html_url"] for g in (g1, g2, g3)] == [f"https://github.com/octo-org/api/issues/{n}" for n in (1, 2, 3)]

    # Productboard: two features under a component, connected to the epic and to PROJ-7.
    status = {s["name"]: {"id": s["id"], "name": s["name"]} for s in pb.statuses}
    component = pb.components[0]["id"]
    under = {"component": {"id": component, "links": {"self": f"https://api.productboard.com/components/{component}"}}}
    pa = pb.add(name="Bulk export", type="feature", parent=under, status=status["In progress"])
    pbb = pb.add(name="SAML SSO", type="feature", parent=under, status=status["Planned"])
    pb.connect_jira(pa["id"], epic["key"], epic["id"])
    pb.connect_jira(pbb["id"], s7["key"], s7["id"])

    # Aha!: a feature linked to PROJ-7 by key only (no URL) and to two GitHub issues, and one
    # linked to PROJ-3 by key and URL.
    def jira_fields(issue: dict[str, Any], url: bool) -> list[dict[str, Any]]:
        fields = [
            {"id": f"{issue['id']}1", "name": "id", "value": issue["id"], "service_name": "jira"},
            {"id": f"{issue['id']}2", "name": "key", "value": issue["key"], "service_name": "jira"},
        ]
        if url:
            browse = f"{jira.base_url}/browse/{issue['key']}"
            fields.append({"id": f"{issue['id']}3", "name": "url", "value": browse, "service_name": "jira"})
        return fields

    def github_fields(issue: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": f"{issue['id']}9", "name": "url", "value": issue["html_url"], "service_name": "github"}]

    a1 = aha.add(
        name="Single sign-on",
        status="In development",
        integration_fields=jira_fields(s7, url=False) + github_fields(g1) + github_fields(g2),
    )
    a2 = aha.add(name="XLSX export", status="Ready to develop", integration_fields=jira_fields(s3, url=True))

    ids = {
        "epic": f"{JIRA}:{epic['id']}",
        **{f"PROJ-{n}": f"{JIRA}:{issue['id']}" for n, issue in enumerate((epic, s2, s3, s4, s5, s6, s7, b8), 1)},
        **{f"gh#{n}": f"{GITHUB}:{g['id']}" for n, g in enumerate((g1, g2, g3), 1)},
        "pb-export": f"{PB}:{pa['id']}",
        "pb-sso": f"{PB}:{pbb['id']}",
        "aha-sso": f"{AHA}:{a1['id']}",
        "aha-xlsx": f"{AHA}:{a2['id']}",
    }
    # (Any: the fakes meet fakes.common.FakeTool at run time; their `app` type is narrower.)
    fakes: dict[str, Any] = {JIRA: jira, GITHUB: github, PB: pb, AHA: aha}
    cases = {case.id: case for case in CASES}
    raw = {
        JIRA: {**cases["jira"].config(fakes[JIRA]), "webhook_secret": WEBHOOK_SECRET},
        GITHUB: cases["github"].config(fakes[GITHUB]),
        PB: cases["productboard"].config(fakes[PB]),
        AHA: {
            **cases["aha"].config(fakes[AHA]),
            "mapping": {
                "fields": {"links": {"path": "$", "transform": "aha_links", "args": {"services": ["jira", "github"]}}}
            },
        },
    }
    scenario = Scenario(store, None, jira, github, pb, aha, ids)  # type: ignore[arg-type]
    return scenario, fakes, raw


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    if request.param == "sqlite":
        store = Store.open(f"sqlite:///{Path(tmp_path_factory.mktemp('e2e-roadmap')) / 'hub.db'}")
    else:
        store = Store.open(request.getfixturevalue("postgres_url"))
        _reset(store)
    try:
        built, fakes, raw = _build(store)
        config = parse_config({"sources": raw})
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)

        def connector(source: SourceDefinition) -> Connector:
            return source.connector_cls(
                source.name, source.config, transport=asgi_transport(fakes[source.name].app), sleep=sleep
            )

        engine = SyncEngine(store, config, connector_factory=connector)
        for name in (PB, AHA, JIRA, GITHUB):  # roadmap tools first: links resolve whichever arrives first
            run = asyncio.run(engine.run(name))
            assert run.status == "succeeded", (name, run.error)
            assert run.failed_records == 0, (name, run.record_errors)
        assert sleeps == []  # no retries were needed

        app = create_app(store, Settings(background_tasks=False), config=config, connector_factory=connector)
        _, token = store.keys.create(Scope.read, "e2e")
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            built.client = client
            yield built
    finally:
        store.close()


def _figures(entry: dict[str, Any], scenario: Scenario) -> dict[str, Any]:
    progress = entry["progress"]
    return {
        "delivery": scenario.names([d["id"] for d in entry["delivery_items"]]),
        "delivery_total": entry["delivery_total"],
        "by_status": entry["by_status"],
        "by_count": progress["by_count"],
        "by_estimate": progress["by_estimate"],
        "estimate": (progress["estimate_done"], progress["estimate_total"], progress["estimated_items"]),
    }


# ----------------------------------------------------------------------------- after the sync


def test_synced_items_are_what_the_fakes_serve(scenario: Scenario) -> None:
    """The inputs the hand-computed figures rest on, as stored (kinds, statuses, estimates)."""
    expected = {
        # name: (kind, status category, estimate)
        "epic": ("epic", "in_progress", None),
        "PROJ-2": ("story", "done", 3),
        "PROJ-3": ("story", "in_progress", 5),
        "PROJ-4": ("story", "todo", 2),
        "PROJ-5": ("task", "cancelled", 8),
        "PROJ-6": ("bug", "todo", None),
        "PROJ-7": ("story", "in_progress", 8),
        "PROJ-8": ("bug", "done", 1),
        "gh#1": ("task", "todo", None),
        "gh#2": ("task", "done", None),
        "gh#3": ("task", "todo", None),
        "pb-export": ("feature", "in_progress", None),
        "pb-sso": ("feature", "todo", None),
        "aha-sso": ("feature", "in_progress", None),
        "aha-xlsx": ("feature", "todo", None),
    }
    for name, (kind, category, estimate) in expected.items():
        item = scenario.client.get(f"/v1/items/{scenario.ids[name]}").json()
        got_estimate = item["estimate"]["value"] if item["estimate"] else None
        assert (item["kind"], item["status"]["category"], got_estimate) == (kind, category, estimate), name
    for n in range(2, 7):
        assert scenario.client.get(f"/v1/items/{scenario.ids[f'PROJ-{n}']}").json()["parent_id"] == scenario.ids["epic"]


def test_roadmap_progress_per_feature(scenario: Scenario) -> None:
    roadmap = scenario.roadmap()
    # Roadmap items: 2 Productboard features, 2 Aha! features, and the Jira epic itself.
    assert scenario.names(list(roadmap)) == {"pb-export", "pb-sso", "aha-sso", "aha-xlsx", "epic"}

    # Productboard "Bulk export" -> jira:PROJ-1 (the epic) -> its children PROJ-2..PROJ-6:
    #   PROJ-2 done 3 pts, PROJ-3 in progress 5, PROJ-4 todo 2, PROJ-5 cancelled 8, PROJ-6 todo (no estimate)
    #   by_count:    1 done (PROJ-2) of 4 not cancelled                    -> 1/4 = 0.25
    #   by_estimate: 3 done pts of 3+5+2 = 10 (PROJ-5 cancelled, PROJ-6 unestimated) -> 0.3
    #   blocked:     PROJ-4 (blocked by PROJ-3, still open)
    export = {
        "delivery": {"PROJ-2", "PROJ-3", "PROJ-4", "PROJ-5", "PROJ-6"},
        "delivery_total": 5,
        "by_status": {**NO_STATUS, "todo": 2, "in_progress": 1, "done": 1, "cancelled": 1},
        "by_count": 0.25,
        "by_estimate": 0.3,
        "estimate": (3, 10, 3),
    }
    pb_export = roadmap[scenario.ids["pb-export"]]
    assert _figures(pb_export, scenario) == export
    assert scenario.names(pb_export["blocked"]) == {"PROJ-4"}
    # The epic covers the same five issues, so it shows the same figures.
    epic = roadmap[scenario.ids["epic"]]
    assert _figures(epic, scenario) == export
    assert scenario.names(epic["blocked"]) == {"PROJ-4"}

    # Productboard "SAML SSO" -> jira:PROJ-7 directly: PROJ-7 in review (in progress), 8 pts.
    #   by_count: 0 done of 1 -> 0.0; by_estimate: 0 of 8 pts -> 0.0
    assert _figures(roadmap[scenario.ids["pb-sso"]], scenario) == {
        "delivery": {"PROJ-7"},
        "delivery_total": 1,
        "by_status": {**NO_STATUS, "in_progress": 1},
        "by_count": 0.0,
        "by_estimate": 0.0,
        "estimate": (0, 8, 1),
    }

    # Aha! "Single sign-on" -> jira:PROJ-7 (key only, the URN), github octo-org/api#1 and #2 (URLs):
    #   PROJ-7 in progress 8 pts, gh#1 open (todo), gh#2 closed completed (done); GitHub has no estimates.
    #   by_count: 1 done (gh#2) of 3 -> 1/3 = 0.3333; by_estimate: 0 done pts of 8 -> 0.0
    aha_sso = roadmap[scenario.ids["aha-sso"]]
    assert _figures(aha_sso, scenario) == {
        "delivery": {"PROJ-7", "gh#1", "gh#2"},
        "delivery_total": 3,
        "by_status": {**NO_STATUS, "todo": 1, "in_progress": 1, "done": 1},
        "by_count": pytest.approx(1 / 3, abs=1e-4),
        "by_estimate": 0.0,
        "estimate": (0, 8, 1),
    }

    # Aha! "XLSX export" -> {jira}/browse/PROJ-3 (key and URL): PROJ-3 in progress, 5 pts.
    #   by_count: 0 of 1 -> 0.0; by_estimate: 0 of 5 -> 0.0; blocked: nothing (PROJ-3 has no blocker)
    aha_xlsx = roadmap[scenario.ids["aha-xlsx"]]
    assert _figures(aha_xlsx, scenario) == {
        "delivery": {"PROJ-3"},
        "delivery_total": 1,
        "by_status": {**NO_STATUS, "in_progress": 1},
        "by_count": 0.0,
        "by_estimate": 0.0,
        "estimate": (0, 5, 1),
    }
    assert aha_xlsx["blocked"] == []

    # Uncovered: of the 10 delivery items stored (PROJ-2..PROJ-8, gh#1..gh#3), every one is
    # covered but PROJ-8 (linked to nothing, only blocks PROJ-7) and gh#3 -> 2.
    uncovered = scenario.client.get("/v1/roadmap").json()["uncovered"]
    assert uncovered["count"] == 2
    assert scenario.names([i["id"] for i in uncovered["items"]]) == {"PROJ-8", "gh#3"}


def test_blocker_outside_every_roadmap_item_still_counts_as_known(scenario: Scenario) -> None:
    """PROJ-7 is blocked by PROJ-8, which is stored and done but under no roadmap item: PROJ-7 is
    not blocked, so neither feature above it lists a blocked item."""
    roadmap = scenario.roadmap()
    assert roadmap[scenario.ids["pb-sso"]]["blocked"] == []
    assert roadmap[scenario.ids["aha-sso"]]["blocked"] == []


def test_links_resolve_in_both_directions(scenario: Scenario) -> None:
    def implements(name: str) -> set[str]:
        item = scenario.client.get(f"/v1/items/{scenario.ids[name]}").json()
        return scenario.names([link["target_id"] for link in item["links"] if link["type"] == "implements"])

    # The Jira and GitHub items show `implements` back to the features that name them.
    assert implements("PROJ-7") == {"pb-sso", "aha-sso"}  # by URN jira:PROJ-7 from both tools
    assert implements("epic") == {"pb-export"}
    assert implements("PROJ-3") == {"aha-xlsx"}  # by browse URL
    assert implements("gh#1") == {"aha-sso"}
    assert implements("gh#2") == {"aha-sso"}
    assert implements("gh#3") == set()
    assert implements("PROJ-2") == set()  # under the epic by parent, not linked

    # The features' own `implemented_by` links carry the resolved hub ids.
    feature = scenario.client.get(f"/v1/items/{scenario.ids['aha-sso']}").json()
    stated = {(link["url"], link["target_id"]) for link in feature["links"] if link["type"] == "implemented_by"}
    assert stated == {
        ("jira:PROJ-7", scenario.ids["PROJ-7"]),
        ("https://github.com/octo-org/api/issues/1", scenario.ids["gh#1"]),
        ("https://github.com/octo-org/api/issues/2", scenario.ids["gh#2"]),
    }

    # Trees: the Aha! feature holds the Jira story and both GitHub issues directly ...
    tree = scenario.client.get(f"/v1/items/{scenario.ids['aha-sso']}/tree").json()
    assert tree["id"] == scenario.ids["aha-sso"] and tree["via"] is None
    assert {(scenario.name(c["id"]), c["via"]) for c in tree["children"]} == {
        ("PROJ-7", "implemented_by"),
        ("gh#1", "implemented_by"),
        ("gh#2", "implemented_by"),
    }
    # ... and the Productboard feature holds the epic, which holds its five children.
    tree = scenario.client.get(f"/v1/items/{scenario.ids['pb-export']}/tree").json()
    (epic,) = tree["children"]
    assert (epic["id"], epic["via"], epic["tool"]) == (scenario.ids["epic"], "implemented_by", "jira")
    assert {(scenario.name(c["id"]), c["via"]) for c in epic["children"]} == {
        (f"PROJ-{n}", "parent") for n in range(2, 7)
    }


# ----------------------------------------------------------------------------- a webhook (runs last)


def test_jira_webhook_closing_a_story_moves_the_features(scenario: Scenario) -> None:
    proj3 = scenario.ids["PROJ-3"]
    native = proj3.split(":", 1)[1]
    scenario.jira.edit(native, status=DONE, resolution={"id": "Done", "name": "Done"})
    headers, body = scenario.jira.webhook("upsert", native, secret=WEBHOOK_SECRET)
    response = scenario.client.post(f"/webhooks/{JIRA}", headers=headers, content=body)
    assert response.status_code == 202, response.text
    assert scenario.drain() == 1
    assert scenario.client.get(f"/v1/items/{proj3}").json()["status"]["category"] == "done"

    roadmap = scenario.roadmap()
    # Productboard "Bulk export" (and the epic): PROJ-2 and PROJ-3 done now.
    #   by_count:    2 done of 4 not cancelled -> 0.5
    #   by_estimate: 3 + 5 = 8 done pts of 10  -> 0.8
    #   blocked:     none (PROJ-4's blocker PROJ-3 is done)
    export = {
        "delivery": {"PROJ-2", "PROJ-3", "PROJ-4", "PROJ-5", "PROJ-6"},
        "delivery_total": 5,
        "by_status": {**NO_STATUS, "todo": 2, "done": 2, "cancelled": 1},
        "by_count": 0.5,
        "by_estimate": 0.8,
        "estimate": (8, 10, 3),
    }
    for name in ("pb-export", "epic"):
        assert _figures(roadmap[scenario.ids[name]], scenario) == export, name
        assert roadmap[scenario.ids[name]]["blocked"] == [], name

    # Aha! "XLSX export": its only item PROJ-3 is done -> 1 of 1 = 1.0, 5 of 5 pts = 1.0.
    assert _figures(roadmap[scenario.ids["aha-xlsx"]], scenario) == {
        "delivery": {"PROJ-3"},
        "delivery_total": 1,
        "by_status": {**NO_STATUS, "done": 1},
        "by_count": 1.0,
        "by_estimate": 1.0,
        "estimate": (5, 5, 1),
    }

    # The SSO features do not cover PROJ-3: unchanged (0/1 and 1/3 by count, 0/8 pts).
    assert roadmap[scenario.ids["pb-sso"]]["progress"]["by_count"] == 0.0
    assert roadmap[scenario.ids["aha-sso"]]["progress"]["by_count"] == pytest.approx(1 / 3, abs=1e-4)
    assert roadmap[scenario.ids["aha-sso"]]["progress"]["by_estimate"] == 0.0
