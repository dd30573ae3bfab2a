"""A fake Linear GraphQL API for tests and the sync benchmark.

One endpoint, `POST /graphql`. Every incoming document is parsed and validated with
graphql-core against Linear's published schema (when its SDL is available: the `schema`
argument, or ../shared/fixtures/linear/schema.graphql beside the repo), so a connector that
sends a query Linear would reject fails here too. The fake then answers the two root fields
connectors use, `issues(...)` and `issue(id:)`, by projecting its in-memory issues onto the
query's selection set (fields and aliases; fragments are not needed by any connector). An
issue's `history(first:, after:)` connection is served too (`history()` says what it holds).

What `issues` honours (as Linear documents it, https://linear.app/developers/pagination and
https://linear.app/developers/filtering): `first`/`after` relay cursors with
`pageInfo { hasNextPage endCursor }`, `orderBy: updatedAt` (newest first) or the default
`createdAt` (newest first), `includeArchived`, and `filter` with `updatedAt { gte gt lte lt }`,
`id { eq in }` and `team { key { eq in } }`. Anything else in a filter answers a GraphQL error.

Responses carry `x-ratelimit-{requests,complexity}-{limit,remaining,reset}` (reset in epoch
ms) and `x-complexity`; `rate_limited()` scripts Linear's HTTP 400 `RATELIMITED` answer.
Authentication: a personal API key bare in `Authorization`, or `Bearer <access_token>`; a
wrong one answers 400 `AUTHENTICATION_ERROR`, as Linear does. Faults, latency and the
request log come from fakes.common.

Run standalone: python -m fakes.linear --issues 20000 --latency 0.05 --port 8766
"""

from __future__ import annotations

import argparse
import base64
import bisect
import itertools
import operator
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    parse,
    validate,
    value_from_ast_untyped,
)
from graphql.error import GraphQLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.common import FaultInjectionMiddleware, FaultPlan, RequestLog, WebhookKind, hmac_sha256_hex

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "linear" / "schema.graphql"
MAX_FIRST = 250

_STATES = [
    ("Triage", "triage"),
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("In Review", "started"),
    ("Done", "completed"),
    ("Canceled", "canceled"),
]
_PRIORITY_LABELS = {0: "No priority", 1: "Urgent", 2: "High", 3: "Medium", 4: "Low"}
_LABELS = ["Bug", "Feature", "Improvement", "backend", "frontend", "customer", "tech-debt", "Ünïcode"]
_FIRST = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Zoë", "Jürgen"]
_LAST = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov"]
_WORDS = ["checkout", "login", "roadmap", "export", "billing", "search", "sync", "webhook", "cycle", "estimate"]


@cache
def load_schema(path: Path) -> GraphQLSchema:
    """Linear's SDL, built once per process (about a second for ~50,000 lines)."""
    return build_schema(path.read_text(encoding="utf-8"))


class GraphQLFailure(Exception):
    def __init__(self, message: str, code: str = "INVALID_INPUT") -> None:
        super().__init__(message)
        self.code = code


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _parse_iso(value: str) -> int:
    return _ms(datetime.fromisoformat(value.replace("Z", "+00:00")))


class FakeLinear:
    """The fake Linear: state, control methods and the ASGI `app` (with fault middleware)."""

    def __init__(
        self,
        issues: int = 1000,
        *,
        seed: int = 1,
        teams: tuple[str, ...] = ("ENG", "DES"),
        api_key: str = "lin_api_fake_key",
        access_token: str | None = None,
        base_url: str = "https://fake-linear.example",
        start: datetime = datetime(2025, 1, 6, 8, 0, tzinfo=UTC),
        step_seconds: float = 17.0,
        schema: Path | None = DEFAULT_SCHEMA,
        requests_limit: int = 5000,
        complexity_limit: int = 3_000_000,
        faults: FaultPlan | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.seed = seed
        self.teams = teams
        self.api_key = api_key
        self.access_token = access_token
        self.base_url = base_url
        self.stuck_paging = False
        self.schema = load_schema(schema) if schema is not None and schema.exists() else None
        self.requests_limit = requests_limit
        self.complexity_limit = complexity_limit
        self.faults = faults or FaultPlan()
        self.log = log or RequestLog()
        self.queries: list[str] = []
        """Every document received (the newest 1000), for tests that inspect what was sent."""
        self._checked: dict[str, tuple[Any, tuple[str, str] | None]] = {}  # document text -> _check()
        self._requests_used = 0
        self._complexity_used = 0
        self._start_ms = _ms(start)
        self._step_ms = int(step_seconds * 1000)
        self._now_ms = self._start_ms + self._step_ms * (issues + 1) + 3_600_000
        self._rng = random.Random(seed)
        self._delivery = itertools.count(1)
        self._numbers = dict.fromkeys(teams, 0)
        self._team_objs = {key: {"id": self._uuid(), "key": key, "name": f"{key.title()} team"} for key in teams}
        self._state_objs = {
            (key, name): {"id": self._uuid(), "name": name, "type": typ} for key in teams for name, typ in _STATES
        }
        self._users = [
            {
                "id": self._uuid(),
                "name": f"{_FIRST[k % len(_FIRST)]} {_LAST[k % len(_LAST)]}",
                "displayName": _FIRST[k % len(_FIRST)].lower(),
                "email": f"{_FIRST[k % len(_FIRST)].lower()}.{_LAST[k % len(_LAST)].lower()}@example.com",
            }
            for k in range(12)
        ]
        self._labels = [{"id": self._uuid(), "name": name, "color": "#5e6ad2"} for name in _LABELS]
        self._projects = [{"id": self._uuid(), "name": f"Project {w.title()}"} for w in _WORDS[:4]]
        self._cycles = {
            key: [
                {
                    "id": self._uuid(),
                    "number": n,
                    "name": f"Cycle {n}" if n % 2 else None,
                    "startsAt": _iso(self._start_ms + (n - 1) * 14 * 86_400_000),
                    "endsAt": _iso(self._start_ms + n * 14 * 86_400_000),
                }
                for n in range(1, 9)
            ]
            for key in teams
        }
        self._issues: dict[str, dict[str, Any]] = {}
        self._created: list[str] = []  # ids in creation order
        self._keys: list[tuple[int, str]] = []  # sorted (updated ms, id)
        for idx in range(1, issues + 1):
            issue = self._generate(idx, self._start_ms + idx * self._step_ms)
            self._issues[issue["id"]] = issue
            self._created.append(issue["id"])
            self._keys.append((idx * self._step_ms + self._start_ms, issue["id"]))
        self._keys.sort()
        self.app = FaultInjectionMiddleware(self._starlette(), self.faults, self.log)

    # -------------------------------------------------------- data

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _generate(self, idx: int, updated_ms: int) -> dict[str, Any]:
        rng = random.Random(self.seed * 1_000_003 + idx)
        team_key = self.teams[idx % len(self.teams)]
        self._numbers[team_key] += 1
        number = self._numbers[team_key]
        identifier = f"{team_key}-{number}"
        state_name, state_type = _STATES[rng.randrange(len(_STATES))]
        created_ms = updated_ms - rng.randint(1, 40) * 3_600_000
        priority = rng.randrange(5)
        title = f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} #{idx}"
        labels = rng.sample(self._labels, rng.randint(0, 3))
        parent: dict[str, Any] | None = None
        if idx > 2 and rng.random() < 0.2:
            candidate = self._issues.get(self._created[idx - 3]) if idx - 3 < len(self._created) else None
            if candidate is not None:
                parent = {"id": candidate["id"], "identifier": candidate["identifier"]}
        archived = state_type in ("completed", "canceled") and rng.random() < 0.3
        return {
            "id": self._uuid(),
            "identifier": identifier,
            "number": number,
            "title": title,
            "description": f"## Context\n{title}: **details** in [the spec](https://example.com/spec).\n",
            "url": f"https://linear.app/fake/issue/{identifier}/{title.lower().replace(' ', '-').replace('#', '')}",
            "priority": priority,
            "priorityLabel": _PRIORITY_LABELS[priority],
            "estimate": rng.choice([None, 1.0, 2.0, 3.0, 5.0, 8.0]),
            "createdAt": _iso(created_ms),
            "updatedAt": _iso(updated_ms),
            "startedAt": _iso(created_ms + 3_600_000) if state_type in ("started", "completed") else None,
            "completedAt": _iso(updated_ms) if state_type == "completed" else None,
            "canceledAt": _iso(updated_ms) if state_type == "canceled" else None,
            "archivedAt": _iso(updated_ms) if archived else None,
            "dueDate": (
                datetime.fromtimestamp(updated_ms / 1000, UTC).date() + timedelta(days=rng.randint(3, 30))
            ).isoformat()
            if rng.random() < 0.3
            else None,
            "state": self._state_objs[(team_key, state_name)],
            "team": self._team_objs[team_key],
            "project": rng.choice(self._projects) if rng.random() < 0.5 else None,
            "cycle": rng.choice(self._cycles[team_key]) if rng.random() < 0.6 else None,
            "parent": parent,
            "assignee": rng.choice(self._users) if rng.random() < 0.8 else None,
            "creator": rng.choice(self._users),
            "labels": {"nodes": [{"id": lab["id"], "name": lab["name"]} for lab in labels]},
        }

    def _tick(self) -> int:
        self._now_ms += 1000
        return self._now_ms

    def _set_updated(self, issue: dict[str, Any], ms: int) -> None:
        old = (_parse_iso(issue["updatedAt"]), issue["id"])
        pos = bisect.bisect_left(self._keys, old)
        if pos < len(self._keys) and self._keys[pos] == old:
            del self._keys[pos]
        issue["updatedAt"] = _iso(ms)
        bisect.insort(self._keys, (ms, issue["id"]))

    # -------------------------------------------------------- control methods (FakeTool)

    def ids(self) -> list[str]:
        return list(self._created)

    @property
    def count(self) -> int:
        return len(self._created)

    def record(self, native_id: str) -> dict[str, Any] | None:
        return self._issues.get(native_id)

    def edit(self, native_id: str, **changes: Any) -> dict[str, Any]:
        """Change fields (default: a new title); bumps `updatedAt` past every earlier time."""
        issue = self._issues[native_id]
        issue.update(changes or {"title": f"Edited {issue['identifier']} at {_iso(self._now_ms)}"})
        self._set_updated(issue, self._tick())
        return issue

    def delete(self, native_id: str) -> None:
        issue = self._issues.pop(native_id)
        self._created.remove(native_id)
        key = (_parse_iso(issue["updatedAt"]), native_id)
        self._keys.remove(key)

    def add(self, **changes: Any) -> dict[str, Any]:
        ms = self._tick()
        issue = self._generate(len(self._created) + 1, ms)
        issue.update(changes)
        issue["updatedAt"] = _iso(ms)
        self._issues[issue["id"]] = issue
        self._created.append(issue["id"])
        bisect.insort(self._keys, (ms, issue["id"]))
        return issue

    def archive(self, native_id: str) -> dict[str, Any]:
        """Archive an issue (it stays listed with `includeArchived: true`)."""
        issue = self._issues[native_id]
        ms = self._tick()
        issue["archivedAt"] = _iso(ms)
        self._set_updated(issue, ms)
        return issue

    def state(self, team: str, name: str) -> dict[str, Any]:
        """The workflow state `name` (Triage, Backlog, Todo, In Progress, In Review, Done,
        Canceled) of `team`, the object issues and their history point at."""
        return self._state_objs[(team, name)]

    def team(self, key: str) -> dict[str, Any]:
        return self._team_objs[key]

    def set_times(self, native_id: str, *, created: datetime, updated: datetime) -> None:
        """Place a record in time (a dataset built for a given date, e.g. the demo's): its
        creation and last update. History this fake serves is spread between the two."""
        issue = self._issues[native_id]
        issue["createdAt"] = _iso(_ms(created))
        self._set_updated(issue, _ms(updated))

    def set_clock(self, now: datetime) -> None:
        """Move the clock edits and additions tick from (never backwards)."""
        self._now_ms = max(self._now_ms, _ms(now))

    def updated_at(self, record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(str(record["updatedAt"]).replace("Z", "+00:00"))

    def rate_limited(self, count: int = 1, *, reset_in: float = 2.0, kind: str = "requests") -> None:
        """The next `count` requests answer Linear's HTTP 400 `RATELIMITED` with `kind`'s
        budget at 0 and its reset `reset_in` seconds from now (wall clock)."""
        reset = str(int((time.time() + reset_in) * 1000))
        headers = {f"x-ratelimit-{kind}-remaining": "0", f"x-ratelimit-{kind}-reset": reset}
        body = orjson.dumps(
            {
                "errors": [
                    {
                        "message": "Rate limit exceeded",
                        "extensions": {"code": "RATELIMITED", "userPresentableMessage": "Too many requests."},
                    }
                ]
            }
        )
        self.faults.inject(400, count=count, headers=headers, body=body)

    def webhook_data(self, native_id: str) -> dict[str, Any]:
        """An issue in the shape of a webhook's `data` (flat ids beside nested objects)."""
        issue = self._issues[native_id]
        data = {k: v for k, v in issue.items() if k not in ("labels", "cycle", "project", "parent", "creator")}
        data.update(
            {
                "teamId": issue["team"]["id"],
                "stateId": issue["state"]["id"],
                "assigneeId": (issue["assignee"] or {}).get("id"),
                "creatorId": issue["creator"]["id"],
                "cycleId": (issue["cycle"] or {}).get("id"),
                "projectId": (issue["project"] or {}).get("id"),
                "parentId": (issue["parent"] or {}).get("id"),
                "labelIds": [lab["id"] for lab in issue["labels"]["nodes"]],
                "labels": [{**lab, "color": "#5e6ad2"} for lab in issue["labels"]["nodes"]],
                "assignee": {"id": issue["assignee"]["id"], "name": issue["assignee"]["name"]}
                if issue["assignee"]
                else None,
                "state": {**issue["state"], "color": "#e2e2e2"},
            }
        )
        return data

    def webhook(self, kind: WebhookKind, native_id: str, *, secret: str | None) -> tuple[dict[str, str], bytes]:
        """A delivery shaped as Linear sends them today (with `webhookTimestamp`, wall clock)."""
        now_ms = int(time.time() * 1000)
        envelope: dict[str, Any] = {
            "createdAt": _iso(now_ms),
            "organizationId": "00000000-0000-4000-8000-00000000000f",
            "webhookId": "00000000-0000-4000-8000-0000000000aa",
            "webhookTimestamp": now_ms,
        }
        if kind == "upsert":
            body = {"action": "update", "type": "Issue", "data": self.webhook_data(native_id), **envelope}
            body["updatedFrom"] = {"title": "Before"}
            body["url"] = self._issues[native_id]["url"]
        elif kind == "delete":
            data = self.webhook_data(native_id)
            data["archivedAt"] = _iso(now_ms)
            body = {"action": "remove", "type": "Issue", "data": data, **envelope}
        elif kind == "refetch":
            issue = self._issues[native_id]
            comment = {
                "id": self._uuid(),
                "createdAt": _iso(now_ms),
                "updatedAt": _iso(now_ms),
                "body": "A comment",
                "issueId": native_id,
                "userId": self._users[0]["id"],
                "issue": {"id": native_id, "title": issue["title"]},
            }
            body = {"action": "create", "type": "Comment", "data": comment, **envelope}
        else:
            label = {"id": self._labels[0]["id"], "name": "renamed", "color": "#000000"}
            body = {"action": "update", "type": "IssueLabel", "data": label, **envelope}
        raw = orjson.dumps(body)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Linear-Delivery": str(uuid.UUID(int=self.seed * 1_000_000 + next(self._delivery), version=4)),
            "Linear-Event": str(body["type"]),
        }
        if secret is not None:
            headers["Linear-Signature"] = hmac_sha256_hex(secret, raw)
        return headers, raw

    # -------------------------------------------------------- GraphQL

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if self.access_token is not None and header == f"Bearer {self.access_token}":
            return True
        return header == self.api_key

    def _headers(self, complexity: int) -> dict[str, str]:
        self._requests_used += 1
        self._complexity_used += complexity
        reset = str(int((time.time() + 3600) * 1000))
        return {
            "x-ratelimit-requests-limit": str(self.requests_limit),
            "x-ratelimit-requests-remaining": str(max(0, self.requests_limit - self._requests_used)),
            "x-ratelimit-requests-reset": reset,
            "x-ratelimit-complexity-limit": str(self.complexity_limit),
            "x-ratelimit-complexity-remaining": str(max(0, self.complexity_limit - self._complexity_used)),
            "x-ratelimit-complexity-reset": reset,
            "x-complexity": str(complexity),
        }

    @staticmethod
    def _error(message: str, code: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
        body = {"errors": [{"message": message, "extensions": {"code": code}}]}
        return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)

    def _check(self, document_text: str) -> tuple[Any, tuple[str, str] | None]:
        """(document, None) or (None, (message, code)) for a parse or validation failure."""
        try:
            document = parse(document_text)
        except GraphQLError as exc:
            return None, (f"Syntax Error: {exc.message}", "GRAPHQL_PARSE_FAILED")
        if self.schema is not None:
            errors = validate(self.schema, document)
            if errors:
                return None, (errors[0].message, "GRAPHQL_VALIDATION_FAILED")
        return document, None

    async def _graphql(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error("Authentication required, not authenticated", "AUTHENTICATION_ERROR")
        try:
            payload = orjson.loads(await request.body())
            document_text = payload["query"]
            variables = payload.get("variables") or {}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return self._error("Body must be JSON with a query", "BAD_REQUEST")
        self.queries.append(document_text)
        del self.queries[:-1000]
        checked = self._checked.get(document_text)
        if checked is None:
            # Parsed and validated once per distinct document (a connector sends the same few
            # queries with new variables): validation was most of the fake's CPU per page.
            checked = self._check(document_text)
            if len(self._checked) < 256:
                self._checked[document_text] = checked
        document, failure = checked
        if failure is not None:
            return self._error(*failure)
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) != 1 or operations[0].operation.value != "query":
            return self._error("The fake Linear answers exactly one query operation", "BAD_REQUEST")
        data: dict[str, Any] = {}
        complexity = 1
        try:
            for selection in operations[0].selection_set.selections:
                if not isinstance(selection, FieldNode):
                    raise GraphQLFailure("fragments are not supported by the fake")
                args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in selection.arguments or ()}
                name = selection.name.value
                out = selection.alias.value if selection.alias else name
                if name == "issues":
                    value, cost = self._issues_connection(args)
                elif name == "issue":
                    issue = self._issues.get(str(args.get("id")))
                    if issue is None:
                        raise GraphQLFailure("Entity not found: Issue")
                    value, cost = issue, 1
                else:
                    raise GraphQLFailure(f"the fake Linear does not serve {name!r}")
                complexity += cost
                data[out] = _project(value, selection.selection_set, self._resolver(variables))
        except GraphQLFailure as exc:
            return self._error(str(exc), exc.code, headers=self._headers(1))
        return Response(orjson.dumps({"data": data}), media_type="application/json", headers=self._headers(complexity))

    def _issues_connection(self, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        first = args.get("first") or 50
        if not isinstance(first, int) or first < 1 or first > MAX_FIRST:
            raise GraphQLFailure(f"first must be between 1 and {MAX_FIRST}")
        if args.get("last") is not None or args.get("before") is not None:
            raise GraphQLFailure("the fake Linear pages forward only (first/after)")
        order = str(args.get("orderBy") or "createdAt")
        include_archived = bool(args.get("includeArchived"))
        test = _compile_filter(args.get("filter") or {})
        after = args.get("after")
        if self.stuck_paging:
            after = None  # every page is the first one, with the same endCursor
        page: list[dict[str, Any]] = []
        more = False
        last_token: str | None = None
        for token, issue in self._ordered(order, after):
            if not include_archived and issue.get("archivedAt"):
                continue
            if not test(issue):
                continue
            if len(page) == first:
                more = True
                break
            page.append(issue)
            last_token = token
        end = last_token if page else None
        if self.stuck_paging and page:
            more = True
        info = {"hasNextPage": more, "endCursor": end, "hasPreviousPage": after is not None, "startCursor": None}
        return {"nodes": page, "pageInfo": info}, 1 + len(page)

    def _ordered(self, order: str, after: Any) -> Any:
        """`(cursor, issue)` newest first by `order`, strictly after the `after` cursor."""
        if order == "updatedAt":
            pos = len(self._keys)
            if after:
                kind, key = _untoken(str(after))
                if kind != "u":
                    raise GraphQLFailure("cursor does not match orderBy")
                pos = bisect.bisect_left(self._keys, (int(key[0]), key[1]))
            for i in range(pos - 1, -1, -1):
                ms, native_id = self._keys[i]
                yield _token("u", f"{ms}:{native_id}"), self._issues[native_id]
        elif order == "createdAt":
            start = len(self._created) - 1
            if after:
                kind, key = _untoken(str(after))
                if kind != "c":
                    raise GraphQLFailure("cursor does not match orderBy")
                try:
                    start = self._created.index(key[0]) - 1
                except ValueError:
                    raise GraphQLFailure("cursor refers to a deleted issue") from None
            for i in range(start, -1, -1):
                native_id = self._created[i]
                yield _token("c", native_id), self._issues[native_id]
        else:
            raise GraphQLFailure(f"unknown orderBy {order!r}")

    # -------------------------------------------------------- status history

    def history(self, native_id: str) -> list[dict[str, Any]]:
        """The issue's `IssueHistory` entries, oldest first (Linear's default `createdAt`
        order): a title change (no state), then one state change per step of
        Todo -> In Progress -> In Review -> Done (or Todo -> Canceled) up to the issue's
        state, spread evenly between `createdAt` and `updatedAt`. An issue still in Triage,
        Backlog or Todo has no state change. Entries carry every field `IssueHistory` has
        that a connector may select here (`fromState`/`toState` are WorkflowStates or null).
        """
        issue = self._issues[native_id]
        team = issue["team"]["key"]
        current = issue["state"]["name"]
        if current == "Canceled":
            steps = ["Todo", "Canceled"]
        elif current in ("In Progress", "In Review", "Done"):
            path = ["Todo", "In Progress", "In Review", "Done"]
            steps = path[: path.index(current) + 1]
        else:
            steps = []
        created, updated = _parse_iso(issue["createdAt"]), _parse_iso(issue["updatedAt"])
        slots = len(steps) + 1
        span = max(updated - created, slots + 1)
        entries: list[dict[str, Any]] = [
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{native_id}/history/1")),
                "createdAt": _iso(created + span // (slots + 1)),
                "updatedAt": _iso(created + span // (slots + 1)),
                "fromTitle": "Draft",
                "toTitle": issue["title"],
                "fromState": None,
                "toState": None,
                "fromStateId": None,
                "toStateId": None,
            }
        ]
        for k, (before, after) in enumerate(itertools.pairwise(steps), start=2):
            at = _iso(created + span * k // (slots + 1))
            from_state, to_state = self._state_objs[(team, before)], self._state_objs[(team, after)]
            entries.append(
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{native_id}/history/{k}")),
                    "createdAt": at,
                    "updatedAt": at,
                    "fromTitle": None,
                    "toTitle": None,
                    "fromState": from_state,
                    "toState": to_state,
                    "fromStateId": from_state["id"],
                    "toStateId": to_state["id"],
                }
            )
        return entries

    def _resolver(self, variables: dict[str, Any]) -> Resolver:
        """Serves the nested connections a projection meets (an issue's `history`)."""

        def resolve(parent: dict[str, Any], node: FieldNode) -> Any:
            if node.name.value != "history" or "identifier" not in parent:
                return _UNRESOLVED
            args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments or ()}
            first = args.get("first") or 50
            if not isinstance(first, int) or first < 1 or first > MAX_FIRST:
                raise GraphQLFailure(f"first must be between 1 and {MAX_FIRST}")
            if args.get("last") is not None or args.get("before") is not None or args.get("orderBy") is not None:
                raise GraphQLFailure("the fake Linear pages history forward by createdAt only (first/after)")
            entries = self.history(str(parent["id"]))
            start = 0
            if args.get("after") and not self.stuck_paging:
                kind, key = _untoken(str(args["after"]))
                if kind != "h":
                    raise GraphQLFailure("cursor does not match this connection")
                start = int(key[0]) + 1
            page = entries[start : start + first]
            more = start + first < len(entries) or (self.stuck_paging and bool(page))
            end = _token("h", str(start + len(page) - 1)) if page else None
            info = {"hasNextPage": more, "endCursor": end, "hasPreviousPage": start > 0, "startCursor": None}
            return {"nodes": page, "pageInfo": info}

        return resolve

    def _starlette(self) -> Starlette:
        return Starlette(routes=[Route("/graphql", self._graphql, methods=["POST"])])


def _token(kind: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def _untoken(token: str) -> tuple[str, list[str]]:
    try:
        kind, _, rest = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise GraphQLFailure("invalid cursor") from None
    return kind, rest.split(":") if kind == "u" else [rest]


Predicate = Callable[[dict[str, Any]], bool]
_COMPARE: dict[str, Callable[[int, int], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}


def _updated_test(compare: Callable[[int, int], bool], bound: int) -> Predicate:
    return lambda issue: compare(_parse_iso(issue["updatedAt"]), bound)


def _member_test(path: tuple[str, ...], allowed: frozenset[Any]) -> Predicate:
    def test(issue: dict[str, Any]) -> bool:
        value: Any = issue
        for key in path:
            value = value[key]
        return value in allowed

    return test


def _compile_filter(filt: dict[str, Any]) -> Predicate:
    """A predicate for the IssueFilter subset connectors send; anything else is refused."""
    tests: list[Predicate] = []
    for field, condition in filt.items():
        if field == "updatedAt":
            for op, value in condition.items():
                if op not in _COMPARE:
                    raise GraphQLFailure(f"the fake does not support updatedAt.{op}")
                tests.append(_updated_test(_COMPARE[op], _parse_iso(str(value))))
        elif field in ("id", "team"):
            path, comparator = (("id",), condition) if field == "id" else (("team", "key"), condition.get("key"))
            if not isinstance(comparator, dict) or (field == "team" and set(condition) != {"key"}):
                raise GraphQLFailure(f"the fake does not support this {field} filter")
            for op, value in comparator.items():
                if op not in ("eq", "in"):
                    raise GraphQLFailure(f"the fake does not support {'.'.join(path)}.{op}")
                tests.append(_member_test(path, frozenset([value] if op == "eq" else value)))
        else:
            raise GraphQLFailure(f"the fake does not support filtering on {field!r}")
    return lambda issue: all(t(issue) for t in tests)


Resolver = Callable[[dict[str, Any], FieldNode], Any]
_UNRESOLVED = object()


def _project(value: Any, selection: SelectionSetNode | None, resolve: Resolver | None = None) -> Any:
    """`value` cut down to the fields (and aliases) the query selected; `resolve` serves the
    fields that are computed from their arguments (it answers `_UNRESOLVED` for plain ones)."""
    if selection is None or value is None:
        return value
    if isinstance(value, list):
        return [_project(v, selection, resolve) for v in value]
    out: dict[str, Any] = {}
    for node in selection.selections:
        if not isinstance(node, FieldNode):
            raise GraphQLFailure("fragments are not supported by the fake")
        name = node.name.value
        key = node.alias.value if node.alias else name
        if name == "__typename":
            out[key] = "Issue"
            continue
        computed = resolve(value, node) if resolve is not None else _UNRESOLVED
        out[key] = _project(value.get(name) if computed is _UNRESOLVED else computed, node.selection_set, resolve)
    return out


def main(argv: list[str] | None = None) -> None:
    """Serve a fake Linear on a loopback port until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args(argv)
    fake = FakeLinear(args.issues, seed=args.seed, base_url=f"http://{args.host}:{args.port}")
    fake.faults.latency = args.latency
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
