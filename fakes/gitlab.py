"""A fake GitLab REST API v4 (issues) for tests and the sync benchmark.

Serves N issues spread over projects of one group (default two projects). Records are built
per request from a compact state. Endpoints (shapes follow GitLab's REST v4 docs):

- `GET /api/v4/projects/:id/issues`        `:id` numeric or URL-encoded path; `updated_after`,
                                           `order_by` (created_at/updated_at), `sort`, `state`,
                                           `page`/`per_page` (max 100) with `x-next-page`,
                                           `x-page`, `x-total`... and a `Link` header; or
                                           `pagination=keyset` with a `cursor` in `Link` only
- `GET /api/v4/groups/:id/issues`          the same across the group's projects (offset only)
- `GET /api/v4/projects/:id/issues/:iid`   one issue, 404 when unknown or deleted

Auth: `PRIVATE-TOKEN` or `Authorization: Bearer`. `rate_limit()` injects GitLab's 429 with
`Retry-After` and `RateLimit-*` headers; other faults come from `fakes.common`.

Run standalone:  python -m fakes.gitlab --issues 20000 --latency 0.05 --port 8767
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.common import FaultInjectionMiddleware, FaultPlan, RequestLog, WebhookKind

API = "/api/v4"
_LABELS = [
    "type::bug",
    "type::feature",
    "priority::high",
    "priority::low",
    "workflow::in progress",
    "workflow::backlog",
    "documentation",
]
_USERS = ["root", "eileen.lowe", "jürgen.müller", "ada", "grace", "linus"]
_WORDS = ["login", "export", "billing", "search", "sync", "webhook", "cache", "retry", "mobile", "onboarding"]


@dataclass
class _Item:
    idx: int
    project_id: int
    iid: int
    ident: int
    created_ms: int
    updated_ms: int
    changes: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False


def _iso(ms: int) -> str:
    when = datetime.fromtimestamp(ms / 1000, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _hook_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _parse_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class FakeGitLab:
    """The fake GitLab: state, control methods and the ASGI `app` (with fault middleware)."""

    def __init__(
        self,
        issues: int = 1000,
        *,
        seed: int = 1,
        group: tuple[int, str] = (7, "acme"),
        projects: tuple[tuple[int, str], ...] = ((101, "acme/api"), (102, "acme/web")),
        base_url: str = "https://fake-gitlab.example",
        token: str = "glpat-fake-token",  # noqa: S107 - a fake's test credential
        start: datetime = datetime(2025, 1, 6, 8, 0, tzinfo=UTC),
        step_seconds: float = 17.0,
        id_offset: int = 300_000,
        faults: FaultPlan | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.seed = seed
        self.group = group
        self.projects = projects
        self.base_url = base_url
        self.token = token
        self.id_offset = id_offset
        self.stuck_paging = False
        self.reopened: set[str] | None = None
        """Ids of the issues that were reopened once (their events say so); None: every third
        closed issue and every fourth open one."""
        self.sign_webhooks = True
        self.faults = faults or FaultPlan()
        self.log = log or RequestLog()
        self._start_ms = int(start.timestamp() * 1000)
        self._step_ms = int(step_seconds * 1000)
        self._items: list[_Item] = []
        self._by_id: dict[int, _Item] = {}
        self._iids = {pid: 0 for pid, _ in projects}
        self._delivery = itertools.count(1)
        for k in range(1, issues + 1):
            self._append(self._start_ms + k * self._step_ms)
        self.now_ms = self._start_ms + (issues + 1) * self._step_ms + 3_600_000
        self.app = FaultInjectionMiddleware(self._starlette(), self.faults, self.log)

    def _append(self, when_ms: int, changes: dict[str, Any] | None = None) -> _Item:
        idx = len(self._items) + 1
        pid = self.projects[idx % len(self.projects)][0]
        self._iids[pid] += 1
        item = _Item(idx, pid, self._iids[pid], self.id_offset + idx, when_ms - 86_400_000, when_ms, changes or {})
        self._items.append(item)
        self._by_id[item.ident] = item
        return item

    def _path(self, project_id: int) -> str:
        return dict(self.projects)[project_id]

    # -------------------------------------------------------- control methods

    def ids(self) -> list[str]:
        return [str(i.ident) for i in self._items if not i.deleted]

    def _item(self, native_id: str) -> _Item:
        item = self._by_id.get(int(native_id)) if native_id.isdigit() else None
        if item is None or item.deleted:
            raise KeyError(native_id)
        return item

    def record(self, native_id: str) -> dict[str, Any] | None:
        try:
            return self._issue(self._item(native_id))
        except KeyError:
            return None

    def _tick(self) -> int:
        self.now_ms += 1000
        return self.now_ms

    def edit(self, native_id: str, **changes: Any) -> dict[str, Any]:
        item = self._item(native_id)
        item.changes.update(changes or {"title": f"Edited issue {item.iid} at {_iso(self.now_ms)}"})
        item.updated_ms = self._tick()
        return self._issue(item)

    def delete(self, native_id: str) -> None:
        self._item(native_id).deleted = True

    def add(self, **changes: Any) -> dict[str, Any]:
        return self._issue(self._append(self._tick(), dict(changes)))

    def next_project(self) -> str:
        """The path of the project the next `add` lands in (issues are spread round-robin)."""
        return self.projects[(len(self._items) + 1) % len(self.projects)][1]

    def set_times(self, native_id: str, *, created: datetime, updated: datetime) -> None:
        """Place a record in time (a dataset built for a given date, e.g. the demo's): its
        creation and last update. History this fake serves is spread between the two."""
        item = self._item(native_id)
        item.created_ms, item.updated_ms = int(created.timestamp() * 1000), int(updated.timestamp() * 1000)

    def set_clock(self, now: datetime) -> None:
        """Move the clock edits and additions tick from (never backwards)."""
        self.now_ms = max(self.now_ms, int(now.timestamp() * 1000))

    def _was_reopened(self, item: _Item, every: int) -> bool:
        if self.reopened is not None:
            return str(item.ident) in self.reopened
        return item.idx % every == 0

    def updated_at(self, record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00"))

    def rate_limit(self, *, count: int = 1, retry_after: str = "2") -> None:
        """GitLab's throttle answer: 429 with Retry-After and RateLimit-* headers (reset in epoch seconds)."""
        reset = int(datetime.now(UTC).timestamp()) + int(retry_after)
        headers = {"RateLimit-Limit": "2000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)}
        self.faults.inject(429, count=count, retry_after=retry_after, headers=headers, body=b"Retry later\n")

    def webhook(self, kind: WebhookKind, native_id: str, *, secret: str | None) -> tuple[dict[str, str], bytes]:
        """A delivery as GitLab sends it: `Issue Hook` (update), `Note Hook` on the issue, or a
        `Push Hook`, with `X-Gitlab-Token` and (`sign_webhooks`) the signing-token headers keyed
        with the same secret. GitLab sends nothing when an issue is deleted: `delete` is refused."""
        if kind == "delete":
            raise NotImplementedError("GitLab sends no webhook when an issue is deleted (the sweep finds it)")
        item = self._by_id[int(native_id)]
        issue = self._issue(item)
        project = self._project(item.project_id)
        user = {"id": 1, "name": "Administrator", "username": "root", "email": "[REDACTED]"}
        if kind == "upsert":
            event = "Issue Hook"
            attrs = {
                "id": item.ident,
                "iid": item.iid,
                "project_id": item.project_id,
                "title": issue["title"],
                "description": issue["description"],
                "state": issue["state"],
                "action": "update",
                "author_id": issue["author"]["id"],
                "assignee_ids": [a["id"] for a in issue["assignees"]],
                "milestone_id": (issue["milestone"] or {}).get("id"),
                "created_at": _hook_time(item.created_ms),
                "updated_at": _hook_time(item.updated_ms),
                "closed_at": None,
                "url": issue["web_url"],
                "type": "Issue",
                "weight": issue["weight"],
                "time_estimate": 0,
                "labels": [{"id": k, "title": name} for k, name in enumerate(issue["labels"])],
            }
            body: dict[str, Any] = {
                "object_kind": "issue",
                "event_type": "issue",
                "user": user,
                "project": project,
                "object_attributes": attrs,
                "labels": attrs["labels"],
                "assignees": issue["assignees"],
                "changes": {"title": {"previous": "Old", "current": issue["title"]}},
            }
        elif kind == "refetch":
            event = "Note Hook"
            body = {
                "object_kind": "note",
                "event_type": "note",
                "user": user,
                "project_id": item.project_id,
                "project": project,
                "object_attributes": {
                    "id": 900_000 + next(self._delivery),
                    "note": "A comment",
                    "noteable_type": "Issue",
                    "noteable_id": item.ident,
                    "project_id": item.project_id,
                    "action": "create",
                },
                "issue": {"id": item.ident, "iid": item.iid, "project_id": item.project_id, "title": issue["title"]},
            }
        else:
            event = "Push Hook"
            body = {"object_kind": "push", "event_name": "push", "ref": "refs/heads/main", "project": project}
        raw = orjson.dumps(body)
        key = str(uuid.UUID(int=self.seed * 1_000_003 + next(self._delivery)))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitLab/17.6.0",
            "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": key,
            "Idempotency-Key": key,
            "X-Gitlab-Instance": self.base_url,
            "X-Gitlab-Webhook-UUID": "5a1c0dc4-0000-4000-8000-000000000001",
        }
        if secret is not None:
            headers["X-Gitlab-Token"] = secret
            if self.sign_webhooks:  # the signing token (Standard Webhooks headers), same secret here
                stamp = str(int(time.time()))
                signed = key.encode() + b"." + stamp.encode() + b"." + raw
                digest = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
                headers.update({"webhook-id": key, "webhook-timestamp": stamp, "webhook-signature": f"v1,{digest}"})
        return headers, raw

    # -------------------------------------------------------- records

    def _user(self, k: int) -> dict[str, Any]:
        name = _USERS[k % len(_USERS)]
        return {
            "id": 1 + k % len(_USERS),
            "username": name,
            "name": name.replace(".", " ").title(),
            "state": "active",
            "avatar_url": None,
            "web_url": f"{self.base_url}/{name}",
        }

    def _project(self, project_id: int) -> dict[str, Any]:
        path = self._path(project_id)
        return {
            "id": project_id,
            "name": path.rsplit("/", 1)[1],
            "path_with_namespace": path,
            "web_url": f"{self.base_url}/{path}",
            "namespace": path.split("/")[0],
        }

    def _issue(self, item: _Item) -> dict[str, Any]:
        rng = random.Random(self.seed * 1_000_003 + item.idx)
        path = self._path(item.project_id)
        closed = rng.random() < 0.35
        assignees = [self._user(rng.randrange(len(_USERS))) for _ in range(rng.choice([0, 1, 1, 2]))]
        milestone = None
        if rng.random() < 0.4:
            number = 1 + item.idx % 5
            milestone = {
                "id": 40 + number,
                "iid": number,
                "project_id": item.project_id,
                "title": f"v1.{number}",
                "description": "",
                "state": "active",
                "created_at": _iso(self._start_ms),
                "updated_at": _iso(self._start_ms),
                "due_date": datetime.fromtimestamp(self._start_ms / 1000 + number * 14 * 86_400, UTC)
                .date()
                .isoformat(),
                "start_date": None,
                "web_url": f"{self.base_url}/{path}/-/milestones/{number}",
            }
        web_url = f"{self.base_url}/{path}/-/issues/{item.iid}"
        estimate = rng.choice([0, 0, 3600, 7200])
        issue: dict[str, Any] = {
            "id": item.ident,
            "iid": item.iid,
            "project_id": item.project_id,
            "title": f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} issue {item.idx}",
            "description": f"Steps to reproduce {item.idx}:\n\n1. open the app\n2. **see** the error",
            "state": "closed" if closed else "opened",
            "created_at": _iso(item.created_ms),
            "updated_at": _iso(item.updated_ms),
            "closed_at": _iso(item.updated_ms) if closed else None,
            "closed_by": self._user(0) if closed else None,
            "labels": [name for name in _LABELS if rng.random() < 0.2],
            "milestone": milestone,
            "assignees": assignees,
            "author": self._user(item.idx),
            "type": "ISSUE",
            "assignee": assignees[0] if assignees else None,
            "user_notes_count": rng.randint(0, 9),
            "merge_requests_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "due_date": None,
            "confidential": False,
            "discussion_locked": None,
            "issue_type": "issue",
            "web_url": web_url,
            "time_stats": {
                "time_estimate": estimate,
                "total_time_spent": 0,
                "human_time_estimate": f"{estimate // 3600}h" if estimate else None,
                "human_total_time_spent": None,
            },
            "task_completion_status": {"count": 0, "completed_count": 0},
            "weight": rng.choice([None, 1, 2, 3, 5, 8]),
            "blocking_issues_count": 0,
            "has_tasks": False,
            "_links": {
                "self": f"{self.base_url}{API}/projects/{item.project_id}/issues/{item.iid}",
                "project": f"{self.base_url}{API}/projects/{item.project_id}",
            },
            "references": {"short": f"#{item.iid}", "relative": f"#{item.iid}", "full": f"{path}#{item.iid}"},
            "severity": "UNKNOWN",
            "moved_to_id": None,
            "service_desk_reply_to": None,
            "epic_iid": None,
            "epic": None,
            "iteration": None,
            "health_status": None,
        }
        issue.update(item.changes)
        return issue

    # -------------------------------------------------------- HTTP

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type="application/json", headers=headers)

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("private-token") == self.token or (
            request.headers.get("authorization") == f"Bearer {self.token}"
        )

    def _project_id(self, ref: str) -> int | None:
        ref = unquote(ref)
        for pid, path in self.projects:
            if ref == str(pid) or ref == path:
                return pid
        return None

    @staticmethod
    def _int(value: str | None, default: int) -> int:
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    def _url(self, request: Request, **changes: str) -> str:
        query = {**dict(request.query_params), **changes}
        return f"{self.base_url}{request.url.path}?{urlencode(query)}"

    def _list(self, request: Request, project_ids: set[int], keyset_allowed: bool) -> Response:
        q = request.query_params
        if q.get("order_by", "created_at") not in ("created_at", "updated_at"):
            return self._json({"error": "order_by does not have a valid value"}, 400)
        if q.get("sort", "desc") not in ("asc", "desc"):
            return self._json({"error": "sort does not have a valid value"}, 400)
        per_page = max(1, min(100, self._int(q.get("per_page"), 20)))
        items = [i for i in self._items if i.project_id in project_ids and not i.deleted]
        offset_stuck = self.stuck_paging and q.get("pagination") != "keyset"
        if q.get("updated_after") and not offset_stuck:  # stuck: the paging parameters are dropped
            try:
                after = _parse_ms(q["updated_after"])
            except ValueError:
                return self._json({"error": "updated_after is invalid"}, 400)
            items = [i for i in items if i.updated_ms >= after]
        by_updated = q.get("order_by") == "updated_at"
        items.sort(
            key=lambda i: (i.updated_ms if by_updated else i.created_ms, i.ident),
            reverse=q.get("sort", "desc") == "desc",
        )
        state = q.get("state", "all")
        if state in ("opened", "closed"):
            items = [i for i in items if self._issue(i)["state"] == state]
        if q.get("pagination") == "keyset":
            if not keyset_allowed:
                return self._json({"error": "Keyset pagination is not yet available for this type of request"}, 405)
            return self._keyset(request, items, per_page, by_updated)
        page = 1 if offset_stuck else max(1, self._int(q.get("page"), 1))
        total = len(items)
        pages = max(1, -(-total // per_page))
        chunk = [self._issue(i) for i in items[(page - 1) * per_page : page * per_page]]
        next_page = "2" if self.stuck_paging else (str(page + 1) if page < pages else "")
        links = [f'<{self._url(request, page=next_page)}>; rel="next"'] if next_page else []
        links += [
            f'<{self._url(request, page="1")}>; rel="first"',
            f'<{self._url(request, page=str(pages))}>; rel="last"',
        ]
        headers = {
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-next-page": next_page,
            "x-prev-page": str(page - 1) if page > 1 else "",
            "x-total": str(total),
            "x-total-pages": str(pages),
            "link": ", ".join(links),
        }
        return self._json(chunk, headers=headers)

    def _keyset(self, request: Request, items: list[_Item], per_page: int, by_updated: bool) -> Response:
        cursor = request.query_params.get("cursor")
        if cursor:
            try:
                sort_value, ident = (int(x) for x in base64.urlsafe_b64decode(cursor.encode()).decode().split(":"))
            except ValueError:
                return self._json({"error": "Invalid cursor"}, 400)
            desc = request.query_params.get("sort", "desc") == "desc"

            def after(i: _Item) -> bool:
                key = (i.updated_ms if by_updated else i.created_ms, i.ident)
                return key < (sort_value, ident) if desc else key > (sort_value, ident)

            items = [i for i in items if after(i)]
        chunk = items[:per_page]
        headers = {"x-per-page": str(per_page)}
        if chunk and (len(items) > per_page or self.stuck_paging):
            last = chunk[-1]
            token = f"{last.updated_ms if by_updated else last.created_ms}:{last.ident}"
            fresh = base64.urlsafe_b64encode(token.encode()).decode()
            next_cursor = cursor if self.stuck_paging and cursor else fresh
            headers["link"] = f'<{self._url(request, cursor=next_cursor)}>; rel="next"'
        return self._json([self._issue(i) for i in chunk], headers=headers)

    async def _project_issues(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._json({"message": "401 Unauthorized"}, 401)
        pid = self._project_id(request.path_params["project"])
        if pid is None:
            return self._json({"message": "404 Project Not Found"}, 404)
        return self._list(request, {pid}, keyset_allowed=True)

    async def _group_issues(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._json({"message": "401 Unauthorized"}, 401)
        ref = unquote(request.path_params["group"])
        if ref not in (str(self.group[0]), self.group[1]):
            return self._json({"message": "404 Group Not Found"}, 404)
        return self._list(request, {pid for pid, _ in self.projects}, keyset_allowed=False)

    async def _get_issue(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._json({"message": "401 Unauthorized"}, 401)
        pid = self._project_id(request.path_params["project"])
        iid = self._int(request.path_params["iid"], 0)
        item = next((i for i in self._items if i.project_id == pid and i.iid == iid and not i.deleted), None)
        if item is None:
            return self._json({"message": "404 Not found"}, 404)
        return self._json(self._issue(item))

    # -------------------------------------------------------- status history

    def state_events(self, native_id: str) -> list[dict[str, Any]]:
        """The issue's resource state events, oldest first, spread evenly between its creation
        and its last update: a closed issue was closed once (every third one closed, reopened
        and closed again); every fourth open issue was closed and reopened.
        https://docs.gitlab.com/api/resource_state_events/#list-project-issue-state-events
        """
        item = self._item(native_id)
        issue = self._issue(item)
        if issue["state"] == "closed":
            states = ["closed", "reopened", "closed"] if self._was_reopened(item, 3) else ["closed"]
        else:
            states = ["closed", "reopened"] if self._was_reopened(item, 4) else []
        span = max(item.updated_ms - item.created_ms, len(states) + 1)
        return [
            {
                "id": item.ident * 10 + k,
                "user": self._user(item.idx % len(_USERS)),
                "created_at": _iso(item.created_ms + span * k // (len(states) + 1)),
                "resource_type": "Issue",
                "resource_id": item.ident,
                "state": state,
            }
            for k, state in enumerate(states, start=1)
        ]

    async def _state_events(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._json({"message": "401 Unauthorized"}, 401)
        pid = self._project_id(request.path_params["project"])
        iid = self._int(request.path_params["iid"], 0)
        item = next((i for i in self._items if i.project_id == pid and i.iid == iid and not i.deleted), None)
        if item is None:
            return self._json({"message": "404 Not found"}, 404)
        events = self.state_events(str(item.ident))
        per_page = max(1, min(100, self._int(request.query_params.get("per_page"), 20)))
        page = 1 if self.stuck_paging else max(1, self._int(request.query_params.get("page"), 1))
        pages = max(1, -(-len(events) // per_page))
        next_page = "2" if self.stuck_paging else (str(page + 1) if page < pages else "")
        headers = {
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-next-page": next_page,
            "x-total": str(len(events)),
        }
        return self._json(events[(page - 1) * per_page : page * per_page], headers=headers)

    def _starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route(API + "/projects/{project:path}/issues/{iid:int}/resource_state_events", self._state_events),
                Route(API + "/projects/{project:path}/issues/{iid:int}", self._get_issue),
                Route(API + "/projects/{project:path}/issues", self._project_issues),
                Route(API + "/groups/{group:path}/issues", self._group_issues),
            ]
        )


def main(argv: list[str] | None = None) -> None:
    """Serve a fake GitLab on a loopback port until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    args = parser.parse_args(argv)
    fake = FakeGitLab(args.issues, seed=args.seed, base_url=f"http://{args.host}:{args.port}")
    fake.faults.latency = args.latency
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
