"""A fake Productboard (Public REST API v1) for tests and the sync benchmark.

Shapes follow the published OpenAPI description (tests validate responses against it):

- `GET /features` (+ `archived` filter, `pageLimit`, `pageCursor`), `GET /features/{id}`
- `GET /components`, `GET /products`, `GET /feature-statuses`
- `GET /releases`, `GET /feature-release-assignments` (`feature.id`, `release.id` filters)
- `GET /hierarchy-entities/custom-fields` (`type` required, comma separated or repeated)
- `GET /hierarchy-entities/custom-fields-values` (`type`, `customField.id`, `hierarchyEntity.id`)
- `GET /jira-integrations`, `GET /jira-integrations/{id}/connections[/{featureId}]`

Every listing pages through an absolute `links.next` URL (`pageCursor` is an opaque offset);
`stuck_paging` makes the next link repeat. Requests need `Authorization: Bearer <token>` (401)
and `X-Version: 1` (400). Features: about a quarter are subfeatures of an earlier feature; the
rest hang under a component (some nested) or a product. Control methods (`edit`, `delete`,
`add`), the thin webhook builder, fault injection and the request log follow `fakes.common`.

Run standalone: python -m fakes.productboard --features 5000 --port 8766
"""

from __future__ import annotations

import argparse
import base64
import random
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.common import FaultInjectionMiddleware, FaultPlan, RequestLog, WebhookKind

API_HOST = "https://api.productboard.com"
_PAGING = ("pageCursor", "pageLimit")
_STATUSES = [
    ("Candidate", False),
    ("New idea", False),
    ("Planned", False),
    ("In progress", False),
    ("Released", True),
    ("Won't do", True),
]
_CUSTOM_FIELDS = [
    ("Reach", "number"),
    ("Impact", "number"),
    ("Confidence", "number"),
    ("Effort", "number"),
    ("Team", "dropdown"),
    ("Notes", "text"),
    ("Sponsor", "member"),
]
_TEAMS = ["Checkout", "Growth", "Platform"]
_PEOPLE = ["ada@example.com", "grace@example.com", "linus@example.com", "radia@example.com"]
_WORDS = ["checkout", "roadmap", "export", "billing", "search", "sync", "dashboard", "onboarding", "mobile", "cache"]


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class FakeProductboard:
    def __init__(
        self,
        features: int = 200,
        *,
        seed: int = 1,
        token: str = "pb-token",  # noqa: S107 - a fake's test credential
        base_url: str = "https://fake-productboard.example",
        start: datetime = datetime(2025, 3, 3, 9, 0, tzinfo=UTC),
        step_seconds: int = 61,
        jira_project: str = "ENG",
        faults: FaultPlan | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.seed = seed
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.jira_project = jira_project
        self.stuck_paging = False
        self.faults = faults or FaultPlan()
        self.log = log or RequestLog()
        self._rng = random.Random(seed)
        self._start = start
        self._step = timedelta(seconds=step_seconds)
        self._now = start + self._step * (features + 1) + timedelta(hours=1)
        self._count = 0
        self.products = [self._entity("product", f"Product {name}", None) for name in ("Web", "Mobile")]
        top = self._entity("component", "Payments", {"product": self._ref("products", self.products[0]["id"])})
        nested = self._entity("component", "Invoices", {"component": self._ref("components", top["id"])})
        other = self._entity("component", "Onboarding", {"product": self._ref("products", self.products[1]["id"])})
        self.components = [top, nested, other]
        self.statuses = [{"id": self._uuid(), "name": n, "completed": c} for n, c in _STATUSES]
        group = self._uuid()
        self.releases = [self._release(group, k) for k in range(3)]
        self.custom_fields = [self._custom_field(name, kind) for name, kind in _CUSTOM_FIELDS]
        self.jira_integration = {"id": self._uuid(), "name": "Jira Cloud"}
        self.features: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, set[str]] = {}  # feature id -> release ids
        self.values: dict[tuple[str, str], Any] = {}  # (field id, feature id) -> value
        self.jira: dict[str, tuple[str, str]] = {}  # feature id -> (issue key, issue id)
        self.deleted: set[str] = set()
        self._snapshots: dict[tuple[str, tuple[tuple[str, str], ...]], list[dict[str, Any]]] = {}
        for _ in range(features):
            self._new(self._start + self._step * (self._count + 1))
        self.app = FaultInjectionMiddleware(self._starlette(), self.faults, self.log)

    # -------------------------------------------------------- building

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _ref(self, collection: str, entity_id: str) -> dict[str, Any]:
        return {"id": entity_id, "links": {"self": f"{API_HOST}/{collection}/{entity_id}"}}

    def _entity(self, kind: str, name: str, parent: dict[str, Any] | None) -> dict[str, Any]:
        entity_id = self._uuid()
        stamp = _fmt(self._start - timedelta(days=30))
        collection = "products" if kind == "product" else "components"
        entity: dict[str, Any] = {
            "id": entity_id,
            "name": name,
            "description": f"<p>{name}</p>",
            "links": {
                "self": f"{API_HOST}/{collection}/{entity_id}",
                "html": f"https://fake.productboard.com/feature-board/planning/{collection}/{entity_id}",
            },
            "owner": {"email": _PEOPLE[0]},
            "createdAt": stamp,
            "updatedAt": stamp,
        }
        if parent is not None:
            entity["parent"] = parent
        return entity

    def _release(self, group: str, k: int) -> dict[str, Any]:
        begin = date(2025, 4, 1) + timedelta(days=90 * k)
        end = begin + timedelta(days=89)
        rid = self._uuid()
        return {
            "id": rid,
            "name": f"2025.{k + 2}",
            "description": f"<p>Release 2025.{k + 2}</p>",
            "archived": False,
            "releaseGroup": {"id": group, "links": {"self": f"{API_HOST}/release-groups/{group}"}},
            "timeframe": {"startDate": begin.isoformat(), "endDate": end.isoformat(), "granularity": "quarter"},
            "state": ["completed", "in-progress", "upcoming"][k],
            "links": {"self": f"{API_HOST}/releases/{rid}"},
        }

    def _custom_field(self, name: str, kind: str) -> dict[str, Any]:
        fid = self._uuid()
        field: dict[str, Any] = {
            "id": fid,
            "type": kind,
            "name": name,
            "description": f"{name} of a feature",
            "links": {"self": f"{API_HOST}/hierarchy-entities/custom-fields/{fid}"},
        }
        if kind == "dropdown":
            field["options"] = [{"id": self._uuid(), "label": team} for team in _TEAMS]
        return field

    def _new(self, updated: datetime, **changes: Any) -> dict[str, Any]:
        self._count += 1
        n = self._count
        rng = random.Random(self.seed * 1_000_003 + n)
        fid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        earlier = list(self.features)
        parent: dict[str, Any]
        if earlier and rng.random() < 0.25:
            parent_id = rng.choice(earlier[-20:])
            if self.features[parent_id]["type"] == "subfeature":
                parent_id = str(self.features[parent_id]["parent"]["feature"]["id"])
            parent = {"feature": self._ref("features", parent_id)}
            kind = "subfeature"
        else:
            kind = "feature"
            holder = rng.choice([*self.components, self.products[1]])
            collection = "products" if "parent" not in holder else "components"
            parent = {collection[:-1]: self._ref(collection, holder["id"])}
        status = self.statuses[rng.randrange(len(self.statuses))]
        begin = date(2025, 1, 1) + timedelta(days=rng.randrange(0, 300))
        timeframe: dict[str, Any] = {"startDate": "none", "endDate": "none", "granularity": "none"}
        if rng.random() < 0.6:
            timeframe = {
                "startDate": begin.isoformat(),
                "endDate": (begin + timedelta(days=rng.choice([30, 60, 90]))).isoformat(),
                "granularity": "none",
            }
        feature: dict[str, Any] = {
            "id": fid,
            "name": f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} #{n}",
            "description": f"<p>Make <b>{rng.choice(_WORDS)}</b> better.</p><ul><li>one</li><li>two</li></ul>",
            "type": kind,
            "archived": False,
            "status": {"id": status["id"], "name": status["name"]},
            "parent": parent,
            "links": {
                "self": f"{API_HOST}/features/{fid}",
                "html": f"https://fake.productboard.com/entity-detail/features/{fid}",
            },
            "timeframe": timeframe,
            "owner": {"email": rng.choice(_PEOPLE)} if rng.random() < 0.8 else None,
            "createdAt": _fmt(updated - timedelta(days=3)),
            "updatedAt": _fmt(updated),
            "lastHealthUpdate": None,
        }
        feature.update(changes)
        self.features[fid] = feature
        if rng.random() < 0.5:
            self.assignments[fid] = {self.releases[rng.randrange(len(self.releases))]["id"]}
        by_name = {f["name"]: f for f in self.custom_fields}
        for name, choices in (("Reach", [100, 500, 2000]), ("Impact", [0.5, 1, 2, 3]), ("Confidence", [0.5, 0.8, 1])):
            if rng.random() < 0.8:
                self.values[(by_name[name]["id"], fid)] = rng.choice(choices)
        if rng.random() < 0.7:
            self.values[(by_name["Effort"]["id"], fid)] = rng.choice([1, 2, 5, 8])
        if rng.random() < 0.5:
            options = by_name["Team"]["options"]
            self.values[(by_name["Team"]["id"], fid)] = options[rng.randrange(len(options))]
        if rng.random() < 0.3:
            self.values[(by_name["Sponsor"]["id"], fid)] = {"email": rng.choice(_PEOPLE)}
        if rng.random() < 0.4:
            self.jira[fid] = (f"{self.jira_project}-{n}", str(10000 + n))
        return feature

    # -------------------------------------------------------- FakeTool

    def ids(self) -> list[str]:
        return sorted(self.features)

    def record(self, native_id: str) -> dict[str, Any] | None:
        return self.features.get(native_id)

    def _tick(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now

    def edit(self, native_id: str, **changes: Any) -> dict[str, Any]:
        feature = self.features[native_id]
        moment = self._tick()
        feature.update(changes or {"name": f"Edited {native_id[:8]} at {_fmt(moment)}"})
        feature["updatedAt"] = _fmt(moment)
        return feature

    def delete(self, native_id: str) -> None:
        self.features.pop(native_id)
        self.deleted.add(native_id)

    def add(self, **changes: Any) -> dict[str, Any]:
        return self._new(self._tick(), **changes)

    def set_times(self, native_id: str, *, created: datetime, updated: datetime) -> None:
        """Place a record in time (a dataset built for a given date, e.g. the demo's): its
        creation and last update. History this fake serves is spread between the two."""
        feature = self.features[native_id]
        feature["createdAt"], feature["updatedAt"] = _fmt(created), _fmt(updated)

    def set_clock(self, now: datetime) -> None:
        """Move the clock edits and additions tick from (never backwards)."""
        self._now = max(self._now, now)

    def updated_at(self, record: dict[str, Any]) -> datetime:
        return _parse(record["updatedAt"])

    def assign(self, feature_id: str, release_id: str | None) -> None:
        """Put a feature into one release (None: take it out of all)."""
        self.assignments[feature_id] = {release_id} if release_id else set()

    def connect_jira(self, feature_id: str, issue_key: str | None, issue_id: str | None = None) -> None:
        """Connect a feature to one Jira issue through the Jira integration (None: disconnect)."""
        if issue_key is None:
            self.jira.pop(feature_id, None)
        else:
            self.jira[feature_id] = (issue_key, issue_id or str(10000 + self._count))

    def set_value(self, field_name: str, feature_id: str, value: Any) -> None:
        field = next(f for f in self.custom_fields if f["name"] == field_name)
        if value is None:
            self.values.pop((field["id"], feature_id), None)
        else:
            self.values[(field["id"], feature_id)] = value

    def webhook(self, kind: WebhookKind, native_id: str, *, secret: str | None) -> tuple[dict[str, str], bytes]:
        """A thin notification `{"data": {"id", "eventType", "links": {"target"}}}` carrying the
        subscription's Authorization value (`secret`, sent as is) when given."""
        target = f"{API_HOST}/features/{native_id}"
        data: dict[str, Any]
        if kind == "upsert":
            data = {"id": native_id, "eventType": "feature.updated", "links": {"target": target}}
        elif kind == "delete":
            data = {"id": native_id, "eventType": "feature.deleted", "links": {"target": target}}
        elif kind == "refetch":
            release = self.releases[0]["id"]
            query = urlencode({"feature.id": native_id, "release.id": release})
            data = {
                "eventType": "feature-release-assignment.updated",
                "links": {"target": f"{API_HOST}/feature-release-assignments/assignment?{query}"},
            }
        else:
            note = str(uuid.uuid5(uuid.NAMESPACE_URL, native_id))
            data = {"id": note, "eventType": "note.created", "links": {"target": f"{API_HOST}/notes/{note}"}}
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["Authorization"] = secret
        return headers, orjson.dumps({"data": data})

    # -------------------------------------------------------- HTTP

    @staticmethod
    def _json(data: Any, status: int = 200) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type="application/json")

    @staticmethod
    def _error(status: int, title: str, detail: str) -> Response:
        return FakeProductboard._json({"errors": [{"code": str(status), "title": title, "detail": detail}]}, status)

    def _refuse(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(401, "Unauthorized", "invalid or missing access token")
        if request.headers.get("x-version") != "1":
            return self._error(400, "Bad request", "missing or unsupported X-Version header")
        return None

    def _snapshot(self, request: Request, build: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """A listing's rows, built for its first page and kept for the pages its cursor leads
        to (as a cursor-based server keeps its result set). Rebuilding every row for every
        page made the fake, not the client, the cost of a large benchmark."""
        q = request.query_params
        key = (request.url.path, tuple(sorted((k, v) for k, v in q.multi_items() if k not in _PAGING)))
        if q.get("pageCursor") and key in self._snapshots:
            return self._snapshots[key]
        rows = build()
        self._snapshots[key] = rows
        while len(self._snapshots) > 16:
            self._snapshots.pop(next(iter(self._snapshots)))
        return rows

    def _page(self, request: Request, items: list[dict[str, Any]], default_limit: int = 100) -> Response:
        q = request.query_params
        try:
            limit = max(1, min(int(q.get("pageLimit", default_limit)), 100))
            offset = int(base64.urlsafe_b64decode(q["pageCursor"]).decode()) if q.get("pageCursor") else 0
        except ValueError:
            return self._error(400, "Bad request", "invalid pageLimit or pageCursor")
        page = items[offset : offset + limit]
        following = limit if self.stuck_paging else offset + limit
        next_url = None
        if self.stuck_paging or following < len(items):
            params = [(k, v) for k, v in q.multi_items() if k not in ("pageCursor", "pageLimit")]
            params += [
                ("pageLimit", str(limit)),
                ("pageCursor", base64.urlsafe_b64encode(str(following).encode()).decode()),
            ]
            next_url = f"{self.base_url}{request.url.path}?{urlencode(params)}"
        return self._json({"data": page, "links": {"next": next_url}})

    async def _features(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        archived = request.query_params.get("archived")

        def build() -> list[dict[str, Any]]:
            items = list(self.features.values())
            if archived in ("true", "false"):
                items = [f for f in items if f["archived"] is (archived == "true")]
            return items

        return self._page(request, self._snapshot(request, build))

    async def _feature(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        feature = self.features.get(request.path_params["id"])
        if feature is None:
            return self._error(404, "Not found", "feature not found")
        return self._json({"data": feature})

    def _listing(self, items_of: Any) -> Any:
        async def handler(request: Request) -> Response:
            if (refused := self._refuse(request)) is not None:
                return refused
            return self._page(request, items_of())

        return handler

    async def _assignments(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        return self._page(request, self._snapshot(request, lambda: self._assignment_rows(request)))

    def _assignment_rows(self, request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        rows = []
        for fid, releases in self.assignments.items():
            if fid not in self.features or (q.get("feature.id") and q["feature.id"] != fid):
                continue
            for rid in sorted(releases):
                if q.get("release.id") and q["release.id"] != rid:
                    continue
                rows.append(
                    {
                        "feature": self._ref("features", fid),
                        "release": self._ref("releases", rid),
                        "assigned": True,
                        "links": {
                            "self": f"{API_HOST}/feature-release-assignments/assignment?"
                            + urlencode({"feature.id": fid, "release.id": rid})
                        },
                    }
                )
        return rows

    @staticmethod
    def _types(request: Request) -> set[str]:
        return {t for value in request.query_params.getlist("type") for t in value.split(",") if t}

    async def _fields(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        types = self._types(request)
        if not types:
            return self._error(400, "Bad request", "query parameter 'type' is required")
        return self._page(request, [f for f in self.custom_fields if f["type"] in types])

    async def _values(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        return self._page(request, self._snapshot(request, lambda: self._value_rows(request)))

    def _value_rows(self, request: Request) -> list[dict[str, Any]]:
        q = request.query_params
        types = self._types(request)
        by_id = {f["id"]: f for f in self.custom_fields}
        rows = []
        for (field_id, entity), value in sorted(self.values.items()):
            field = by_id[field_id]
            if entity not in self.features or (types and field["type"] not in types):
                continue
            if q.get("customField.id") and q["customField.id"] != field_id:
                continue
            if q.get("hierarchyEntity.id") and q["hierarchyEntity.id"] != entity:
                continue
            rows.append(
                {
                    "customField": {"id": field_id},
                    "hierarchyEntity": {
                        "id": entity,
                        "type": "feature",
                    },  # subfeatures too (enum: feature, component, product)
                    "type": field["type"],
                    "value": value,
                    "links": {
                        "self": f"{API_HOST}/hierarchy-entities/custom-fields-values/value?"
                        + urlencode({"customField.id": field_id, "hierarchyEntity.id": entity})
                    },
                }
            )
        return rows

    def _integration(self) -> dict[str, Any]:
        iid = self.jira_integration["id"]
        return {
            "id": iid,
            "createdAt": _fmt(self._start - timedelta(days=60)),
            "integrationStatus": "enabled",
            "name": self.jira_integration["name"],
            "links": {
                "self": f"{API_HOST}/jira-integrations/{iid}",
                "connections": f"{API_HOST}/jira-integrations/{iid}/connections",
            },
        }

    def _connection(self, fid: str) -> dict[str, Any]:
        key, issue_id = self.jira[fid]
        iid = self.jira_integration["id"]
        return {
            "featureId": fid,
            "connection": {"issueKey": key, "issueId": issue_id},
            "links": {"self": f"{API_HOST}/jira-integrations/{iid}/connections/{fid}"},
        }

    async def _connections(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        if request.path_params["id"] != self.jira_integration["id"]:
            return self._error(404, "Not found", "integration not found")
        q = request.query_params
        rows = [
            self._connection(fid)
            for fid in sorted(self.jira)
            if fid in self.features
            and (not q.get("connection.issueKey") or self.jira[fid][0] == q["connection.issueKey"])
        ]
        return self._page(request, rows)

    async def _one_connection(self, request: Request) -> Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        fid = request.path_params["feature_id"]
        if request.path_params["id"] != self.jira_integration["id"] or fid not in self.jira or fid not in self.features:
            return self._error(404, "Not found", "connection not found")
        return self._json({"data": self._connection(fid)})

    def _starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/features", self._features),
                Route("/features/{id}", self._feature),
                Route("/components", self._listing(lambda: self.components)),
                Route("/products", self._listing(lambda: self.products)),
                Route("/feature-statuses", self._listing(lambda: self.statuses)),
                Route("/releases", self._listing(lambda: self.releases)),
                Route("/feature-release-assignments", self._assignments),
                Route("/hierarchy-entities/custom-fields", self._fields),
                Route("/hierarchy-entities/custom-fields-values", self._values),
                Route("/jira-integrations", self._listing(lambda: [self._integration()])),
                Route("/jira-integrations/{id}/connections", self._connections),
                Route("/jira-integrations/{id}/connections/{feature_id}", self._one_connection),
            ]
        )


def main() -> None:  # pragma: no cover - manual / benchmark use
    from fakes.common import serve

    parser = argparse.ArgumentParser(description="Run a fake Productboard API on loopback.")
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    fake = FakeProductboard(args.features, base_url=f"http://127.0.0.1:{args.port}")
    fake.faults.latency = args.latency
    with serve(fake.app, port=args.port) as url:
        print(f"fake Productboard at {url} (token {fake.token})", flush=True)
        import threading

        threading.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["FakeProductboard"]
