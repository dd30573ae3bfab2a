"""A fake Aha! REST API v1 (initiatives, epics, features, ideas) for tests and the benchmark.

Serves N records spread over the record types of one or more workspaces (products), built per
request from a compact state. Shapes follow Aha!'s API documentation examples (see
../shared/fixtures/aha/):

- `GET /api/v1/products/{prefix|id}/{features|epics|initiatives|ideas}`
      `updated_since`, `page`, `per_page` (max 200), `fields`; a `pagination` block
      {total_records, total_pages, current_page}. Without `fields` the list is thin (id,
      reference_num, name, created_at, url, resource; ideas a few more), as Aha!'s is; with it,
      each record carries `id` plus exactly the fields named. Order: features, epics and
      initiatives by id, ideas newest first (as the samples come): never by update time.
- `GET /api/v1/{features|epics|initiatives|ideas}/{id}`  one record `{"feature": {...}}`; 404 when
      unknown, deleted or of another type.

Data quirks served on purpose: every third feature carries Jira `integration_fields` (id, key,
url), every fourth idea is merged into an earlier idea (`duplicate_of`), every fifth idea was
promoted to a feature (`feature`), score facts (Effort, Benefit, Reach on some) and custom fields.

Webhooks (`webhook(kind, id, secret=...)`): activity webhook audits (update -> refetch,
destroy -> delete, a description note -> refetch of its record) and the integration webhook's
`create_release` (ignored); the secret travels as `Authorization: Bearer <secret>` (Aha!
itself signs nothing). Faults (429 bursts, 5xx, truncation, latency) are `fakes.common`'s.

Run standalone:  python -m fakes.aha --records 20000 --latency 0.05 --port 8767
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.common import FaultInjectionMiddleware, FaultPlan, RequestLog, WebhookKind

TYPES = ("initiatives", "epics", "features", "ideas")
SINGULAR = {"initiatives": "initiative", "epics": "epic", "features": "feature", "ideas": "idea"}
# idx % 10 -> record type: 60% features, 20% epics, 10% initiatives, 10%... ideas get the rest.
_TYPE_BY_SLOT = (
    "initiatives",
    "epics",
    "features",
    "features",
    "ideas",
    "features",
    "epics",
    "features",
    "ideas",
    "features",
)
_FEATURE_STATUSES = [
    ("Under consideration", False),
    ("Ready to develop", False),
    ("In development", False),
    ("Ready to ship", False),
    ("Shipped", True),
    ("Will not implement", True),
]
_IDEA_STATUSES = [
    ("New", False),
    ("Needs review", False),
    ("Planned", False),
    ("Shipped", True),
    ("Already exists", True),
]
_USERS = [
    ("1049303076", "George Gently", "george@example.com"),
    ("16338845", "John Smith", "john.smith@example.com"),
    ("1020675218", "Mary Humpty", "mary@example.com"),
    ("5886060318329899366", "Chris Waters", "chris@example.com"),
]
_WORDS = ["roadmap", "export", "billing", "search", "sync", "alerts", "mobile", "onboarding", "SSO", "reports"]
_THIN = ("id", "reference_num", "name", "created_at", "url", "resource")
# `edit`/`add` changes read by name while building a record (`status` = the workflow status
# name); every other change key replaces the record field of that name.
_DERIVED_CHANGES = ("name", "status")


@dataclass
class _Rec:
    idx: int
    ident: int
    kind: str  # plural record type
    product: int  # index into products
    number: int  # per-type reference number
    created: int
    updated: int
    changes: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class FakeAha:
    """The fake Aha!: state, control methods and the ASGI `app` (with fault middleware)."""

    def __init__(
        self,
        records: int = 1000,
        *,
        products: tuple[str, ...] = ("PRJ1",),
        site: str = "https://fake-aha.example",
        api_key: str = "aha-fake-key",
        jira_url: str = "https://fake-jira.example",
        start: datetime = datetime(2025, 2, 3, 9, 0, tzinfo=UTC),
        step_seconds: int = 17,
        id_offset: int = 6_776_757_000_000_000_000,
        faults: FaultPlan | None = None,
        log: RequestLog | None = None,
    ) -> None:
        self.products = products
        self.product_ids = {p: str(131_414_752 + k) for k, p in enumerate(products)}
        self.site = site
        self.base_url = f"{site}/api/v1"
        self.api_key = api_key
        self.jira_url = jira_url
        self.step = step_seconds
        self.id_offset = id_offset
        self.stuck_paging = False
        self.faults = faults or FaultPlan()
        self.log = log or RequestLog()
        self._start = int(start.timestamp())
        self._recs: list[_Rec] = []
        self._by_id: dict[int, _Rec] = {}
        self._numbers: dict[tuple[int, str], int] = {}
        self._audit = itertools.count(7_000_000_000)
        for k in range(records):
            self._append(_TYPE_BY_SLOT[(k + 1) % 10], self._start + (k + 1) * step_seconds)
        self.now = self._start + (records + 1) * step_seconds + 3600
        self.app = FaultInjectionMiddleware(self._starlette(), self.faults, self.log)

    def _append(self, kind: str, when: int, changes: dict[str, Any] | None = None) -> _Rec:
        idx = len(self._recs) + 1
        product = idx % len(self.products)
        key = (product, kind)
        self._numbers[key] = self._numbers.get(key, 0) + 1
        rec = _Rec(idx, self.id_offset + idx * 7919, kind, product, self._numbers[key], when - 86_400, when)
        rec.changes.update(changes or {})
        self._recs.append(rec)
        self._by_id[rec.ident] = rec
        return rec

    # -------------------------------------------------------- control methods (FakeTool)

    def ids(self) -> list[str]:
        return [str(r.ident) for r in self._recs if not r.deleted]

    def _rec(self, native_id: str) -> _Rec:
        rec = self._by_id.get(int(native_id)) if native_id.isdigit() else None
        if rec is None or rec.deleted:
            raise KeyError(native_id)
        return rec

    def record(self, native_id: str) -> dict[str, Any] | None:
        try:
            return self._full(self._rec(native_id))
        except KeyError:
            return None

    def record_type(self, native_id: str) -> str:
        """`features`, `epics`, `initiatives` or `ideas`."""
        return self._by_id[int(native_id)].kind

    def _tick(self) -> int:
        self.now += 1
        return self.now

    def edit(self, native_id: str, **changes: Any) -> dict[str, Any]:
        """Change a record (default: its name): `name`, `status` (workflow status name), or any
        record field served as is (`integration_fields=[...]`, `epic=None` ...)."""
        rec = self._rec(native_id)
        rec.changes.update(changes or {"name": f"Edited {SINGULAR[rec.kind]} {rec.number} at {_iso(self.now)}"})
        rec.updated = self._tick()
        return self._full(rec)

    def delete(self, native_id: str) -> None:
        self._rec(native_id).deleted = True

    def add(self, **changes: Any) -> dict[str, Any]:
        """A new record (`kind`: features by default); `changes` as for `edit`."""
        kind = str(changes.pop("kind", "features"))
        return self._full(self._append(kind, self._tick(), dict(changes)))

    def set_times(self, native_id: str, *, created: datetime, updated: datetime) -> None:
        """Place a record in time (a dataset built for a given date, e.g. the demo's): its
        creation and last update. History this fake serves is spread between the two."""
        rec = self._rec(native_id)
        rec.created, rec.updated = int(created.timestamp()), int(updated.timestamp())

    def set_clock(self, now: datetime) -> None:
        """Move the clock edits and additions tick from (never backwards)."""
        self.now = max(self.now, int(now.timestamp()))

    def updated_at(self, record: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00"))

    def webhook(self, kind: WebhookKind, native_id: str, *, secret: str | None) -> tuple[dict[str, str], bytes]:
        """A delivery as Aha! sends it, with the secret as `Authorization: Bearer` when given."""
        rec = self._by_id[int(native_id)]
        singular = SINGULAR[rec.kind]
        body: dict[str, Any]
        if kind == "upsert":
            body = self.audit(rec, "update", singular, rec.ident, changes=[{"field_name": "Name", "value": "x"}])
        elif kind == "delete":
            body = self.audit(rec, "destroy", singular, rec.ident)
        elif kind == "refetch":  # the record's description note changed
            body = self.audit(rec, "update", "note", rec.ident + 11, associated=(singular, rec.ident))
        else:
            body = {
                "event": "create_release",
                "release": {
                    "id": str(self.id_offset + 900_000 + next(self._audit) % 1000),
                    "reference_num": f"{self.products[rec.product]}-R-{rec.number}",
                    "name": "Summer",
                    "release_date": "2025-06-30",
                    "released": False,
                },
            }
        raw = orjson.dumps(body)
        headers = {"Content-Type": "application/json", "User-Agent": "Aha! (fake)"}
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
        return headers, raw

    def audit(
        self,
        rec: _Rec,
        action: str,
        auditable_type: str,
        auditable_id: int,
        *,
        associated: tuple[str, int] | None = None,
        changes: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An activity webhook body: `{"type": "audit", "audit": {...}}` (the GET /audits item shape)."""
        user = self._user(rec.idx)
        audit: dict[str, Any] = {
            "id": str(next(self._audit)),
            "audit_action": action,
            "created_at": _iso(self.now),
            "interesting": True,
            "user": user,
            "auditable_type": auditable_type,
            "auditable_id": auditable_id,
            "description": f"{action}d {auditable_type} {self._reference(rec)}",
            "auditable_url": f"{self.site}/{rec.kind}/{self._reference(rec)}",
            "changes": changes or [],
        }
        if associated is not None:
            audit["associated_type"], audit["associated_id"] = associated
        return {"type": "audit", "audit": audit}

    # -------------------------------------------------------- records

    def _user(self, k: int) -> dict[str, Any]:
        ident, name, email = _USERS[k % len(_USERS)]
        return {"id": ident, "name": name, "email": email, "created_at": "2019-01-01T00:00:00.000Z"}

    def _reference(self, rec: _Rec) -> str:
        prefix = self.products[rec.product]
        letter = {"features": "", "epics": "E-", "initiatives": "S-", "ideas": "I-"}[rec.kind]
        return f"{prefix}-{letter}{rec.number}"

    def _earlier(self, rec: _Rec, kind: str) -> _Rec | None:
        for k in range(rec.idx - 2, -1, -1):
            other = self._recs[k]
            if other.kind == kind and other.product == rec.product:
                return other
        return None

    def _ref(self, rec: _Rec) -> dict[str, Any]:
        reference = self._reference(rec)
        return {
            "id": str(rec.ident),
            "reference_num": reference,
            "name": self._name(rec),
            "created_at": _iso(rec.created),
            "url": f"{self.site}/{rec.kind}/{reference}",
            "resource": f"{self.base_url}/{rec.kind}/{reference}",
        }

    def _name(self, rec: _Rec) -> str:
        return str(
            rec.changes.get("name") or f"{_WORDS[rec.idx % len(_WORDS)].capitalize()} {SINGULAR[rec.kind]} {rec.number}"
        )

    def _full(self, rec: _Rec) -> dict[str, Any]:
        prefix = self.products[rec.product]
        product = {
            "id": self.product_ids[prefix],
            "reference_prefix": prefix,
            "name": f"Workspace {prefix}",
            "product_line": False,
            "created_at": "2019-01-01T00:00:00.000Z",
            "workspace_type": "product_workspace",
            "url": f"{self.site}/projects/{prefix}",
        }
        statuses = _IDEA_STATUSES if rec.kind == "ideas" else _FEATURE_STATUSES
        status_name, complete = statuses[rec.idx % len(statuses)]
        out: dict[str, Any] = {
            **self._ref(rec),
            "updated_at": _iso(rec.updated),
            "product_id": product["id"],
            "score": rec.idx % 50,
            "workflow_status": {
                "id": str(900_000 + rec.idx % len(statuses)),
                "name": str(rec.changes.get("status", status_name)),
                "position": rec.idx % len(statuses) + 1,
                "complete": complete,
                "color": "#dce7c6",
            },
            "description": {
                "id": str(rec.ident * 3 + 1),
                "body": f"<p>Why: <strong>{_WORDS[rec.idx % len(_WORDS)]}</strong> matters.</p><ul><li>one</li></ul>",
                "created_at": _iso(rec.created),
                "updated_at": _iso(rec.updated),
                "attachments": [],
            },
            "created_by_user": self._user(rec.idx + 1),
            "assigned_to_user": self._user(rec.idx) if rec.idx % 4 else None,
            "tags": [_WORDS[rec.idx % len(_WORDS)]] + (["Q3"] if rec.idx % 3 == 0 else []),
            "score_facts": [
                {"id": str(rec.ident + 1), "value": rec.idx % 5 + 1, "name": "Effort"},
                {"id": str(rec.ident + 2), "value": rec.idx % 7 + 1, "name": "Benefit"},
            ]
            + ([{"id": str(rec.ident + 3), "value": 100 * (rec.idx % 9 + 1), "name": "Reach"}] if rec.idx % 2 else []),
            "custom_fields": [
                {
                    "id": 424324947,
                    "key": "customer",
                    "name": "Customer",
                    "value": f"Acme {rec.idx % 3}",
                    "type": "string",
                }
            ],
            "integration_fields": [],
        }
        if rec.kind in ("features", "epics", "initiatives"):
            out["project"] = product
            out["start_date"] = "2025-03-01"
            out["due_date" if rec.kind != "initiatives" else "end_date"] = "2025-06-30"
            out["progress"] = rec.idx % 100
        if rec.kind in ("features", "epics"):
            release = 1 + rec.idx % 3
            out["release"] = {
                "id": str(278_327_320 + release),
                "reference_num": f"{prefix}-R-{release}",
                "name": f"Release {release}",
                "start_date": "2025-03-01",
                "release_date": f"2025-0{3 + release}-30",
                "parking_lot": False,
                "product_id": product["id"],
            }
            initiative = self._earlier(rec, "initiatives")
            out["initiative"] = self._ref(initiative) if initiative else None
        if rec.kind == "features":
            epic = self._earlier(rec, "epics")
            out["epic"] = self._ref(epic) if epic else None
            out["workflow_kind"] = {"id": "98484309", "name": "New"}
            if rec.number % 3 == 0:
                key = f"ENG-{rec.number}"
                out["integration_fields"] = [
                    {"id": str(rec.ident + 4), "name": "id", "value": str(10_000 + rec.number), "service_name": "jira"},
                    {"id": str(rec.ident + 5), "name": "key", "value": key, "service_name": "jira"},
                    {
                        "id": str(rec.ident + 6),
                        "name": "url",
                        "value": f"{self.jira_url}/browse/{key}",
                        "service_name": "jira",
                    },
                ]
        if rec.kind == "ideas":
            out["product"] = product
            out["votes"] = rec.idx % 13
            original = self._earlier(rec, "ideas")
            if rec.number % 4 == 0 and original is not None:
                out["duplicate_of"] = {**self._ref(original), "updated_at": _iso(original.updated)}
            feature = self._earlier(rec, "features")
            if rec.number % 5 == 0 and feature is not None:
                out["feature"] = self._ref(feature)
        # Any other change replaces that record field as served (e.g. `integration_fields`, `epic`).
        out.update({k: v for k, v in rec.changes.items() if k not in _DERIVED_CHANGES})
        return out

    # -------------------------------------------------------- HTTP

    def _json(self, data: Any, status: int = 200) -> Response:
        return Response(
            orjson.dumps(data),
            status_code=status,
            media_type="application/json",
            headers={"x-ratelimit-limit": "300", "x-ratelimit-remaining": "299"},
        )

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {self.api_key}"

    def _error(self, status: int, message: str) -> Response:
        return self._json({"error": message}, status)

    @staticmethod
    def _int(value: str | None, default: int) -> int:
        try:
            return int(value) if value is not None else default
        except ValueError:
            return default

    def _product(self, key: str) -> int | None:
        for k, prefix in enumerate(self.products):
            if key in (prefix, self.product_ids[prefix]):
                return k
        return None

    async def _list(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(401, "Unauthorized")
        kind = request.path_params["kind"]
        product = self._product(request.path_params["product"])
        if kind not in TYPES or product is None:
            return self._error(404, "Record not found")
        q = request.query_params
        recs = [r for r in self._recs if r.kind == kind and r.product == product and not r.deleted]
        if q.get("updated_since"):
            try:
                since = int(datetime.fromisoformat(q["updated_since"].replace("Z", "+00:00")).timestamp())
            except ValueError:
                return self._error(400, "updated_since is not a valid time")
            recs = [r for r in recs if r.updated >= since]
        recs.sort(key=lambda r: r.ident, reverse=kind == "ideas")
        per_page = max(1, min(200, self._int(q.get("per_page"), 30)))
        page = max(1, self._int(q.get("page"), 1))
        total_pages = -(-len(recs) // per_page)
        chunk = recs[(page - 1) * per_page : page * per_page]
        wanted = [f.strip() for f in q["fields"].split(",") if f.strip()] if q.get("fields") else None
        records = []
        for rec in chunk:
            full = self._full(rec)
            if wanted is not None:
                records.append({"id": full["id"], **{k: full[k] for k in wanted if k in full}})
            else:
                thin = _THIN + (("updated_at", "workflow_status", "description") if kind == "ideas" else ())
                thin += ("product_id",) if kind == "features" else ()
                records.append({k: full[k] for k in thin})
        current = 1 if self.stuck_paging else page
        pagination = {
            "total_records": len(recs),
            "total_pages": max(total_pages, 2) if self.stuck_paging else total_pages,
            "current_page": current,
        }
        return self._json({kind: records, "pagination": pagination})

    async def _detail(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._error(401, "Unauthorized")
        kind, ident = request.path_params["kind"], request.path_params["ident"]
        rec = self._by_id.get(int(ident)) if ident.isdigit() else None
        if rec is None:  # a reference number works too
            rec = next((r for r in self._recs if self._reference(r) == ident), None)
        if kind not in TYPES or rec is None or rec.deleted or rec.kind != kind:
            return self._error(404, "Record not found")
        return self._json({SINGULAR[kind]: self._full(rec)})

    def _starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/products/{product}/{kind}", self._list),
                Route("/api/v1/{kind}/{ident}", self._detail),
            ]
        )


def main(argv: list[str] | None = None) -> None:
    """Serve a fake Aha! on a loopback port until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    args = parser.parse_args(argv)
    fake = FakeAha(args.records, site=f"http://{args.host}:{args.port}")
    fake.faults.latency = args.latency
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
