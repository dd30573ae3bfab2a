"""A fake Jira Cloud (REST API v3) for tests and the sync benchmark.

Serves N issues generated deterministically from a seed, lazily: an issue is built when a
page asks for it, and only edits, additions and deletions are kept in memory, so 100,000
issues cost a few megabytes. Endpoints (the shapes follow Jira Cloud's v3 API):

- `GET /rest/api/3/myself`            the API user, with a configurable `timeZone`
- `GET /rest/api/3/field`             the field catalog (system + custom fields)
- `GET /rest/api/3/search/jql`        enhanced search, `nextPageToken` paging, `fields`,
                                      the JQL subset connectors emit (see `_parse_jql`)
- `GET /rest/api/3/issue/{idOrKey}`   one issue, 404 when deleted
- `GET /rest/api/3/issue/{idOrKey}/remotelink`  the issue's remote links (none unless set with
                                      `set_remote_links`), `globalId` to pick one; 404 when deleted

JQL date literals are read in the API user's time zone, as Jira does, so a connector that
sends UTC times unconverted re-reads or misses records. Control methods (`edit`, `delete`,
`add`), fault injection (`faults`) and the request log (`log`) come from `fakes.common`.

Run standalone (e.g. for the benchmark, in its own process):
    python -m fakes.jira --issues 100000 --latency 0.05 --port 8765
    python -m fakes.jira --issues 20000 --latency 0.05 --latency-mode total --tls-cert c.pem --tls-key k.pem
"""

from __future__ import annotations

import argparse
import base64
import bisect
import heapq
import itertools
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.common import (
    FaultInjectionMiddleware,
    FaultPlan,
    RequestLog,
    TotalLatency,
    WebhookKind,
    hmac_sha256_hex,
)

API = "/rest/api/3"

# Custom field ids as a typical Jira Cloud site has them (ids differ per site: connectors
# must resolve them by display name through /rest/api/3/field).
CF_STORY_POINTS = "customfield_10016"
CF_SPRINT = "customfield_10020"
CF_EPIC_LINK = "customfield_10014"
CF_START_DATE = "customfield_10015"
CF_RANK = "customfield_10019"
CF_REACH = "customfield_10050"
CF_IMPACT = "customfield_10051"
CF_CONFIDENCE = "customfield_10052"
CF_EFFORT = "customfield_10053"

_SYSTEM_FIELDS = [
    ("summary", "Summary", "string"),
    ("description", "Description", "string"),
    ("status", "Status", "status"),
    ("priority", "Priority", "priority"),
    ("issuetype", "Issue Type", "issuetype"),
    ("project", "Project", "project"),
    ("assignee", "Assignee", "user"),
    ("reporter", "Reporter", "user"),
    ("labels", "Labels", "array"),
    ("parent", "Parent", "issuelink"),
    ("fixVersions", "Fix versions", "array"),
    ("issuelinks", "Linked Issues", "array"),
    ("created", "Created", "datetime"),
    ("updated", "Updated", "datetime"),
    ("resolution", "Resolution", "resolution"),
    ("resolutiondate", "Resolved", "datetime"),
    ("duedate", "Due date", "date"),
    ("components", "Components", "array"),
    ("subtasks", "Sub-tasks", "array"),
    ("comment", "Comment", "comments-page"),
    ("worklog", "Log Work", "array"),
]
_CUSTOM_FIELDS = [
    (CF_STORY_POINTS, "Story Points", "number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
    (CF_SPRINT, "Sprint", "array", "com.pyxis.greenhopper.jira:gh-sprint"),
    (CF_EPIC_LINK, "Epic Link", "any", "com.pyxis.greenhopper.jira:gh-epic-link"),
    (CF_START_DATE, "Start date", "date", "com.atlassian.jira.plugin.system.customfieldtypes:datepicker"),
    (CF_RANK, "Rank", "any", "com.pyxis.greenhopper.jira:gh-lexo-rank"),
    (CF_REACH, "Reach", "number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
    (CF_IMPACT, "Impact", "number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
    (CF_CONFIDENCE, "Confidence", "number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
    (CF_EFFORT, "Effort", "number", "com.atlassian.jira.plugin.system.customfieldtypes:float"),
]

_CATEGORIES = {
    "new": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
    "indeterminate": {"id": 4, "key": "indeterminate", "colorName": "yellow", "name": "In Progress"},
    "done": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
}
_STATUSES = [
    ("10000", "Backlog", "new"),
    ("10001", "To Do", "new"),
    ("3", "In Progress", "indeterminate"),
    ("10002", "In Review", "indeterminate"),
    ("10003", "Done", "done"),
]
_PRIORITIES = [("1", "Highest"), ("2", "High"), ("3", "Medium"), ("4", "Low"), ("5", "Lowest")]
_RESOLUTIONS = [("10000", "Done"), ("10001", "Won't Do"), ("10002", "Duplicate")]
_TYPES = {
    "Epic": ("10000", False, 1),
    "Story": ("10001", False, 0),
    "Task": ("10002", False, 0),
    "Bug": ("10004", False, 0),
    "Sub-task": ("10003", True, -1),
    "Idea": ("10005", False, 0),
}
_FIRST = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Alan", "Radia", "Zoë", "Jürgen"]
_LAST = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Kay", "Perlman"]
_WORDS = [
    *("checkout", "login", "roadmap", "export", "billing", "search", "sync", "webhook", "dashboard", "report"),
    *("onboarding", "invoice", "latency", "cache", "retry", "sprint", "estimate", "label", "import", "mobile"),
]
_LABELS = ["backend", "frontend", "ux", "tech-debt", "customer", "q3-goal", "security", "performance"]

_GITHUB_ISSUE = re.compile(r"^https?://github\.com/(?P<repo>[^/]+/[^/]+)/issues/(?P<num>\d+)")
_SITE = re.compile(r"^https?://(?P<host>[^/?#]+)")
_JQL_ORDER = re.compile(r"\s+ORDER\s+BY\s+(?P<order>.+?)\s*$", re.IGNORECASE)
_JQL_UPDATED = re.compile(r'\bupdated\s*>=\s*"(?P<when>[^"]+)"', re.IGNORECASE)
_JQL_PROJECT_IN = re.compile(r"\bproject\s+in\s*\((?P<keys>[^)]*)\)", re.IGNORECASE)
_JQL_PROJECT_EQ = re.compile(r'\bproject\s*=\s*"?(?P<key>[A-Za-z][A-Za-z0-9_]*)"?', re.IGNORECASE)
_JQL_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


def _parse_jira_ms(text: str) -> int:
    """Epoch ms of Jira's `2025-01-06T09:00:17.000+0100`."""
    return _ms(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z"))


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _expand(value: str | None) -> set[str]:
    """The `expand` parameter: comma-separated names (https://developer.atlassian.com/cloud/jira/platform/rest/v3/intro/#expansion)."""
    return {part.strip() for part in (value or "").split(",") if part.strip()}


def _adf(rng: random.Random, title: str, mention: dict[str, Any]) -> dict[str, Any]:
    """An Atlassian Document Format description (heading, marks, list, link, mention, code)."""
    content: list[dict[str, Any]] = [
        {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Context"}]},
        {
            "type": "paragraph",
            "content": [
                {"type": "text", "text": f"{title}. Raised by "},
                {"type": "mention", "attrs": {"id": mention["accountId"], "text": "@" + mention["displayName"]}},
                {"type": "text", "text": " — see "},
                {
                    "type": "text",
                    "text": "the spec",
                    "marks": [{"type": "link", "attrs": {"href": "https://example.com/spec"}}],
                },
                {"type": "text", "text": " for "},
                {"type": "text", "text": "details", "marks": [{"type": "strong"}]},
                {"type": "text", "text": "."},
            ],
        },
    ]
    if rng.random() < 0.5:
        content.append(
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [{"type": "paragraph", "content": [{"type": "text", "text": f"step {k}"}]}],
                    }
                    for k in range(1, rng.randint(2, 4))
                ],
            }
        )
    if rng.random() < 0.2:
        content.append(
            {"type": "codeBlock", "attrs": {"language": "python"}, "content": [{"type": "text", "text": "retry()"}]}
        )
    return {"type": "doc", "version": 1, "content": content}


class FakeJira:
    """The fake Jira: state, control methods and the ASGI `app` (with fault middleware)."""

    def __init__(
        self,
        issues: int = 1000,
        *,
        seed: int = 1,
        projects: tuple[str, ...] = ("PROJ", "OPS"),
        time_zone: str = "Europe/Berlin",
        base_url: str = "https://fake-jira.example",
        email: str = "bot@example.com",
        api_token: str = "jira-token",  # noqa: S107 - a fake's test credential
        bearer_token: str | None = None,
        start: datetime = datetime(2025, 1, 6, 8, 0, tzinfo=UTC),
        step_seconds: float = 17.0,
        id_offset: int = 10000,
        max_page: int = 100,
        faults: FaultPlan | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.n = issues
        self.seed = seed
        self.projects = projects
        self.time_zone = time_zone
        self.zone = ZoneInfo(time_zone)
        self.base_url = base_url
        self.email = email
        self.api_token = api_token
        self.bearer_token = bearer_token
        self.start_ms = _ms(start)
        self.step_ms = int(step_seconds * 1000)
        self.id_offset = id_offset
        self.max_page = max_page
        self.stuck_paging = False
        self.now = start + timedelta(milliseconds=self.step_ms * (issues + 1)) + timedelta(hours=1)
        self.faults = faults or FaultPlan()
        self.log = log or RequestLog()
        self._changed: dict[int, tuple[int, dict[str, Any]]] = {}  # idx -> (updated_ms, field overrides)
        self._changed_keys: list[tuple[int, int]] = []  # sorted (updated_ms, idx) of changed/added issues
        self._deleted: set[int] = set()
        self._last_idx = issues
        self._delivery = itertools.count(1)
        self._sprints: dict[tuple[str, int, bool], dict[str, Any]] = {}
        self._remote_links: dict[int, list[dict[str, Any]]] = {}  # idx -> remote link objects
        self._remote_link_ids = itertools.count(10000)
        self._users = [
            {
                "accountId": f"5b10a2844c20165700ede{k:03d}",
                "accountType": "atlassian",
                "active": True,
                "displayName": f"{_FIRST[k % len(_FIRST)]} {_LAST[k % len(_LAST)]}",
                "timeZone": time_zone,
                **(
                    {"emailAddress": f"{_FIRST[k % len(_FIRST)].lower()}.{_LAST[k % len(_LAST)].lower()}@example.com"}
                    if k % 4
                    else {}
                ),
            }
            for k in range(20)
        ]
        for user in self._users:
            user["self"] = f"{base_url}{API}/user?accountId={user['accountId']}"
        self.app = FaultInjectionMiddleware(self._starlette(), self.faults, self.log)

    # -------------------------------------------------------- ids and times

    def native_id(self, idx: int) -> str:
        return str(self.id_offset + idx)

    def _idx(self, id_or_key: str) -> int | None:
        if id_or_key.isdigit():
            idx = int(id_or_key) - self.id_offset
        else:
            project, _, number = id_or_key.rpartition("-")
            if not number.isdigit() or project not in self.projects:
                return None
            idx = int(number)
            if self._project(idx) != project:
                return None
        if idx < 1 or idx > self._last_idx or idx in self._deleted:
            return None
        return idx

    def _project(self, idx: int) -> str:
        return self.projects[idx % len(self.projects)]

    def _id_and_key(self, idx: int) -> dict[str, Any]:
        """`{id, key}` of an issue, as `_issue` spells them, without building the issue."""
        return {"id": self.native_id(idx), "key": f"{self._project(idx)}-{idx}"}

    def _updated_ms(self, idx: int) -> int:
        changed = self._changed.get(idx)
        return changed[0] if changed else self.start_ms + idx * self.step_ms

    def _tick(self) -> int:
        self.now += timedelta(seconds=1)
        return _ms(self.now)

    def _fmt(self, ms: int) -> str:
        """Jira's timestamp format, in the API user's zone: 2025-01-06T09:00:17.000+0100."""
        when = datetime.fromtimestamp(ms / 1000, tz=self.zone)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + when.strftime("%z")

    # -------------------------------------------------------- control methods

    def ids(self) -> list[str]:
        return [self.native_id(i) for i in range(1, self._last_idx + 1) if i not in self._deleted]

    @property
    def count(self) -> int:
        return self._last_idx - len(self._deleted)

    def record(self, native_id: str) -> dict[str, Any] | None:
        idx = self._idx(native_id)
        return None if idx is None else self._issue(idx)

    def edit(self, native_id: str, **changes: Any) -> dict[str, Any]:
        """Change fields of an issue (default: a new summary); bumps `updated` to `now`."""
        idx = self._idx(native_id)
        if idx is None:
            raise KeyError(native_id)
        old = self._changed.pop(idx, None)
        overrides = dict(old[1]) if old else {}
        if old:
            self._changed_keys.remove((old[0], idx))
        overrides.update(changes or {"summary": f"Edited issue {idx} at {self.now.isoformat()}"})
        ms = self._tick()
        self._changed[idx] = (ms, overrides)
        bisect.insort(self._changed_keys, (ms, idx))
        return self._issue(idx)

    def delete(self, native_id: str) -> None:
        idx = self._idx(native_id)
        if idx is None:
            raise KeyError(native_id)
        self._deleted.add(idx)

    def add(self, **changes: Any) -> dict[str, Any]:
        self._last_idx += 1
        idx = self._last_idx
        ms = self._tick()
        self._changed[idx] = (ms, dict(changes))
        bisect.insort(self._changed_keys, (ms, idx))
        return self._issue(idx)

    def set_remote_links(
        self,
        native_id: str,
        links: list[str | dict[str, Any]],
        *,
        relationship: str | None = None,
        touch: bool = True,
    ) -> list[dict[str, Any]]:
        """Replace an issue's remote links. A URL becomes the object Jira stores for a link made
        through the API/UI (`{id, self, globalId, relationship?, object: {url, title, icon},
        application?}`, with GitHub's application for github.com URLs); a dict is taken as the
        whole remote link object. `relationship` applies to every URL given (None: no
        relationship, as for a plain web link). `touch` bumps `updated`, so an incremental sync
        sees the issue again (Jira's own behaviour here is not documented: a full resync is the
        safe way to pick up remote links added without any other change)."""
        idx = self._idx(native_id)
        if idx is None:
            raise KeyError(native_id)
        key = self._issue(idx)["key"]
        made: list[dict[str, Any]] = []
        for link in links:
            if isinstance(link, dict):
                made.append(dict(link))
                continue
            link_id = next(self._remote_link_ids)
            github = _GITHUB_ISSUE.match(link)
            site = _SITE.match(link)
            obj: dict[str, Any] = {
                "url": link,
                "title": f"{github['repo']}#{github['num']}" if github else link,
                "icon": {"url16x16": f"{site.group(0)}/favicon.ico", "title": site["host"]} if site else {},
            }
            made_link: dict[str, Any] = {
                "id": link_id,
                "self": f"{self.base_url}{API}/issue/{key}/remotelink/{link_id}",
                "globalId": f"system={link}",
                "object": obj,
            }
            if relationship is not None:
                made_link["relationship"] = relationship
            if github:
                made_link["application"] = {"type": "com.github.integration", "name": "GitHub"}
            made.append(made_link)
        if made:
            self._remote_links[idx] = made
        else:
            self._remote_links.pop(idx, None)
        if touch:
            old = self._changed.pop(idx, None)
            if old:
                self._changed_keys.remove((old[0], idx))
            ms = self._tick()
            self._changed[idx] = (ms, dict(old[1]) if old else {})
            bisect.insort(self._changed_keys, (ms, idx))
        return [dict(link) for link in made]

    def next_project(self) -> str:
        """The project the next `add` lands in (issues are spread over projects round-robin)."""
        return self._project(self._last_idx + 1)

    def set_times(self, native_id: str, *, created: datetime, updated: datetime) -> None:
        """Place a record in time (a dataset built for a given date, e.g. the demo's): its
        creation and last update. History this fake serves is spread between the two."""
        idx = self._idx(native_id)
        if idx is None:
            raise KeyError(native_id)
        old = self._changed.pop(idx, None)
        overrides = dict(old[1]) if old else {}
        if old:
            self._changed_keys.remove((old[0], idx))
        overrides["created"] = self._fmt(_ms(created))
        self._changed[idx] = (_ms(updated), overrides)
        bisect.insort(self._changed_keys, (_ms(updated), idx))

    def set_clock(self, now: datetime) -> None:
        """Move the clock edits and additions tick from (never backwards)."""
        self.now = max(self.now, now)

    def remote_links(self, native_id: str) -> list[dict[str, Any]]:
        idx = self._idx(native_id)
        return [] if idx is None else [dict(link) for link in self._remote_links.get(idx, [])]

    def updated_at(self, record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(record["fields"]["updated"]).astimezone(UTC)

    def webhook(self, kind: WebhookKind, native_id: str, *, secret: str | None) -> tuple[dict[str, str], bytes]:
        """A Jira webhook delivery about an issue, shaped like Jira Cloud's (v2 issue bean)."""
        idx = int(native_id) - self.id_offset
        issue = self._issue(idx)
        v2 = {**issue, "self": f"{self.base_url}/rest/api/2/issue/{issue['id']}"}
        v2["fields"] = {**issue["fields"], "description": f"h2. Context\n{issue['fields']['summary']}"}
        ts = self._tick()
        user = self._users[0]
        body: dict[str, Any]
        if kind == "upsert":
            body = {
                "timestamp": ts,
                "webhookEvent": "jira:issue_updated",
                "issue_event_type_name": "issue_generic",
                "user": user,
                "issue": v2,
                "changelog": {"id": str(ts), "items": [{"field": "summary", "fieldtype": "jira"}]},
            }
        elif kind == "delete":
            body = {"timestamp": ts, "webhookEvent": "jira:issue_deleted", "user": user, "issue": v2}
        elif kind == "refetch":
            comment = {"id": str(ts), "body": "A comment", "author": user, "created": self._fmt(ts)}
            body = {"timestamp": ts, "webhookEvent": "comment_created", "comment": comment, "issue": v2}
        else:
            body = {
                "timestamp": ts,
                "webhookEvent": "project_updated",
                "project": {"id": "10000", "key": self.projects[0], "name": "Project"},
            }
        raw = orjson.dumps(body)
        headers = {
            "Content-Type": "application/json",
            "X-Atlassian-Webhook-Identifier": f"fake-{self.seed}-{next(self._delivery)}",
        }
        if secret is not None:
            headers["X-Hub-Signature"] = "sha256=" + hmac_sha256_hex(secret, raw)
        return headers, raw

    # -------------------------------------------------------- generation

    def _issue(self, idx: int) -> dict[str, Any]:
        rng = random.Random(self.seed * 1_000_003 + idx)
        project = self._project(idx)
        native = self.native_id(idx)
        key = f"{project}-{idx}"
        updated_ms = self._updated_ms(idx)
        created_ms = self.start_ms + idx * self.step_ms - rng.randint(0, 30 * 86_400_000)
        kind = (
            "Epic"
            if idx % 50 == 1
            else rng.choices(["Story", "Task", "Bug", "Sub-task", "Idea"], weights=[50, 25, 15, 8, 2])[0]
        )
        if kind == "Sub-task" and idx % 50 == 2:
            kind = "Task"
        status_id, status_name, category = _STATUSES[rng.randrange(len(_STATUSES))]
        priority_id, priority_name = _PRIORITIES[rng.randrange(len(_PRIORITIES))]
        reporter = self._users[rng.randrange(len(self._users))]
        assignee = self._users[rng.randrange(len(self._users))] if rng.random() < 0.8 else None
        title = f"{rng.choice(_WORDS).capitalize()} {rng.choice(_WORDS)} {rng.choice(_WORDS)} ({key})"
        type_id, subtask, level = _TYPES[kind]
        resolution = None
        resolved_ms = None
        if category == "done":
            res_id, res_name = _RESOLUTIONS[0] if rng.random() < 0.8 else _RESOLUTIONS[rng.randrange(1, 3)]
            resolution = {"self": f"{self.base_url}{API}/resolution/{res_id}", "id": res_id, "name": res_name}
            resolved_ms = updated_ms
        epic_idx = idx - ((idx - 1) % 50)
        parent = None
        epic_link = None
        if kind == "Sub-task":
            parent = self._ref(idx - 1)
        elif kind != "Epic" and epic_idx >= 1 and epic_idx != idx:
            if rng.random() < 0.5:
                parent = self._ref(epic_idx)
            else:
                epic_link = f"{self._project(epic_idx)}-{epic_idx}"
        sprint_no = 1 + idx // 200
        fields: dict[str, Any] = {
            "summary": title,
            "description": _adf(rng, title, reporter) if rng.random() < 0.9 else None,
            "status": {
                "self": f"{self.base_url}{API}/status/{status_id}",
                "id": status_id,
                "name": status_name,
                "statusCategory": _CATEGORIES[category],
            },
            "priority": {
                "self": f"{self.base_url}{API}/priority/{priority_id}",
                "id": priority_id,
                "name": priority_name,
            },
            "issuetype": {
                "self": f"{self.base_url}{API}/issuetype/{type_id}",
                "id": type_id,
                "name": kind,
                "subtask": subtask,
                "hierarchyLevel": level,
            },
            "project": {
                "self": f"{self.base_url}{API}/project/{project}",
                "id": str(10000 + self.projects.index(project)),
                "key": project,
                "name": f"{project.title()} project",
                "projectTypeKey": "software",
            },
            "assignee": assignee,
            "reporter": reporter,
            "labels": sorted(rng.sample(_LABELS, rng.randint(0, 3))),
            "fixVersions": (
                [
                    {
                        "self": f"{self.base_url}{API}/version/{10100 + sprint_no}",
                        "id": str(10100 + sprint_no),
                        "name": f"1.{sprint_no}",
                        "archived": False,
                        "released": category == "done",
                        "releaseDate": (
                            datetime.fromtimestamp(self.start_ms / 1000, UTC).date() + timedelta(days=14 * sprint_no)
                        ).isoformat(),
                    }
                ]
                if rng.random() < 0.4
                else []
            ),
            "issuelinks": (
                [
                    {
                        "id": str(20000 + idx),
                        "type": {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                        "outwardIssue": self._ref(idx - 3),
                    }
                ]
                if idx > 3 and rng.random() < 0.15
                else []
            ),
            "components": [],
            "subtasks": [],
            "created": self._fmt(created_ms),
            "updated": self._fmt(updated_ms),
            "resolution": resolution,
            "resolutiondate": self._fmt(resolved_ms) if resolved_ms else None,
            "duedate": (
                datetime.fromtimestamp(updated_ms / 1000, UTC).date() + timedelta(days=rng.randint(3, 40))
            ).isoformat()
            if rng.random() < 0.3
            else None,
            CF_STORY_POINTS: float(rng.choice([1, 2, 3, 5, 8, 13])) if kind in ("Story", "Bug", "Task") else None,
            CF_SPRINT: [self._sprint(project, sprint_no, category == "done")]
            if kind != "Epic" and kind != "Idea"
            else None,
            CF_EPIC_LINK: epic_link,
            CF_START_DATE: None,
            CF_RANK: f"0|i{idx:05d}:",
            CF_REACH: float(rng.randint(100, 5000)) if kind in ("Idea", "Epic") else None,
            CF_IMPACT: float(rng.choice([0.25, 0.5, 1, 2, 3])) if kind in ("Idea", "Epic") else None,
            CF_CONFIDENCE: float(rng.choice([50, 80, 100])) if kind in ("Idea", "Epic") else None,
            CF_EFFORT: float(rng.randint(1, 10)) if kind in ("Idea", "Epic") else None,
        }
        fields["comment"], fields["worklog"] = self._activity(idx, native, created_ms, updated_ms)
        if parent is not None:
            fields["parent"] = parent
        changed = self._changed.get(idx)
        if changed:
            fields.update(changed[1])
        return {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": native,
            "self": f"{self.base_url}{API}/issue/{native}",
            "key": key,
            "fields": fields,
        }

    def _activity(
        self, idx: int, native: str, created_ms: int, updated_ms: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The issue's `comment` and `worklog` fields as Jira v3 returns them in a search:
        {comments|worklogs, startAt, maxResults, total}, bodies in ADF, authors as full user
        beans. 0-2 comments and 0-1 worklog (about 1 KB of a 3.8 KB issue on average, as a
        working team's issues carry). Their own random stream, so the other fields do not move.
        https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-comments/
        https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issue-worklogs/
        """
        rng = random.Random(self.seed * 2_000_003 + idx)
        span = max(updated_ms - created_ms, 1000)
        issue_url = f"{self.base_url}{API}/issue/{native}"
        comments = []
        for k in range(rng.choice((0, 0, 0, 1, 1, 2))):
            author = self._users[rng.randrange(len(self._users))]
            when = self._fmt(created_ms + span * (k + 1) // 5)
            cid = str(idx * 10 + k)
            text = (
                f"{rng.choice(_WORDS).capitalize()} {rng.choice(_WORDS)}: checked on staging, {rng.choice(_WORDS)} ok."
            )
            comments.append(
                {
                    "self": f"{issue_url}/comment/{cid}",
                    "id": cid,
                    "author": author,
                    "body": {
                        "type": "doc",
                        "version": 1,
                        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
                    },
                    "updateAuthor": author,
                    "created": when,
                    "updated": when,
                    "jsdPublic": True,
                }
            )
        worklogs = []
        for k in range(rng.choice((0, 0, 1))):
            author = self._users[rng.randrange(len(self._users))]
            when = self._fmt(created_ms + span * (k + 1) // 4)
            seconds = 1800 * rng.randint(1, 16)
            wid = str(idx * 10 + k)
            worklogs.append(
                {
                    "self": f"{issue_url}/worklog/{wid}",
                    "author": author,
                    "updateAuthor": author,
                    "comment": {
                        "type": "doc",
                        "version": 1,
                        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Pairing and review"}]}],
                    },
                    "created": when,
                    "updated": when,
                    "started": when,
                    "timeSpent": f"{seconds // 3600}h {seconds % 3600 // 60}m"
                    if seconds % 3600
                    else f"{seconds // 3600}h",
                    "timeSpentSeconds": seconds,
                    "id": wid,
                    "issueId": native,
                }
            )
        comment = {
            "comments": comments,
            "self": f"{issue_url}/comment",
            "maxResults": len(comments),
            "total": len(comments),
            "startAt": 0,
        }
        worklog = {"startAt": 0, "maxResults": 20, "total": len(worklogs), "worklogs": worklogs}
        return comment, worklog

    def _sprint(self, project: str, number: int, closed: bool) -> dict[str, Any]:
        """Sprints repeat across issues: built once each (shared dicts, serialised per page)."""
        key = (project, number, closed)
        sprint = self._sprints.get(key)
        if sprint is None:
            sprint = self._sprints[key] = {
                "id": number,
                "name": f"{project} Sprint {number}",
                "state": "closed" if closed else "active",
                "boardId": 1,
                "goal": "",
                "startDate": self._fmt(self.start_ms + (number - 1) * 14 * 86_400_000),
                "endDate": self._fmt(self.start_ms + number * 14 * 86_400_000),
            }
        return sprint

    def _ref(self, idx: int) -> dict[str, Any]:
        """The short issue bean Jira nests for parents and links."""
        rng = random.Random(self.seed * 1_000_003 + idx)
        return {
            "id": self.native_id(idx),
            "key": f"{self._project(idx)}-{idx}",
            "self": f"{self.base_url}{API}/issue/{self.native_id(idx)}",
            "fields": {
                "summary": f"Issue {idx}",
                "status": {"name": _STATUSES[rng.randrange(len(_STATUSES))][1]},
                "issuetype": {"name": "Epic" if idx % 50 == 1 else "Story"},
            },
        }

    # -------------------------------------------------------- search

    def _parse_jql(self, jql: str) -> tuple[set[str] | None, int | None, str]:
        """Scope (`project in (...)` / `project = X`), `updated >= "..."`, and ORDER BY.

        Anything else is answered 400, as Jira answers JQL it cannot parse, so a connector
        that emits JQL this fake does not understand fails loudly instead of passing.
        """
        order = ""
        match = _JQL_ORDER.search(jql)
        if match:
            order = re.sub(r"\s+", " ", match.group("order").strip().lower())
            jql = jql[: match.start()]
        rest = jql
        since_ms: int | None = None
        match = _JQL_UPDATED.search(rest)
        if match:
            since_ms = self._jql_time(match.group("when"))
            rest = rest[: match.start()] + rest[match.end() :]
        projects: set[str] | None = None
        match = _JQL_PROJECT_IN.search(rest) or _JQL_PROJECT_EQ.search(rest)
        if match:
            raw = match.groupdict().get("keys") or match.group("key")
            projects = {p.strip().strip("\"'") for p in raw.split(",") if p.strip()}
            rest = rest[: match.start()] + rest[match.end() :]
        leftover = re.sub(r"\bAND\b|[()\s]", "", rest, flags=re.IGNORECASE)
        if leftover:
            raise ValueError(f"The fake Jira does not understand this JQL: {leftover!r}")
        if order not in ("", "updated asc, id asc", "updated asc", "id asc", "key asc"):
            raise ValueError(f"The fake Jira does not support ORDER BY {order!r}")
        return projects, since_ms, "id" if order in ("id asc", "key asc") else "updated"

    def _jql_time(self, text: str) -> int:
        for fmt in _JQL_DATE_FORMATS:
            try:
                local = datetime.strptime(text, fmt)
            except ValueError:
                continue
            return _ms(local.replace(tzinfo=self.zone))
        raise ValueError(f"Date value '{text}' for field 'updated' is invalid.")

    def _ordered(self, order: str, after: tuple[int, int] | None, since_ms: int | None) -> Iterator[tuple[int, int]]:
        """Keys `(sort value, idx)` of live issues in order, strictly after `after`."""
        if order == "id":
            first = after[1] + 1 if after else 1
            for idx in range(max(1, first), self._last_idx + 1):
                if idx not in self._deleted:
                    yield (idx, idx)
            return
        bounds = [(since_ms - 1, 1 << 62)] if since_ms is not None else []  # key > bound <=> updated >= since
        if after is not None:
            bounds.append(after)
        lower = max(bounds) if bounds else (-1, 0)
        # generated, never-changed issues: updated = start + idx*step, increasing with idx
        first = max(1, -(-(lower[0] - self.start_ms) // self.step_ms))

        def base() -> Iterator[tuple[int, int]]:
            for idx in range(first, self.n + 1):
                key = (self.start_ms + idx * self.step_ms, idx)
                if key <= lower or idx in self._changed or idx in self._deleted:
                    continue
                yield key

        def changed() -> Iterator[tuple[int, int]]:
            pos = bisect.bisect_right(self._changed_keys, lower)
            for key in self._changed_keys[pos:]:
                if key[1] not in self._deleted:
                    yield key

        yield from heapq.merge(base(), changed())

    @staticmethod
    def _token(kind: str, key: tuple[int, int]) -> str:
        return base64.urlsafe_b64encode(f"{kind}:{key[0]}:{key[1]}".encode()).decode().rstrip("=")

    @staticmethod
    def _untoken(token: str) -> tuple[str, tuple[int, int]]:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, a, b = raw.split(":")
        return kind, (int(a), int(b))

    def _select(self, issue: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        if fields is None or "*all" in fields or "*navigable" in fields:
            return issue
        wanted = [f for f in fields if f not in ("id", "key")]
        if not wanted:
            return {"id": issue["id"]} if "key" not in fields else {"id": issue["id"], "key": issue["key"]}
        source = issue["fields"]
        return {**issue, "fields": {f: source[f] for f in wanted if f in source}}

    # -------------------------------------------------------- HTTP

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if self.bearer_token is not None and header == f"Bearer {self.bearer_token}":
            return True
        basic = base64.b64encode(f"{self.email}:{self.api_token}".encode()).decode()
        return header == f"Basic {basic}"

    @staticmethod
    def _json(data: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type="application/json")

    def _unauthorised(self) -> Response:
        return self._json({"errorMessages": ["Client must be authenticated to access this resource."]}, 401)

    async def _myself(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        me = {
            "self": f"{self.base_url}{API}/user?accountId=5b10ac8d82e05b22cc7d4ef5",
            "accountId": "5b10ac8d82e05b22cc7d4ef5",
            "accountType": "atlassian",
            "emailAddress": self.email,
            "displayName": "OpsHub bot",
            "active": True,
            "timeZone": self.time_zone,
            "locale": "en_US",
        }
        return self._json(me)

    async def _fields(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        return self._json(self.field_catalog())

    def field_catalog(self) -> list[dict[str, Any]]:
        """What `GET /rest/api/3/field` answers: the system fields and this site's custom fields."""
        catalog: list[dict[str, Any]] = [
            {
                "id": fid,
                "key": fid,
                "name": name,
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [fid],
                "schema": {"type": typ, "system": fid},
            }
            for fid, name, typ in _SYSTEM_FIELDS
        ]
        for fid, name, typ, custom in _CUSTOM_FIELDS:
            number = int(fid.rsplit("_", 1)[1])
            catalog.append(
                {
                    "id": fid,
                    "key": fid,
                    "name": name,
                    "untranslatedName": name,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{number}]", name],
                    "schema": {"type": typ, "custom": custom, "customId": number},
                }
            )
        return catalog

    async def _search(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        params = request.query_params
        try:
            projects, since_ms, order = self._parse_jql(params.get("jql", ""))
        except ValueError as exc:
            return self._json({"errorMessages": [str(exc)], "errors": {}}, 400)
        fields_param = params.get("fields")
        fields = [f.strip() for f in fields_param.split(",")] if fields_param else ["id"]
        id_only = all(f in ("id", "key") for f in fields)
        limit = min(int(params.get("maxResults", "50")), 5000 if id_only else self.max_page)
        token = params.get("nextPageToken")
        after: tuple[int, int] | None = None
        if token:
            try:
                kind, after = self._untoken(token)
            except (ValueError, UnicodeDecodeError):
                return self._json({"errorMessages": ["Invalid nextPageToken."], "errors": {}}, 400)
            if kind != order:
                return self._json({"errorMessages": ["nextPageToken does not match the query."], "errors": {}}, 400)
        keys = self._ordered(order, after, since_ms)
        if projects is not None:
            keys = (k for k in keys if self._project(k[1]) in projects)
        page = list(itertools.islice(keys, limit + 1))
        more = len(page) > limit
        page = page[:limit]
        expand = _expand(params.get("expand"))
        if id_only and not expand:
            # Not built whole only to be cut down: 5,000 issues would hold up the fake's one loop
            # for most of a second, and every request waiting meanwhile (Jira serves these fast).
            issues = [self._select(self._id_and_key(k[1]), fields) for k in page]
        else:
            issues = [self._expanded(self._select(self._issue(k[1]), fields), expand) for k in page]
        body: dict[str, Any] = {"issues": issues}
        if self.stuck_paging and (page or token):
            # Stuck: an answer to a token carries that same token again, even past the end.
            body["nextPageToken"] = token or self._token(order, page[-1])
        elif more:
            body["nextPageToken"] = self._token(order, page[-1])
        body["isLast"] = "nextPageToken" not in body
        return self._json(body)

    async def _get_issue(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        idx = self._idx(request.path_params["id_or_key"])
        if idx is None:
            return self._json(
                {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}},
                404,
            )
        fields_param = request.query_params.get("fields")
        fields = [f.strip() for f in fields_param.split(",")] if fields_param else None
        expand = _expand(request.query_params.get("expand"))
        return self._json(self._expanded(self._select(self._issue(idx), fields), expand))

    async def _bulk_fetch(self, request: Request) -> Response:
        """`POST /issue/bulkfetch {"issueIdsOrKeys": [...], "fields": [...], "expand": [...]}`:
        the issues found, in ascending id order as Jira returns them; ids that match no issue
        (gone, or hidden from the user) are left out without an error, as Jira does. At most
        100 ids, or 1,000 when the request is shaped to be served cheaply (explicit fields, none
        of them many-valued like comments or worklogs, no costly expand); more is a 400.
        https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-bulkfetch-post
        """
        if not self._authorised(request):
            return self._unauthorised()
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return self._json({"errorMessages": ["Invalid request payload."], "errors": {}}, 400)
        ids = body.get("issueIdsOrKeys") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return self._json({"errorMessages": ["issueIdsOrKeys must list issue ids or keys."], "errors": {}}, 400)
        fields = body.get("fields") or None
        expand = {str(e) for e in body.get("expand") or ()}
        cheap = (
            fields is not None
            and 0 < len(fields) <= 100
            and not {"*all", "*navigable", "comment", "worklog", "attachment"} & set(fields)
            and not {"changelog", "editmeta", "operations", "renderedFields", "transitions"} & expand
        )
        if len(ids) > (1000 if cheap else 100):
            return self._json(
                {"errorMessages": [f"Too many issues requested ({len(ids)}): at most 100 here."], "errors": {}}, 400
            )
        found = sorted({i for i in map(self._idx, ids) if i is not None}, key=lambda i: int(self.native_id(i)))
        issues = [self._expanded(self._select(self._issue(idx), fields), expand) for idx in found]
        return self._json({"expand": "schema,names", "issues": issues, "issueErrors": []})

    def _expanded(self, issue: dict[str, Any], expand: set[str]) -> dict[str, Any]:
        """`expand=changelog`: the issue's most recent changelog entries, newest first, at most
        100, as `{startAt, maxResults, total, histories}` (the search and get-issue shape;
        the paged `/changelog` endpoint has the rest). Other expand values are ignored."""
        if "changelog" not in expand:
            return issue
        histories = self.changelog(str(issue["id"]))[::-1][:100]
        total = len(histories)
        return {**issue, "changelog": {"startAt": 0, "maxResults": total, "total": total, "histories": histories}}

    async def _get_remote_links(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        idx = self._idx(request.path_params["id_or_key"])
        if idx is None:
            return self._json(
                {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}},
                404,
            )
        links = self._remote_links.get(idx, [])
        global_id = request.query_params.get("globalId")
        if global_id is not None:
            hit = next((link for link in links if link.get("globalId") == global_id), None)
            if hit is None:
                return self._json({"errorMessages": ["No remote link with the given global ID."], "errors": {}}, 404)
            return self._json(hit)
        return self._json(links)

    # -------------------------------------------------------- status history

    def changelog(self, native_id: str) -> list[dict[str, Any]]:
        """The issue's changelog entries, oldest first, as `GET /issue/{id}/changelog` pages them:
        a summary edit (not a status change), then one status change per step of the default
        workflow (To Do -> In Progress -> In Review -> Done) up to the issue's status, spread
        evenly between `created` and `updated` (the move to Done sets the issue's resolution in
        the same entry). A Backlog issue has no status change.
        https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-changelog-get
        """
        idx = self._idx(native_id)
        if idx is None:
            raise KeyError(native_id)
        fields = self._issue(idx)["fields"]
        created = _parse_jira_ms(fields["created"])
        updated = max(_parse_jira_ms(fields["updated"]), created + 1000)
        walk = [status for status in _STATUSES if status[1] != "Backlog"]
        current = fields["status"]["name"]
        steps = [] if current == "Backlog" else walk[: 1 + [s[1] for s in walk].index(current)]
        changes = list(itertools.pairwise(steps))
        slots = len(changes) + 1
        author = self._users[idx % len(self._users)]
        resolution = fields.get("resolution")

        def resolved(status_name: str) -> list[dict[str, Any]]:
            # The move to Done sets the resolution in the same history entry, as Jira's
            # workflow post function does.
            if status_name != "Done" or not resolution:
                return []
            return [
                {
                    "field": "resolution",
                    "fieldtype": "jira",
                    "fieldId": "resolution",
                    "from": None,
                    "fromString": None,
                    "to": resolution["id"],
                    "toString": resolution["name"],
                }
            ]

        entries: list[dict[str, Any]] = [
            {
                "id": str(idx * 100),
                "author": author,
                "created": self._fmt(created + (updated - created) // (slots + 1)),
                "items": [
                    {
                        "field": "summary",
                        "fieldtype": "jira",
                        "fieldId": "summary",
                        "from": None,
                        "fromString": "Draft",
                        "to": None,
                        "toString": fields["summary"],
                    }
                ],
            }
        ]
        for k, ((from_id, from_name, _), (to_id, to_name, _)) in enumerate(changes, start=2):
            entries.append(
                {
                    "id": str(idx * 100 + k),
                    "author": author,
                    "created": self._fmt(created + (updated - created) * k // (slots + 1)),
                    "items": [
                        {
                            "field": "status",
                            "fieldtype": "jira",
                            "fieldId": "status",
                            "from": from_id,
                            "fromString": from_name,
                            "to": to_id,
                            "toString": to_name,
                        },
                        *resolved(to_name),
                    ],
                }
            )
        return entries

    async def _statuses(self, request: Request) -> Response:
        """`GET /rest/api/3/status`: the statuses of the default workflow with their categories."""
        if not self._authorised(request):
            return self._unauthorised()
        return self._json(
            [
                {
                    "self": f"{self.base_url}{API}/status/{status_id}",
                    "description": "",
                    "iconUrl": f"{self.base_url}/images/icons/statuses/generic.png",
                    "name": name,
                    "untranslatedName": name,
                    "id": status_id,
                    "statusCategory": _CATEGORIES[category],
                }
                for status_id, name, category in _STATUSES
            ]
        )

    async def _get_changelog(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        idx = self._idx(request.path_params["id_or_key"])
        if idx is None:
            return self._json(
                {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}},
                404,
            )
        entries = self.changelog(self.native_id(idx))
        start = int(request.query_params.get("startAt") or 0)
        size = min(int(request.query_params.get("maxResults") or 100), self.max_page)
        if self.stuck_paging:
            start = 0
        page = entries[start : start + size]
        path = f"{self.base_url}{API}/issue/{self.native_id(idx)}/changelog"
        body: dict[str, Any] = {
            "self": f"{path}?startAt={start}&maxResults={size}",
            "maxResults": size,
            "startAt": start,
            "total": len(entries),
            "isLast": start + size >= len(entries) and not self.stuck_paging,
            "values": page,
        }
        if not body["isLast"]:
            body["nextPage"] = f"{path}?startAt={start + size}&maxResults={size}"
        return self._json(body)

    def _starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route(API + "/issue/{id_or_key}/changelog", self._get_changelog),
                Route(f"{API}/status", self._statuses),
                Route(f"{API}/myself", self._myself),
                Route(f"{API}/field", self._fields),
                Route(f"{API}/search/jql", self._search),
                Route(f"{API}/issue/bulkfetch", self._bulk_fetch, methods=["POST"]),
                Route(API + "/issue/{id_or_key}", self._get_issue),
                Route(API + "/issue/{id_or_key}/remotelink", self._get_remote_links),
            ]
        )


class RecordedJira(FakeJira):
    """A fake Jira that serves given issues verbatim (e.g. real captured payloads) through the
    same endpoints, honouring `fields=` as Jira does: an issue answers with only the fields
    asked for, so a connector that forgets a field the mapping reads loses it here as on a real
    site. `catalog` is the site's custom fields (`{id, name, ...}`), added to the system fields.

    Search supports the scope (`project in (...)`, matched on `fields.project.key`),
    `updated >= "..."` and `ORDER BY updated ASC, id ASC` / `id ASC`, as `FakeJira` does.
    """

    def __init__(
        self, issues: list[dict[str, Any]], *, catalog: list[dict[str, Any]] | None = None, **options: Any
    ) -> None:
        self._recorded = [orjson.loads(orjson.dumps(issue)) for issue in issues]
        projects = tuple(dict.fromkeys(self._project_key(i) for i in self._recorded)) or ("PROJ",)
        options.setdefault("projects", projects)
        super().__init__(0, **options)
        self._catalog = list(catalog or [])
        self._last_idx = len(self._recorded)

    @staticmethod
    def _project_key(issue: dict[str, Any]) -> str:
        project = (issue.get("fields") or {}).get("project")
        key = project.get("key") if isinstance(project, dict) else None
        return str(key) if key else str(issue.get("key", "PROJ")).rpartition("-")[0] or "PROJ"

    def field_catalog(self) -> list[dict[str, Any]]:
        system = [entry for entry in super().field_catalog() if not entry["custom"]]
        return [*system, *self._catalog]

    def native_id(self, idx: int) -> str:
        return str(self._recorded[idx - 1]["id"])

    def _idx(self, id_or_key: str) -> int | None:
        for idx, issue in enumerate(self._recorded, start=1):
            if id_or_key in (str(issue.get("id")), str(issue.get("key"))) and idx not in self._deleted:
                return idx
        return None

    def _project(self, idx: int) -> str:
        return self._project_key(self._recorded[idx - 1])

    def _issue(self, idx: int) -> dict[str, Any]:
        issue: dict[str, Any] = orjson.loads(orjson.dumps(self._recorded[idx - 1]))
        return issue

    def _id_and_key(self, idx: int) -> dict[str, Any]:
        issue = self._recorded[idx - 1]
        return {"id": str(issue["id"]), "key": issue.get("key")}

    def _updated_ms(self, idx: int) -> int:
        updated = (self._recorded[idx - 1].get("fields") or {}).get("updated")
        if not isinstance(updated, str):
            return 0
        return _ms(datetime.strptime(updated, "%Y-%m-%dT%H:%M:%S.%f%z"))

    def _ordered(self, order: str, after: tuple[int, int] | None, since_ms: int | None) -> Iterator[tuple[int, int]]:
        live = [idx for idx in range(1, self._last_idx + 1) if idx not in self._deleted]
        keys = sorted((idx, idx) if order == "id" else (self._updated_ms(idx), idx) for idx in live)
        for key in keys:
            if order != "id" and since_ms is not None and key[0] < since_ms:
                continue
            if after is None or key > after:
                yield key


def main(argv: list[str] | None = None) -> None:
    """Serve a fake Jira on a loopback port until interrupted (over TLS with --tls-cert/--tls-key)."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds of latency per request")
    parser.add_argument(
        "--latency-mode",
        choices=["added", "total"],
        default="added",
        help="added: sleep, then build the answer; total: every answer takes --latency in all, build time included",
    )
    parser.add_argument("--time-zone", default="Europe/Berlin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--tls-cert", help="PEM certificate: serve https (uvicorn ssl_certfile)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert (uvicorn ssl_keyfile)")
    args = parser.parse_args(argv)
    scheme = "https" if args.tls_cert else "http"
    fake = FakeJira(
        args.issues, seed=args.seed, time_zone=args.time_zone, base_url=f"{scheme}://{args.host}:{args.port}"
    )
    total = args.latency_mode == "total"
    fake.faults.latency = 0.0 if total else args.latency
    app: Any = TotalLatency(fake.app, args.latency) if total else fake.app
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        ssl_certfile=args.tls_cert,
        ssl_keyfile=args.tls_key,
    )


if __name__ == "__main__":
    main()
