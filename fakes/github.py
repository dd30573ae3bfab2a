"""A fake GitHub REST API (issues) for tests and the sync benchmark.

Serves N issues spread over repositories (default two), with pull requests mixed in as the
real issues list does (items with a `pull_request` key, which connectors must skip). Records
are built per request from a compact state, so 20,000 issues stay cheap. Endpoints (shapes
follow GitHub's REST API, version 2022-11-28):

- `GET /repos/{owner}/{repo}/issues`          `state`, `since`, `sort`, `direction`, `per_page`
                                              (max 100), `page`; `Link` header (next/last/...)
- `GET /repos/{owner}/{repo}/issues/{number}` one issue; 404 unknown, 410 deleted
- `GET /orgs/{org}/repos`                     the organisation's repositories, Link-paged

Every answer carries `x-ratelimit-*` headers. Rate-limit modes: `primary_limit()` (403 with
`x-ratelimit-remaining: 0` and a reset time) and `secondary_limit()` (403 with `retry-after`
and GitHub's message); the rest (429 bursts, 5xx, truncation, latency) is `fakes.common`'s.

Run standalone:  python -m fakes.github --issues 20000 --latency 0.05 --port 8766
"""

from __future__ import annotations

import argparse
import itertools
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.common import FaultInjectionMiddleware, FaultPlan, RequestLog, WebhookKind, hmac_sha256_hex

_LABELS = [
    ("bug", "d73a4a"),
    ("enhancement", "a2eeef"),
    ("priority: high", "b60205"),
    ("priority: low", "0e8a16"),
    ("in progress", "fbca04"),
    ("documentation", "0075ca"),
    ("good first issue", "7057ff"),
]
_LOGINS = ["octocat", "hubot", "monalisa", "mona-lisa-octo", "defunkt", "mojombo", "zoë-dev", "jürgen"]
_WORDS = ["login", "export", "billing", "search", "sync", "webhook", "cache", "retry", "mobile", "onboarding"]


@dataclass
class _Item:
    """One issue or pull request: what the fake stores (records are built from it)."""

    idx: int
    repo: str
    number: int
    ident: int
    is_pr: bool
    created: int  # epoch seconds
    updated: int
    changes: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    """The fake GitHub: state, control methods and the ASGI `app` (with fault middleware)."""

    def __init__(
        self,
        issues: int = 1000,
        *,
        seed: int = 1,
        repositories: tuple[str, ...] = ("octo-org/api", "octo-org/web"),
        pull_request_every: int = 9,
        base_url: str = "https://fake-github.example",
        token: str = "ghp_fake-token",  # noqa: S107 - a fake's test credential
        start: datetime = datetime(2025, 1, 6, 8, 0, tzinfo=UTC),
        step_seconds: int = 17,
        id_offset: int = 2_000_000,
        rate_limit: int = 5000,
        faults: FaultPlan | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.seed = seed
        self.repositories = repositories
        self.organization = repositories[0].split("/")[0]
        self.base_url = base_url
        self.token = token
        self.id_offset = id_offset
        self.step = step_seconds
        self.rate_limit = rate_limit
        self.used = 0
        self.stuck_paging = False
        self.reopened: set[str] | None = None
        """Ids of the issues that were reopened once (their events say so); None: every third
        closed issue and every fourth open one."""
        self.faults = faults or FaultPlan()
        self.log = log or RequestLog()
        self._start = int(start.timestamp())
        self._items: list[_Item] = []
        self._by_id: dict[int, _Item] = {}
        self._numbers = dict.fromkeys(repositories, 0)
        self._repo_ids = {repo: 700_000 + k for k, repo in enumerate(repositories)}
        self._delivery = itertools.count(1)
        made = 0
        while made < issues:
            idx = len(self._items) + 1
            is_pr = pull_request_every > 0 and idx % pull_request_every == 0
            self._append(is_pr, self._start + idx * step_seconds)
            made += not is_pr
        self.now = self._start + (len(self._items) + 1) * step_seconds + 3600
        self.app = FaultInjectionMiddleware(self._starlette(), self.faults, self.log)

    def _append(self, is_pr: bool, when: int, changes: dict[str, Any] | None = None) -> _Item:
        idx = len(self._items) + 1
        repo = self.repositories[idx % len(self.repositories)]
        self._numbers[repo] += 1
        item = _Item(idx, repo, self._numbers[repo], self.id_offset + idx, is_pr, when - 86_400, when, changes or {})
        self._items.append(item)
        self._by_id[item.ident] = item
        return item

    # -------------------------------------------------------- control methods

    def ids(self) -> list[str]:
        return [str(i.ident) for i in self._items if not i.is_pr and not i.deleted]

    def _item(self, native_id: str) -> _Item:
        item = self._by_id.get(int(native_id)) if native_id.isdigit() else None
        if item is None or item.deleted or item.is_pr:
            raise KeyError(native_id)
        return item

    def record(self, native_id: str) -> dict[str, Any] | None:
        try:
            return self._issue(self._item(native_id))
        except KeyError:
            return None

    def _tick(self) -> int:
        self.now += 1
        return self.now

    def edit(self, native_id: str, **changes: Any) -> dict[str, Any]:
        item = self._item(native_id)
        item.changes.update(changes or {"title": f"Edited issue {item.number} at {_iso(self.now)}"})
        item.updated = self._tick()
        return self._issue(item)

    def delete(self, native_id: str) -> None:
        self._item(native_id).deleted = True

    def add(self, **changes: Any) -> dict[str, Any]:
        return self._issue(self._append(False, self._tick(), dict(changes)))

    def next_repository(self) -> str:
        """The repository the next `add` lands in (issues are spread over them round-robin)."""
        return self.repositories[(len(self._items) + 1) % len(self.repositories)]

    def set_times(self, native_id: str, *, created: datetime, updated: datetime) -> None:
        """Place a record in time (a dataset built for a given date, e.g. the demo's): its
        creation and last update. History this fake serves is spread between the two."""
        item = self._item(native_id)
        item.created, item.updated = int(created.timestamp()), int(updated.timestamp())

    def set_clock(self, now: datetime) -> None:
        """Move the clock edits and additions tick from (never backwards)."""
        self.now = max(self.now, int(now.timestamp()))

    def _was_reopened(self, item: _Item, every: int) -> bool:
        if self.reopened is not None:
            return str(item.ident) in self.reopened
        return item.idx % every == 0

    def updated_at(self, record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00"))

    def primary_limit(self, *, count: int = 1, reset_in: int = 30) -> None:
        """The next `count` requests hit the primary rate limit (403, remaining 0, reset time)."""
        reset = int(datetime.now(UTC).timestamp()) + reset_in
        headers = {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(reset),
        }
        body = orjson.dumps({"message": "API rate limit exceeded for user ID 1.", "documentation_url": _DOCS_LIMITS})
        self.faults.inject(403, count=count, headers=headers, body=body)

    def secondary_limit(self, *, count: int = 1, retry_after: str | None = "3", status: int = 403) -> None:
        """The next `count` requests hit a secondary rate limit (403 or 429, `retry-after`)."""
        body = orjson.dumps(
            {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": _DOCS_LIMITS,
            }
        )
        self.faults.inject(status, count=count, retry_after=retry_after, body=body)

    def webhook(self, kind: WebhookKind, native_id: str, *, secret: str | None) -> tuple[dict[str, str], bytes]:
        """A delivery as GitHub sends it: `issues` edited/deleted/pinned, or a `ping`."""
        item = self._by_id[int(native_id)]
        issue = self._issue(item)
        repository = self._repository(item.repo)
        sender = self._user(0)
        event = "issues"
        body: dict[str, Any]
        if kind == "upsert":
            body = {"action": "edited", "issue": issue, "changes": {"title": {"from": "Old"}}}
        elif kind == "delete":
            body = {"action": "deleted", "issue": issue}
        elif kind == "refetch":  # pinned/unpinned carry a thin issue without state
            thin = {k: v for k, v in issue.items() if k not in ("state", "state_reason", "labels", "closed_at")}
            body = {"action": "pinned", "issue": thin}
        else:
            event = "ping"
            body = {"zen": "Keep it logically awesome.", "hook_id": 1, "hook": {"type": "Repository", "id": 1}}
        body.update({"repository": repository, "sender": sender})
        raw = orjson.dumps(body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.UUID(int=self.seed * 1_000_003 + next(self._delivery))),
            "X-GitHub-Hook-ID": "1",
        }
        if secret is not None:
            headers["X-Hub-Signature-256"] = "sha256=" + hmac_sha256_hex(secret, raw)
        return headers, raw

    # -------------------------------------------------------- records

    def _user(self, k: int) -> dict[str, Any]:
        login = _LOGINS[k % len(_LOGINS)]
        uid = 5_000 + k % len(_LOGINS)
        return {
            "login": login,
            "id": uid,
            "node_id": f"MDQ6VXNlcj{uid}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "url": f"{self.base_url}/users/{login}",
            "html_url": f"https://github.com/{login}",
            "type": "User",
            "site_admin": False,
        }

    def _repository(self, repo: str) -> dict[str, Any]:
        owner, name = repo.split("/")
        return {
            "id": self._repo_ids[repo],
            "node_id": f"R_fake{self._repo_ids[repo]}",
            "name": name,
            "full_name": repo,
            "private": False,
            "owner": {"login": owner, "id": 9_000, "type": "Organization"},
            "html_url": f"https://github.com/{repo}",
            "url": f"{self.base_url}/repos/{repo}",
            "has_issues": True,
            "archived": False,
        }

    def _issue(self, item: _Item) -> dict[str, Any]:
        rng = random.Random(self.seed * 1_000_003 + item.idx)
        api = f"{self.base_url}/repos/{item.repo}"
        closed = rng.random() < 0.35
        reason = rng.choice(["completed", "completed", "not_planned"]) if closed else None
        labels = [
            {
                "id": 100 + k,
                "node_id": f"LA_{k}",
                "url": f"{api}/labels/{name}",
                "name": name,
                "color": color,
                "default": name == "bug",
                "description": None,
            }
            for k, (name, color) in enumerate(_LABELS)
            if rng.random() < 0.2
        ]
        assignees = [self._user(rng.randrange(len(_LOGINS))) for _ in range(rng.choice([0, 1, 1, 2]))]
        milestone = None
        if rng.random() < 0.4:
            number = 1 + item.idx % 5
            milestone = {
                "url": f"{api}/milestones/{number}",
                "id": 800_000 + number,
                "number": number,
                "title": f"v1.{number}",
                "state": "open",
                "due_on": _iso(self._start + number * 14 * 86_400),
            }
        issue: dict[str, Any] = {
            "url": f"{api}/issues/{item.number}",
            "repository_url": api,
            "labels_url": f"{api}/issues/{item.number}/labels{{/name}}",
            "comments_url": f"{api}/issues/{item.number}/comments",
            "events_url": f"{api}/issues/{item.number}/events",
            "html_url": f"https://github.com/{item.repo}/{'pull' if item.is_pr else 'issues'}/{item.number}",
            "id": item.ident,
            "node_id": f"I_fake{item.ident}",
            "number": item.number,
            "title": f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} issue {item.idx}",
            "user": self._user(item.idx),
            "labels": labels,
            "state": "closed" if closed else "open",
            "locked": False,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": milestone,
            "comments": rng.randint(0, 12),
            "created_at": _iso(item.created),
            "updated_at": _iso(item.updated),
            "closed_at": _iso(item.updated) if closed else None,
            "author_association": "MEMBER",
            "active_lock_reason": None,
            "body": f"Steps to reproduce {item.idx}:\n\n1. open the app\n2. **see** the error",
            "state_reason": reason,
        }
        if item.is_pr:
            issue["draft"] = False
            issue["pull_request"] = {
                "url": f"{api}/pulls/{item.number}",
                "html_url": f"https://github.com/{item.repo}/pull/{item.number}",
                "merged_at": None,
            }
        issue.update(item.changes)
        return issue

    # -------------------------------------------------------- HTTP

    def _headers(self) -> dict[str, str]:
        self.used += 1
        reset = self.now + 3600
        return {
            "x-ratelimit-limit": str(self.rate_limit),
            "x-ratelimit-remaining": str(max(0, self.rate_limit - self.used)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-resource": "core",
            "x-github-api-version-selected": "2022-11-28",
        }

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            orjson.dumps(data),
            status_code=status,
            media_type="application/json",
            headers={**self._headers(), **(headers or {})},
        )

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        return header in (f"Bearer {self.token}", f"token {self.token}")

    def _unauthorised(self) -> Response:
        return self._json({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}, 401)

    def _not_found(self) -> Response:
        return self._json({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, 404)

    def _link(self, request: Request, page: int, last: int) -> dict[str, str]:
        def url(p: int) -> str:
            query = dict(request.query_params)
            query["page"] = str(p)
            return f"{self.base_url}{request.url.path}?{urlencode(query)}"

        parts = []
        if self.stuck_paging and page >= 1 and last >= 1:
            parts.append(f'<{url(2)}>; rel="next"')
        elif page < last:
            parts.append(f'<{url(page + 1)}>; rel="next"')
            parts.append(f'<{url(last)}>; rel="last"')
        if page > 1:
            parts.append(f'<{url(page - 1)}>; rel="prev"')
            parts.append(f'<{url(1)}>; rel="first"')
        return {"link": ", ".join(parts)} if parts else {}

    @staticmethod
    def _int(value: str | None, default: int) -> int:
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    async def _list_issues(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        if repo not in self.repositories:
            return self._not_found()
        q = request.query_params
        state = q.get("state", "open")
        if state not in ("open", "closed", "all"):
            return self._json({"message": "Validation Failed", "errors": [{"field": "state", "code": "invalid"}]}, 422)
        since: int | None = None
        if q.get("since"):
            try:
                since = int(datetime.fromisoformat(q["since"].replace("Z", "+00:00")).timestamp())
            except ValueError:
                return self._json(
                    {"message": "Validation Failed", "errors": [{"field": "since", "code": "invalid"}]}, 422
                )
        per_page = max(1, min(100, self._int(q.get("per_page"), 30)))
        page = max(1, self._int(q.get("page"), 1))
        if self.stuck_paging:
            # A server (or proxy) that drops the paging parameters: always the first page.
            since, page = None, 1
        items = [i for i in self._items if i.repo == repo and not i.deleted]
        if since is not None:
            items = [i for i in items if i.updated >= since]
        sort, direction = q.get("sort", "created"), q.get("direction", "desc")
        if sort == "updated":
            items.sort(key=lambda i: (i.updated, i.ident), reverse=direction == "desc")
        else:
            items.sort(key=lambda i: (i.created, i.ident), reverse=direction == "desc")
        if state == "all":  # build only the page asked for
            last = max(1, -(-len(items) // per_page))
            chunk = [self._issue(i) for i in items[(page - 1) * per_page : page * per_page]]
        else:
            records = [r for r in (self._issue(i) for i in items) if r["state"] == state]
            last = max(1, -(-len(records) // per_page))
            chunk = records[(page - 1) * per_page : page * per_page]
        return self._json(chunk, headers=self._link(request, page, last))

    async def _get_issue(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        number = self._int(request.path_params["number"], 0)
        item = next((i for i in self._items if i.repo == repo and i.number == number), None)
        if item is None:
            return self._not_found()
        if item.deleted:
            return self._json(
                {"message": "This issue was deleted", "documentation_url": "https://docs.github.com/rest"}, 410
            )
        return self._json(self._issue(item))

    async def _org_repos(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        if request.path_params["org"] != self.organization:
            return self._not_found()
        repos = [self._repository(r) for r in self.repositories if r.startswith(self.organization + "/")]
        per_page = max(1, min(100, self._int(request.query_params.get("per_page"), 30)))
        page = max(1, self._int(request.query_params.get("page"), 1))
        last = max(1, -(-len(repos) // per_page))
        return self._json(repos[(page - 1) * per_page : page * per_page], headers=self._link(request, page, last))

    # -------------------------------------------------------- status history

    def events(self, native_id: str) -> list[dict[str, Any]]:
        """The issue's events, oldest first (https://docs.github.com/en/rest/issues/events#list-issue-events):
        a `labeled` event (not a state change), then the state changes. A closed issue was
        closed at `closed_at` (every third one closed, reopened and closed again before); every
        fourth open issue was closed and reopened. Earlier events are spread evenly between
        `created_at` and `updated_at`.
        """
        item = self._item(native_id)
        issue = self._issue(item)
        if issue["state"] == "closed":
            changes = ["closed", "reopened", "closed"] if self._was_reopened(item, 3) else ["closed"]
        else:
            changes = ["closed", "reopened"] if self._was_reopened(item, 4) else []
        slots = len(changes) + 1
        span = max(item.updated - item.created, slots + 1)
        api = f"{self.base_url}/repos/{item.repo}"
        actor = self._user(item.idx)

        def event(k: int, kind: str, at: int, **extra: Any) -> dict[str, Any]:
            ident = item.ident * 10 + k
            return {
                "id": ident,
                "node_id": f"IE_fake{ident}",
                "url": f"{api}/issues/events/{ident}",
                "actor": actor,
                "event": kind,
                "commit_id": None,
                "commit_url": None,
                "created_at": _iso(at),
                "performed_via_github_app": None,
                **extra,
            }

        out = [event(0, "labeled", item.created + span // (2 * slots + 2), label={"name": "triage", "color": "ededed"})]
        for k, kind in enumerate(changes, start=1):
            last = k == len(changes) and issue["state"] == "closed"
            at = item.updated if last else item.created + span * k // (slots + 1)
            reason = "reopened" if kind == "reopened" else issue["state_reason"] if last else "completed"
            out.append(event(k, kind, at, state_reason=reason))
        return out

    async def _issue_events(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        repo = f"{request.path_params['owner']}/{request.path_params['repo']}"
        number = self._int(request.path_params["number"], 0)
        item = next((i for i in self._items if i.repo == repo and i.number == number and not i.is_pr), None)
        if item is None:
            return self._not_found()
        if item.deleted:
            return self._json(
                {"message": "This issue was deleted", "documentation_url": "https://docs.github.com/rest"}, 410
            )
        events = self.events(str(item.ident))
        per_page = max(1, min(100, self._int(request.query_params.get("per_page"), 30)))
        page = 1 if self.stuck_paging else max(1, self._int(request.query_params.get("page"), 1))
        last = max(1, -(-len(events) // per_page))
        chunk = events[(page - 1) * per_page : page * per_page]
        return self._json(chunk, headers=self._link(request, page, last))

    def _starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/repos/{owner}/{repo}/issues/{number}/events", self._issue_events),
                Route("/repos/{owner}/{repo}/issues", self._list_issues),
                Route("/repos/{owner}/{repo}/issues/{number}", self._get_issue),
                Route("/orgs/{org}/repos", self._org_repos),
            ]
        )


_DOCS_LIMITS = "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api"


def main(argv: list[str] | None = None) -> None:
    """Serve a fake GitHub on a loopback port until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)
    fake = FakeGitHub(args.issues, seed=args.seed, base_url=f"http://{args.host}:{args.port}")
    fake.faults.latency = args.latency
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
