"""A light fake Redmine (REST API, 5.x JSON shapes) for the conformance suite.

Endpoints: `GET /issues.json` (generic filters `f[]`/`op[...]`/`v[...][]` for `status_id *`,
`project_id =`, `updated_on >=` and `issue_id >=`; `sort=updated_on,id` or `sort=id`;
`offset`/`limit` (max 100) with `total_count`), `GET /issues/{id}.json`,
`GET /projects/{identifier}.json` and `GET /users/current.json`.

Like the real server, a wrong `X-Redmine-API-Key` gets 401 from `/users/current.json` but
200 and an empty anonymous listing from `/issues.json`. Times have whole seconds. The real
server is exercised by tests/test_redmine_e2e.py; this fake keeps the suite fast and hermetic.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.common import FaultInjectionMiddleware, FaultPlan, RequestLog, WebhookKind

_STATUSES = [
    (1, "New", False),
    (2, "In Progress", False),
    (3, "Resolved", False),
    (5, "Closed", True),
    (6, "Rejected", True),
]
_PRIORITIES = [(1, "Low"), (2, "Normal"), (3, "High"), (4, "Urgent"), (5, "Immediate")]
_TRACKERS = [(1, "Bug"), (2, "Feature"), (3, "Support")]


def _fmt(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def _in_projects(ids: set[int]) -> Callable[[dict[str, Any]], bool]:
    return lambda issue: issue["project"]["id"] in ids


def _at_least(field: str, bound: int) -> Callable[[dict[str, Any]], bool]:
    if field == "updated_on":
        return lambda issue: _parse(issue["updated_on"]) >= bound
    return lambda issue: int(issue[field]) >= bound


class FakeRedmine:
    def __init__(
        self,
        issues: int = 200,
        *,
        seed: int = 1,
        projects: tuple[str, ...] = ("web-shop", "ops"),
        api_key: str = "redmine-key",
        base_url: str = "https://fake-redmine.example",
        start: datetime = datetime(2025, 1, 6, 8, 0, tzinfo=UTC),
        step_seconds: int = 17,
        faults: FaultPlan | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.seed = seed
        self.projects = {name: {"id": k + 1, "name": name.replace("-", " ").title()} for k, name in enumerate(projects)}
        self.api_key = api_key
        self.base_url = base_url
        self.stuck_paging = False
        self.faults = faults or FaultPlan()
        self.log = log or RequestLog()
        self._start = int(start.timestamp())
        self._step = step_seconds
        self._now = self._start + step_seconds * (issues + 1) + 3600
        self._issues: dict[int, dict[str, Any]] = {}
        self._keys: list[tuple[int, int]] = []  # sorted (updated seconds, id)
        self._last_id = 0
        for _ in range(issues):
            self._new(self._start + (self._last_id + 1) * step_seconds)
        self.app = FaultInjectionMiddleware(self._starlette(), self.faults, self.log)

    def _new(self, updated: int, **changes: Any) -> dict[str, Any]:
        self._last_id += 1
        native = self._last_id
        rng = random.Random(self.seed * 1_000_003 + native)
        identifier = list(self.projects)[native % len(self.projects)]
        status = _STATUSES[rng.randrange(len(_STATUSES))]
        tracker = _TRACKERS[rng.randrange(len(_TRACKERS))]
        priority = _PRIORITIES[rng.randrange(len(_PRIORITIES))]
        issue: dict[str, Any] = {
            "id": native,
            "project": {"id": self.projects[identifier]["id"], "name": self.projects[identifier]["name"]},
            "tracker": {"id": tracker[0], "name": tracker[1]},
            "status": {"id": status[0], "name": status[1], "is_closed": status[2]},
            "priority": {"id": priority[0], "name": priority[1]},
            "author": {"id": 1, "name": "Redmine Admin"},
            "subject": f"Issue {native}",
            "description": f"h2. Context\n\nIssue *{native}*.",
            "start_date": None,
            "due_date": None,
            "done_ratio": 0,
            "is_private": False,
            "estimated_hours": rng.choice([None, 1.5, 4.0, 8.0]),
            "total_estimated_hours": None,
            "created_on": _fmt(updated - 3600),
            "updated_on": _fmt(updated),
            "closed_on": _fmt(updated) if status[2] else None,
        }
        if native > 3 and rng.random() < 0.2:
            issue["parent"] = {"id": native - 3}
        issue.update(changes)
        self._issues[native] = issue
        bisect.insort(self._keys, (updated, native))
        return issue

    # -------------------------------------------------------- FakeTool

    def ids(self) -> list[str]:
        return [str(i) for i in sorted(self._issues)]

    def record(self, native_id: str) -> dict[str, Any] | None:
        return self._issues.get(int(native_id))

    def edit(self, native_id: str, **changes: Any) -> dict[str, Any]:
        issue = self._issues[int(native_id)]
        self._keys.remove((_parse(issue["updated_on"]), issue["id"]))
        self._now += 1
        issue.update(changes or {"subject": f"Edited {native_id} at {_fmt(self._now)}"})
        issue["updated_on"] = _fmt(self._now)
        bisect.insort(self._keys, (self._now, issue["id"]))
        return issue

    def delete(self, native_id: str) -> None:
        issue = self._issues.pop(int(native_id))
        self._keys.remove((_parse(issue["updated_on"]), issue["id"]))

    def add(self, **changes: Any) -> dict[str, Any]:
        self._now += 1
        return self._new(self._now, **changes)

    def set_times(self, native_id: str, *, created: datetime, updated: datetime) -> None:
        """Place a record in time (a dataset built for a given date, e.g. the demo's): its
        creation and last update. History this fake serves is spread between the two."""
        issue = self._issues[int(native_id)]
        self._keys.remove((_parse(issue["updated_on"]), issue["id"]))
        issue["created_on"], issue["updated_on"] = _fmt(int(created.timestamp())), _fmt(int(updated.timestamp()))
        if issue.get("closed_on"):
            issue["closed_on"] = issue["updated_on"]
        bisect.insort(self._keys, (int(updated.timestamp()), issue["id"]))

    def set_clock(self, now: datetime) -> None:
        """Move the clock edits and additions tick from (never backwards)."""
        self._now = max(self._now, int(now.timestamp()))

    def updated_at(self, record: dict[str, Any]) -> datetime:
        return datetime.fromtimestamp(_parse(record["updated_on"]), tz=UTC)

    def webhook(self, kind: WebhookKind, native_id: str, *, secret: str | None) -> tuple[dict[str, str], bytes]:
        raise NotImplementedError("Redmine sends no webhooks")

    # -------------------------------------------------------- HTTP

    @staticmethod
    def _json(data: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type="application/json")

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("x-redmine-api-key") == self.api_key

    async def _current(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response(b"", status_code=401)
        return self._json({"user": {"id": 1, "login": "admin", "firstname": "Redmine", "lastname": "Admin"}})

    async def _project(self, request: Request) -> Response:
        project = self.projects.get(request.path_params["identifier"])
        if project is None or not self._authorised(request):
            return self._json({}, 404)
        return self._json({"project": {**project, "identifier": request.path_params["identifier"]}})

    async def _issue(self, request: Request) -> Response:
        issue = self._issues.get(int(request.path_params["id"]))
        if issue is None or not self._authorised(request):
            return self._json({}, 404)
        return self._json({"issue": issue})

    async def _list(self, request: Request) -> Response:
        q = request.query_params
        limit = min(int(q.get("limit", "25")), 100)
        offset = int(q.get("offset", "0"))
        if not self._authorised(request):
            return self._json({"issues": [], "total_count": 0, "offset": offset, "limit": limit})
        tests: list[Callable[[dict[str, Any]], bool]] = []
        for field in q.getlist("f[]"):
            op = q.get(f"op[{field}]")
            values = q.getlist(f"v[{field}][]")
            if field == "status_id" and op == "*":
                continue
            if field == "project_id" and op == "=":
                tests.append(_in_projects({int(v) for v in values}))
            elif field == "updated_on" and op == ">=":
                tests.append(_at_least("updated_on", _parse(values[0])))
            elif field == "issue_id" and op == ">=":
                tests.append(_at_least("id", int(values[0])))
            else:
                return self._json({"errors": [f"fake Redmine: unsupported filter {field} {op}"]}, 422)
        if q.get("status_id") or q.get("updated_on"):
            return self._json({"errors": ["fake Redmine: use the generic filter syntax"]}, 422)
        sort = q.get("sort", "id:desc")
        if sort == "updated_on,id":
            ordered = (self._issues[k[1]] for k in self._keys)
        elif sort == "id":
            ordered = (self._issues[k] for k in sorted(self._issues))
        else:
            return self._json({"errors": [f"fake Redmine: unsupported sort {sort}"]}, 422)
        if self.stuck_paging:
            # A server (or proxy) that drops the paging parameters: always the first page.
            tests, offset = tests[:1] if q.getlist("v[project_id][]") else [], 0
        matching = [i for i in ordered if all(t(i) for t in tests)]
        page = matching[offset : offset + limit]
        return self._json({"issues": page, "total_count": len(matching), "offset": offset, "limit": limit})

    def _starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/users/current.json", self._current),
                Route("/projects/{identifier}.json", self._project),
                Route("/issues.json", self._list),
                Route("/issues/{id:int}.json", self._issue),
            ]
        )


__all__ = ["FakeRedmine"]
