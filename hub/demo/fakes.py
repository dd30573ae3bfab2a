"""Put the demo organisation (hub/demo/org.py) into the seven fake tools (the `fakes` package).

Each fake starts empty and receives the organisation's items through its control methods
(`add`, `set_times`, `connect_jira`, `set_remote_links` ...), in the tool's own record shape,
so the real connectors read them exactly as they read the tools. Cross-tool links are made
the way each tool makes them: Productboard's Jira integration and Aha!'s `integration_fields`
name the Jira epic; the epic's remote links ("is implemented by") name the GitHub, Linear,
GitLab and Redmine issues; stories hang under the epic by `parent`.

A tool chooses an item's project/repository from its running index (the fakes spread records
over containers round-robin); `_fill` adds the items in an order that lands each one in its
container, and fills a gap with a record it deletes at once (a deleted issue, as real
trackers have).
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fakes.aha import FakeAha
from fakes.github import FakeGitHub
from fakes.gitlab import FakeGitLab
from fakes.jira import (
    CF_CONFIDENCE,
    CF_EFFORT,
    CF_EPIC_LINK,
    CF_IMPACT,
    CF_REACH,
    CF_SPRINT,
    CF_STORY_POINTS,
    FakeJira,
)
from fakes.linear import FakeLinear
from fakes.productboard import FakeProductboard
from fakes.redmine import FakeRedmine
from hub.demo.org import AHA_PRODUCT, JIRA_PROJECTS, LINEAR_TEAM, Org, Person, Work

TOOLS = ("jira", "github", "gitlab", "linear", "redmine", "productboard", "aha")
GITHUB_REPOSITORIES = ("northwind/storefront", "northwind/api")
GITLAB_GROUP = (42, "northwind-platform")
GITLAB_PROJECTS = ((4201, "northwind-platform/infra"), (4202, "northwind-platform/identity"))
REDMINE_PROJECT = "billing"
# Where the tools' own web pages would be: the links Jira stores to other tools' issues.
GITHUB_WEB = "https://github.com"
GITLAB_WEB = "https://gitlab.northwind.example"
LINEAR_WEB = "https://linear.app/northwind"
REDMINE_WEB = "https://redmine.northwind.example"


@dataclass
class Placed:
    tool: str
    native_id: str
    key: str
    url: str


@dataclass
class DemoFakes:
    """The seven fakes holding the organisation, and where each org item landed."""

    org: Org
    fakes: dict[str, Any]
    placed: dict[str, Placed] = field(default_factory=dict)
    """org ref -> the record it became."""

    def native_id(self, ref: str) -> str:
        return self.placed[ref].native_id


def _uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "northwind/" + "/".join(parts)))


def _fill(
    items: list[Work],
    bucket_of: Callable[[Work], str],
    next_bucket: Callable[[], str],
    add: Callable[[Work | None], None],
) -> None:
    """Add `items` so that each lands in its bucket (container), in creation order within it."""
    queues: dict[str, list[Work]] = {}
    for item in sorted(items, key=lambda i: i.created):
        queues.setdefault(bucket_of(item), []).append(item)
    while any(queues.values()):
        queue = queues.get(next_bucket())
        add(queue.pop(0) if queue else None)


class _Loader:
    def __init__(self, org: Org, urls: dict[str, str]) -> None:
        self.org = org
        self.urls = urls
        self.placed: dict[str, Placed] = {}
        self.fakes: dict[str, Any] = {}

    def load(self) -> DemoFakes:
        self.jira()
        self.github()
        self.gitlab()
        self.linear()
        self.redmine()
        self.jira_links()
        self.productboard()
        self.aha()
        for tool in ("github", "gitlab"):  # their events show a reopening where the org has one
            reopened = [i for i in self.org.of_tool(tool) if i.reopened]
            self.fakes[tool].reopened = {self.placed[i.ref].native_id for i in reopened}
        for fake in self.fakes.values():
            fake.set_clock(self.org.now)
        return DemoFakes(self.org, self.fakes, self.placed)

    def times(self, fake: Any, item: Work, native_id: str) -> None:
        fake.set_times(native_id, created=item.created, updated=item.updated)

    # ------------------------------------------------------------ Jira

    def jira_user(self, person: Person | None) -> dict[str, Any] | None:
        if person is None:
            return None
        return {
            "accountId": "nw" + _uid("jira", person.email).replace("-", "")[:22],
            "accountType": "atlassian",
            "active": True,
            "displayName": person.name,
            "emailAddress": person.email,
            "timeZone": "Europe/Berlin",
        }

    def jira(self) -> None:
        start = self.org.start
        fake = FakeJira(0, projects=JIRA_PROJECTS, base_url=self.urls["jira"], start=start, time_zone="Europe/Berlin")
        self.fakes["jira"] = fake
        statuses = {
            "backlog": ("10000", "Backlog", "new"),
            "todo": ("10001", "To Do", "new"),
            "in_progress": ("3", "In Progress", "indeterminate"),
            "review": ("10002", "In Review", "indeterminate"),
            "done": ("10003", "Done", "done"),
            "cancelled": ("10003", "Done", "done"),
        }
        categories = {
            "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
            "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"},
            "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
        }
        types = {
            "epic": ("10000", "Epic", 1),
            "story": ("10001", "Story", 0),
            "task": ("10002", "Task", 0),
            "bug": ("10004", "Bug", 0),
            "subtask": ("10003", "Sub-task", -1),
        }
        priorities = {1: "Highest", 2: "High", 3: "Medium", 4: "Low", 5: "Lowest"}
        api = f"{fake.base_url}/rest/api/3"

        def add(item: Work | None) -> None:
            if item is None:
                fake.delete(fake.add(summary="Deleted issue")["id"])
                return
            state = "review" if item.category == "in_progress" and len(item.title) % 3 == 0 else item.category
            status_id, status_name, category = statuses[state]
            type_id, type_name, level = types[item.kind]
            resolution = None
            if item.category in ("done", "cancelled"):
                res_id, res_name = ("10000", "Done") if item.category == "done" else ("10001", "Won't Do")
                resolution = {"self": f"{api}/resolution/{res_id}", "id": res_id, "name": res_name}
            sprint = None
            if item.iteration is not None and item.kind != "epic":
                begin, end = self.org.iteration_bounds(item.iteration)
                sprint = [
                    {
                        "id": item.iteration,
                        "name": f"{item.container} Sprint {item.iteration}",
                        "state": "closed" if end < self.org.now else "active",
                        "boardId": 1 + JIRA_PROJECTS.index(item.container),
                        "goal": "",
                        "startDate": begin.isoformat(),
                        "endDate": end.isoformat(),
                    }
                ]
            release_date = dict(self.org.releases()).get(item.release or "")
            fields: dict[str, Any] = {
                "summary": item.title,
                "description": {
                    "type": "doc",
                    "version": 1,
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": item.title + "."}]}],
                },
                "status": {
                    "self": f"{api}/status/{status_id}",
                    "id": status_id,
                    "name": status_name,
                    "statusCategory": categories[category],
                },
                "priority": {
                    "self": f"{api}/priority/{item.priority}",
                    "id": str(item.priority),
                    "name": priorities[item.priority],
                },
                "issuetype": {
                    "self": f"{api}/issuetype/{type_id}",
                    "id": type_id,
                    "name": type_name,
                    "subtask": level < 0,
                    "hierarchyLevel": level,
                },
                "assignee": self.jira_user(item.assignee),
                "reporter": self.jira_user(item.reporter),
                "labels": sorted(item.labels),
                "fixVersions": [
                    {
                        "self": f"{api}/version/{item.release}",
                        "id": (item.release or "").replace(".", ""),
                        "name": item.release,
                        "archived": False,
                        "released": release_date is not None and release_date < self.org.now.date(),
                        "releaseDate": release_date.isoformat() if release_date else None,
                    }
                ]
                if item.release and item.category != "backlog"
                else [],
                "issuelinks": [],
                "parent": None,  # the fake invents parents for issues it generates: none here but ours
                "components": [],
                "resolution": resolution,
                "resolutiondate": item.updated.strftime("%Y-%m-%dT%H:%M:%S.000+0000") if resolution else None,
                "duedate": item.due.isoformat() if item.due else None,
                CF_STORY_POINTS: item.estimate if item.kind in ("story", "task", "bug") else None,
                CF_SPRINT: sprint,
                CF_EPIC_LINK: None,
                CF_REACH: item.rice.get("reach"),
                CF_IMPACT: item.rice.get("impact"),
                CF_CONFIDENCE: item.rice["confidence"] * 100 if "confidence" in item.rice else None,
                CF_EFFORT: item.rice.get("effort"),
            }
            if item.parent:
                parent = self.placed[item.parent]
                fields["parent"] = {
                    "id": parent.native_id,
                    "key": parent.key,
                    "self": f"{api}/issue/{parent.native_id}",
                }
            record = fake.add(**fields)
            self.placed[item.ref] = Placed(
                "jira", record["id"], record["key"], f"{fake.base_url}/browse/{record['key']}"
            )
            self.times(fake, item, record["id"])

        # FakeJira puts issue idx in projects[idx % 2].
        _fill(self.org.of_tool("jira"), lambda i: i.container, fake.next_project, add)

    def jira_links(self) -> None:
        """Epics' remote links to the issues implementing them, and "is blocked by" links."""
        fake = self.fakes["jira"]
        api = f"{fake.base_url}/rest/api/3"
        titles = {item.ref: item.title for item in self.org.items}
        for item in self.org.of_tool("jira"):
            native = self.placed[item.ref].native_id
            changed = False
            if item.implemented_by:
                urls = [self.placed[ref].url for ref in item.implemented_by]
                fake.set_remote_links(native, urls, relationship="is implemented by", touch=False)
                changed = True
            if item.blocked_by:
                links = []
                for k, ref in enumerate(item.blocked_by):
                    blocker = self.placed[ref]
                    links.append(
                        {
                            "id": f"{native}{k}",
                            "type": {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                            "inwardIssue": {
                                "id": blocker.native_id,
                                "key": blocker.key,
                                "self": f"{api}/issue/{blocker.native_id}",
                                "fields": {"summary": titles[ref]},
                            },
                        }
                    )
                fake.edit(native, issuelinks=links)
                changed = True
            if changed:
                self.times(fake, item, native)

    # ------------------------------------------------------------ GitHub

    def github_user(self, person: Person | None) -> dict[str, Any] | None:
        if person is None:
            return None
        uid = 10_000 + [p.email for p in self.org.people].index(person.email)
        return {
            "login": person.login,
            "id": uid,
            "node_id": f"U_nw{uid}",
            "url": f"{self.urls['github']}/users/{person.login}",
            "html_url": f"{GITHUB_WEB}/{person.login}",
            "type": "User",
            "site_admin": False,
        }

    def github(self) -> None:
        fake = FakeGitHub(0, repositories=GITHUB_REPOSITORIES, base_url=self.urls["github"], start=self.org.start)
        self.fakes["github"] = fake
        releases = self.org.releases()

        def label(name: str, color: str) -> dict[str, Any]:
            return {
                "id": zlib.crc32(name.encode()),
                "name": name,
                "color": color,
                "default": False,
                "description": None,
            }

        def add(item: Work | None) -> None:
            if item is None:
                fake.delete(str(fake.add(title="Deleted issue")["id"]))
                return
            closed = item.category in ("done", "cancelled")
            # The kind label the mapping reads (mappings/github.yaml `kind_label`).
            labels = [label(item.kind, {"bug": "d73a4a", "story": "a2eeef"}.get(item.kind, "0e8a16"))]
            if item.category == "in_progress":
                labels.append(label("in progress", "fbca04"))
            elif item.category == "backlog":
                labels.append(label("backlog", "ededed"))
            labels += [label(name, "c5def5") for name in item.labels]
            milestone = None
            if item.release and item.category != "backlog":
                number = 1 + [name for name, _ in releases].index(item.release)
                due = dict(releases)[item.release]
                milestone = {
                    "url": f"{self.urls['github']}/repos/{item.container}/milestones/{number}",
                    "id": 800_000 + number,
                    "number": number,
                    "title": f"v{item.release}",
                    "state": "closed" if due < self.org.now.date() else "open",
                    "due_on": f"{due.isoformat()}T07:00:00Z",
                }
            assignee = self.github_user(item.assignee)
            record = fake.add(
                title=item.title,
                body=f"{item.title}.\n\n- [ ] implementation\n- [ ] tests",
                user=self.github_user(item.reporter),
                state="closed" if closed else "open",
                state_reason=("completed" if item.category == "done" else "not_planned") if closed else None,
                closed_at=item.updated.strftime("%Y-%m-%dT%H:%M:%SZ") if closed else None,
                labels=labels,
                assignee=assignee,
                assignees=[assignee] if assignee else [],
                milestone=milestone,
            )
            native = str(record["id"])
            key = f"{item.container}#{record['number']}"
            self.placed[item.ref] = Placed(
                "github", native, key, f"{GITHUB_WEB}/{item.container}/issues/{record['number']}"
            )
            self.times(fake, item, native)

        _fill(
            self.org.of_tool("github"),
            lambda i: i.container,
            fake.next_repository,
            add,
        )

    # ------------------------------------------------------------ GitLab

    def gitlab_user(self, person: Person | None) -> dict[str, Any] | None:
        if person is None:
            return None
        return {
            "id": 100 + [p.email for p in self.org.people].index(person.email),
            "username": person.login,
            "name": person.name,
            "public_email": person.email,  # set in the profile: the hub matches people by it
            "state": "active",
            "avatar_url": None,
            "web_url": f"{GITLAB_WEB}/{person.login}",
        }

    def gitlab(self) -> None:
        fake = FakeGitLab(
            0, group=GITLAB_GROUP, projects=GITLAB_PROJECTS, base_url=self.urls["gitlab"], start=self.org.start
        )
        self.fakes["gitlab"] = fake
        releases = self.org.releases()

        def add(item: Work | None) -> None:
            if item is None:
                fake.delete(str(fake.add(title="Deleted issue")["id"]))
                return
            closed = item.category in ("done", "cancelled")
            labels = [f"type::{item.kind}", *item.labels]
            if item.category == "in_progress":
                labels.append("workflow::in progress")
            elif item.category == "backlog":
                labels.append("workflow::backlog")
            elif item.category == "cancelled":
                labels.append("won't do")
            milestone = None
            if item.release and item.category != "backlog":
                number = 1 + [name for name, _ in releases].index(item.release)
                due = dict(releases)[item.release]
                milestone = {
                    "id": 40 + number,
                    "iid": number,
                    "group_id": GITLAB_GROUP[0],
                    "title": item.release,
                    "description": "",
                    "state": "closed" if due < self.org.now.date() else "active",
                    "due_date": due.isoformat(),
                    "start_date": (due - timedelta(days=27)).isoformat(),
                    "web_url": f"{GITLAB_WEB}/groups/{GITLAB_GROUP[1]}/-/milestones/{number}",
                }
            assignee = self.gitlab_user(item.assignee)
            estimate = int((item.estimate or 0) * 3600)
            record = fake.add(
                title=item.title,
                description=f"{item.title}.\n\n/cc @{item.reporter.login}",
                state="closed" if closed else "opened",
                closed_at=item.updated.strftime("%Y-%m-%dT%H:%M:%S.000Z") if closed else None,
                closed_by=assignee if closed else None,
                labels=labels,
                milestone=milestone,
                assignees=[assignee] if assignee else [],
                assignee=assignee,
                author=self.gitlab_user(item.reporter),
                due_date=item.due.isoformat() if item.due else None,
                weight=int(item.estimate) if item.estimate else None,
                time_stats={
                    "time_estimate": estimate,
                    "total_time_spent": 0,
                    "human_time_estimate": f"{estimate // 3600}h" if estimate else None,
                    "human_total_time_spent": None,
                },
            )
            native = str(record["id"])
            key = f"{item.container}#{record['iid']}"
            self.placed[item.ref] = Placed(
                "gitlab", native, key, f"{GITLAB_WEB}/{item.container}/-/issues/{record['iid']}"
            )
            self.times(fake, item, native)

        _fill(
            self.org.of_tool("gitlab"),
            lambda i: i.container,
            fake.next_project,
            add,
        )

    # ------------------------------------------------------------ Linear

    def linear_user(self, person: Person | None) -> dict[str, Any] | None:
        if person is None:
            return None
        return {
            "id": _uid("linear", person.email),
            "name": person.name,
            "displayName": person.login.split("-")[0],
            "email": person.email,
        }

    def linear(self) -> None:
        fake = FakeLinear(0, teams=(LINEAR_TEAM,), base_url=self.urls["linear"], start=self.org.start, schema=None)
        self.fakes["linear"] = fake
        states = {
            "backlog": "Backlog",
            "todo": "Todo",
            "in_progress": "In Progress",
            "done": "Done",
            "cancelled": "Canceled",
        }
        labels = {
            name: {"id": _uid("linear-label", name), "name": name}
            for name in ("Bug", "Story", "Task", "backend", "frontend", "ux", "performance", "security")
        }
        priority_labels = {1: "Urgent", 2: "High", 3: "Medium", 4: "Low", 5: "No priority"}
        for item in sorted(self.org.of_tool("linear"), key=lambda i: i.created):
            cycle = None
            if item.iteration is not None:
                begin, end = self.org.iteration_bounds(item.iteration)
                cycle = {
                    "id": _uid("linear-cycle", str(item.iteration)),
                    "number": item.iteration,
                    "name": f"Cycle {item.iteration}",
                    "startsAt": begin.isoformat().replace("+00:00", "Z"),
                    "endsAt": end.isoformat().replace("+00:00", "Z"),
                }
            parent = None
            if item.parent:
                placed = self.placed[item.parent]
                parent = {"id": placed.native_id, "identifier": placed.key}
            started = item.created + (item.updated - item.created) / 3
            # A kind label (mappings/linear.yaml `kind_label`); a sub-issue is a subtask by its parent.
            kind_label = [] if item.kind == "subtask" else [labels[item.kind.title()]]
            item_labels = [*kind_label, *(labels[n] for n in item.labels if n in labels)]
            record = fake.add(
                title=item.title,
                description=f"## Why\n{item.title}.\n",
                priority=item.priority % 5,
                priorityLabel=priority_labels[item.priority],
                estimate=item.estimate,
                state=fake.state(LINEAR_TEAM, states[item.category]),
                team=fake.team(LINEAR_TEAM),
                startedAt=_iso(started) if item.category in ("in_progress", "done") else None,
                completedAt=_iso(item.updated) if item.category == "done" else None,
                canceledAt=_iso(item.updated) if item.category == "cancelled" else None,
                archivedAt=None,
                dueDate=item.due.isoformat() if item.due else None,
                project=None,
                cycle=cycle,
                parent=parent,
                assignee=self.linear_user(item.assignee),
                creator=self.linear_user(item.reporter),
                labels={"nodes": item_labels},
            )
            identifier = record["identifier"]
            record["url"] = f"{LINEAR_WEB}/issue/{identifier}"
            self.placed[item.ref] = Placed("linear", record["id"], identifier, record["url"])
            self.times(fake, item, record["id"])

    # ------------------------------------------------------------ Redmine

    def redmine(self) -> None:
        fake = FakeRedmine(0, projects=(REDMINE_PROJECT,), base_url=self.urls["redmine"], start=self.org.start)
        self.fakes["redmine"] = fake
        statuses = {
            "backlog": (1, "New", False),
            "todo": (1, "New", False),
            "in_progress": (2, "In Progress", False),
            "done": (5, "Closed", True),
            "cancelled": (6, "Rejected", True),
        }
        trackers = {"bug": (1, "Bug"), "story": (4, "Story"), "task": (3, "Support")}
        priorities = {1: (5, "Immediate"), 2: (4, "Urgent"), 3: (3, "High"), 4: (2, "Normal"), 5: (1, "Low")}
        people = [p.email for p in self.org.people]
        releases = [name for name, _ in self.org.releases()]

        def person(p: Person | None) -> dict[str, Any] | None:
            return None if p is None else {"id": 10 + people.index(p.email), "name": p.name}

        for item in sorted(self.org.of_tool("redmine"), key=lambda i: i.created):
            status = statuses[item.category]
            tracker = trackers.get(item.kind, (3, "Support"))
            changes: dict[str, Any] = {
                "tracker": {"id": tracker[0], "name": tracker[1]},
                "status": {"id": status[0], "name": status[1], "is_closed": status[2]},
                "priority": {"id": priorities[item.priority][0], "name": priorities[item.priority][1]},
                "author": person(item.reporter),
                "subject": item.title,
                "description": f"h2. Context\n\n{item.title}.",
                "due_date": item.due.isoformat() if item.due else None,
                "done_ratio": {"done": 100, "in_progress": 50}.get(item.category, 0),
                "estimated_hours": item.estimate,
                "closed_on": "closed" if status[2] else None,  # set_times writes the time
                "parent": None,  # the fake invents parents for issues it generates
            }
            if item.assignee:
                changes["assigned_to"] = person(item.assignee)
            if item.release and item.category != "backlog":
                changes["fixed_version"] = {"id": 1 + releases.index(item.release), "name": item.release}
            record = fake.add(**changes)
            native = str(record["id"])
            self.placed[item.ref] = Placed("redmine", native, f"#{native}", f"{REDMINE_WEB}/issues/{native}")
            self.times(fake, item, native)

    # ------------------------------------------------------------ Productboard

    def productboard(self) -> None:
        fake = FakeProductboard(0, base_url=self.urls["productboard"], start=self.org.start)
        self.fakes["productboard"] = fake
        # The fake's hierarchy is two products and three components (one nested): rename them.
        fake.products[0]["name"], fake.products[1]["name"] = "Northwind Commerce", "Northwind Mobile"
        for component, name in zip(fake.components, ("Storefront", "Checkout", "Mobile app"), strict=True):
            component["name"] = name
        components = {c["name"]: c for c in fake.components}
        statuses = {s["name"]: s for s in fake.statuses}
        status_of = {
            "backlog": "Candidate",
            "todo": "Planned",
            "in_progress": "In progress",
            "done": "Released",
            "cancelled": "Won't do",
        }
        # Quarterly releases: last quarter, this one, the next.
        quarter_start = date(self.org.now.year, 3 * ((self.org.now.month - 1) // 3) + 1, 1)
        for k, release in enumerate(fake.releases):
            begin = _add_months(quarter_start, 3 * (k - 1))
            end = _add_months(begin, 3) - timedelta(days=1)
            release["name"] = f"{begin.year} Q{(begin.month - 1) // 3 + 1}"
            release["timeframe"] = {
                "startDate": begin.isoformat(),
                "endDate": end.isoformat(),
                "granularity": "quarter",
            }
            release["state"] = ["completed", "in-progress", "upcoming"][k]
        for item in sorted(self.org.of_tool("productboard"), key=lambda i: i.created):
            if item.parent:
                parent = {
                    "feature": {
                        "id": self.placed[item.parent].native_id,
                        "links": {
                            "self": f"https://api.productboard.com/features/{self.placed[item.parent].native_id}"
                        },
                    }
                }
            else:
                component = components[item.container]
                parent = {
                    "component": {
                        "id": component["id"],
                        "links": {"self": f"https://api.productboard.com/components/{component['id']}"},
                    }
                }
            timeframe = {"startDate": "none", "endDate": "none", "granularity": "none"}
            if item.due:
                timeframe = {
                    "startDate": (item.due - timedelta(days=60)).isoformat(),
                    "endDate": item.due.isoformat(),
                    "granularity": "none",
                }
            record = fake.add(
                name=item.title,
                description=f"<p>{item.title}.</p><p>Why: customers asked for it in <b>{3 + len(item.title) % 20}</b> interviews.</p>",
                type="subfeature" if item.kind == "subfeature" else "feature",
                status={"id": statuses[status_of[item.category]]["id"], "name": status_of[item.category]},
                parent=parent,
                timeframe=timeframe,
                owner={"email": item.assignee.email} if item.assignee else None,
            )
            fid = record["id"]
            self.placed[item.ref] = Placed("productboard", fid, fid, record["links"]["html"])
            self.times(fake, item, fid)
            quarter = None
            if item.due:
                for release in fake.releases:
                    if release["timeframe"]["startDate"] <= item.due.isoformat() <= release["timeframe"]["endDate"]:
                        quarter = release["id"]
            fake.assign(fid, quarter)
            for name in ("Reach", "Impact", "Confidence", "Effort"):
                fake.set_value(name, fid, item.rice.get(name.lower()))
            team = {"Storefront": "Growth", "Checkout": "Checkout", "Mobile app": "Platform"}.get(item.container)
            team_option = next((o for o in _field(fake, "Team")["options"] if o["label"] == team), None)
            fake.set_value("Team", fid, team_option)
            fake.set_value("Sponsor", fid, None)
            epic = next((ref for ref in item.implemented_by if ref.startswith("jira:")), None)
            if epic:
                fake.connect_jira(fid, self.placed[epic].key, self.placed[epic].native_id)
            else:
                fake.connect_jira(fid, None)

    # ------------------------------------------------------------ Aha!

    def aha(self) -> None:
        site = self.urls["aha"]
        jira = self.fakes["jira"]
        fake = FakeAha(0, products=(AHA_PRODUCT,), site=site, jira_url=jira.base_url, start=self.org.start)
        self.fakes["aha"] = fake
        kinds = {"initiative": "initiatives", "feature": "features", "idea": "ideas", "epic": "epics"}
        feature_status = {
            "backlog": "Under consideration",
            "todo": "Ready to develop",
            "in_progress": "In development",
            "done": "Shipped",
            "cancelled": "Will not implement",
        }
        idea_status = {
            "backlog": "New",
            "todo": "Needs review",
            "in_progress": "Planned",
            "done": "Shipped",
            "cancelled": "Already exists",
        }
        people = [p.email for p in self.org.people]
        releases = [name for name, _ in self.org.releases()]

        def user(p: Person | None) -> dict[str, Any] | None:
            if p is None:
                return None
            return {
                "id": str(1_000_000 + people.index(p.email)),
                "name": p.name,
                "email": p.email,
                "created_at": "2024-01-08T09:00:00.000Z",
            }

        def ref(org_ref: str | None) -> dict[str, Any] | None:
            if org_ref is None:
                return None
            full = fake.record(self.placed[org_ref].native_id)
            assert full is not None, org_ref
            return {k: full[k] for k in ("id", "reference_num", "name", "created_at", "url", "resource")}

        # In the organisation's order (initiatives, features, ideas): a record names only earlier ones.
        for item in self.org.of_tool("aha"):
            status = (idea_status if item.kind == "idea" else feature_status)[item.category]
            facts = [
                {"id": _uid("aha-fact", item.ref, name), "value": item.rice[name.lower()], "name": name}
                for name in ("Reach", "Effort")
                if name.lower() in item.rice
            ]
            changes: dict[str, Any] = {
                "kind": kinds[item.kind],
                "name": item.title,
                "status": status,
                "created_by_user": user(item.reporter),
                "assigned_to_user": user(item.assignee),
                "tags": [*item.labels, "enterprise" if item.ref.endswith(("1", "3", "5")) else "core"],
                "score_facts": facts,
                "custom_fields": [],
                "integration_fields": [],
            }
            if item.kind in ("feature", "initiative"):
                changes["start_date"] = (item.created + timedelta(days=7)).date().isoformat()
                changes["due_date" if item.kind == "feature" else "end_date"] = (
                    item.due.isoformat() if item.due else None
                )
                changes["initiative"] = ref(item.parent) if item.kind == "feature" else None
            if item.kind == "feature":
                changes["epic"] = None
                if item.release:
                    number = 1 + releases.index(item.release)
                    changes["release"] = {
                        "id": str(278_327_320 + number),
                        "reference_num": f"{AHA_PRODUCT}-R-{number}",
                        "name": f"Release {item.release}",
                        "start_date": (dict(self.org.releases())[item.release] - timedelta(days=27)).isoformat(),
                        "release_date": dict(self.org.releases())[item.release].isoformat(),
                        "parking_lot": False,
                    }
                epic = next((r for r in item.implemented_by if r.startswith("jira:")), None)
                if epic:
                    placed = self.placed[epic]
                    changes["integration_fields"] = [
                        {
                            "id": _uid("aha-int", item.ref, "id"),
                            "name": "id",
                            "value": placed.native_id,
                            "service_name": "jira",
                        },
                        {
                            "id": _uid("aha-int", item.ref, "key"),
                            "name": "key",
                            "value": placed.key,
                            "service_name": "jira",
                        },
                        {
                            "id": _uid("aha-int", item.ref, "url"),
                            "name": "url",
                            "value": placed.url,
                            "service_name": "jira",
                        },
                    ]
            if item.kind == "idea":
                changes["duplicate_of"] = ref(item.duplicate_of)
                promoted = next((r for r in item.implemented_by if r.startswith("aha:")), None)
                changes["feature"] = ref(promoted)
                changes["votes"] = 1 + len(item.title) % 40
            record = fake.add(**changes)
            native = str(record["id"])
            self.placed[item.ref] = Placed("aha", native, record["reference_num"], record["url"])
            self.times(fake, item, native)


def _field(fake: FakeProductboard, name: str) -> dict[str, Any]:
    return next(f for f in fake.custom_fields if f["name"] == name)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return date(day.year + index // 12, index % 12 + 1, 1)


def load_fakes(org: Org, urls: dict[str, str]) -> DemoFakes:
    """The seven fakes holding `org`, each built for the base URL it will be served at."""
    missing = set(TOOLS) - urls.keys()
    if missing:
        raise ValueError(f"no base URL for {sorted(missing)}")
    return _Loader(org, urls).load()
