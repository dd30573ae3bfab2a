"""Benchmark: seed N WorkItems through Store.items.apply, then time GET /v1/items pages.

    .venv/bin/python bench/api.py                       # 1,000,000 items on SQLite and PostgreSQL
    .venv/bin/python bench/api.py --items 20000         # smoke check (a minute)
    .venv/bin/python bench/api.py --backends sqlite --items 200000

For each backend it makes a fresh database (a SQLite file in a temporary directory; a
PostgreSQL database created through the admin URL --pg-url and dropped afterwards), seeds it
through `Store.items.apply` in batches of 500 (one transaction each, as connectors write) and
prints apply throughput. Then it starts the real API: `uvicorn` serving `hub.api.app.create_app`
in a separate process on a loopback port (access log off), and times `GET /v1/items?limit=100`
with a keep-alive `httpx.Client` for several filter combinations, on the first page and on a
deep page reached by following `next_cursor` (--deep-pages pages in). Latency is measured
client side, per request, including HTTP and JSON encoding.

After seeding, the benchmark runs ANALYZE (PostgreSQL autovacuum and a periodic SQLite
`PRAGMA optimize` would do the same in production; a bulk-loaded table without statistics
gets naive plans). Pass --no-analyze to see the difference.

Targets (issue 2): apply >= 10,000 items/s; p99 < 50 ms per page at 1M items.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.schema import WorkItem
from hub.store import ItemQuery, Store
from hub.store.keys import Scope

console = Console(highlight=False, width=150)

APPLY_TARGET = 10_000  # items/s
P99_TARGET_MS = 50.0
BATCH = 500
PAGE = 100
NOW = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=730)

# ---------------------------------------------------------------------- data


SOURCES = [  # (source, tool, weight, key style)
    ("acme-jira", "jira", 40, "jira"),
    ("acme-linear", "linear", 20, "linear"),
    ("acme-github", "github", 20, "github"),
    ("acme-gitlab", "gitlab", 10, "gitlab"),
    ("acme-productboard", "productboard", 10, "pb"),
]
KINDS = {
    "story": 30,
    "task": 25,
    "bug": 20,
    "subtask": 10,
    "epic": 5,
    "feature": 5,
    "idea": 3,
    "initiative": 1,
    "other": 1,
}
STATUSES = {"done": 45, "backlog": 15, "todo": 15, "in_progress": 15, "cancelled": 10}
STATUS_NAMES = {
    "done": "Done",
    "backlog": "Backlog",
    "todo": "To Do",
    "in_progress": "In Progress",
    "cancelled": "Won't Do",
}
PRIORITIES = {"none": 20, "low": 25, "medium": 35, "high": 15, "urgent": 5}
LABELS = [
    "backend",
    "frontend",
    "api",
    "mobile",
    "ios",
    "android",
    "web",
    "infra",
    "security",
    "performance",
    "ux",
    "design",
    "docs",
    "tech-debt",
    "customer",
    "enterprise",
    "billing",
    "auth",
    "search",
    "reporting",
    "analytics",
    "onboarding",
    "growth",
    "payments",
    "notifications",
    "integrations",
    "data",
    "ml",
    "devops",
    "ci",
    "testing",
    "accessibility",
    "i18n",
    "privacy",
    "compliance",
    "sso",
    "export",
    "import",
    "dashboard",
    "admin",
    "settings",
    "email",
    "slack",
    "webhooks",
    "sdk",
    "cli",
    "migration",
    "regression",
    "hotfix",
    "spike",
]
VERBS = ["Fix", "Add", "Improve", "Refactor", "Remove", "Support", "Investigate", "Migrate", "Document", "Speed up"]
NOUNS = [
    "login",
    "checkout",
    "search results",
    "export",
    "billing page",
    "dashboard",
    "webhook retries",
    "SSO",
    "invoice PDF",
    "onboarding flow",
    "rate limiter",
    "audit log",
    "notifications",
    "CSV import",
    "API tokens",
    "sprint report",
    "roadmap view",
    "mobile sync",
    "password reset",
    "team settings",
]
TAILS = [
    "timeout",
    "for enterprise plans",
    "on Safari",
    "when offline",
    "for large accounts",
    "in dark mode",
    "after upgrade",
    "with SSO",
    "under load",
    "for new users",
    "",
    "",
    "",
    "",
]
PEOPLE = 2000
BUG_TEXT = "Steps to reproduce:\n\n1. Open the page\n2. Wait\n\nExpected: it works."
CONTAINERS_PER_SOURCE = 20


def _weighted(table: dict[str, int]) -> tuple[list[str], list[int]]:
    return list(table), list(table.values())


@dataclass
class Generator:
    """Deterministic, realistic-looking WorkItems (skewed like real trackers: a few busy people,
    a few popular labels, most items done, updated_at spread over two years)."""

    seed: int = 42
    rng: random.Random = field(init=False)
    parents: dict[str, list[str]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        # Zipf-ish weights: person i and label i are picked ~ 1/(i+1)^0.8
        self.person_weights = [1 / (i + 1) ** 0.8 for i in range(PEOPLE)]
        self.label_weights = [1 / (i + 1) ** 0.8 for i in range(len(LABELS))]
        self.source_w = [s[2] for s in SOURCES]
        self.kinds, self.kind_w = _weighted(KINDS)
        self.statuses, self.status_w = _weighted(STATUSES)
        self.prios, self.prio_w = _weighted(PRIORITIES)

    @staticmethod
    def email(person: int) -> str:
        return f"person{person:04d}@example.com"

    def person(self, source: str, tool: str, index: int) -> dict[str, Any]:
        native = {
            "jira": f"5b10a2844c20165700ed{index:04d}",
            "linear": f"usr-{index:04d}",
            "github": f"{1000 + index}",
            "gitlab": f"{2000 + index}",
            "productboard": f"pb-{index}",
        }[tool]
        ref: dict[str, Any] = {"native_id": native, "name": f"Person {index:04d}"}
        if tool != "github" or index % 3:  # GitHub hides some emails: those stay separate people
            ref["email"] = self.email(index)
        return ref

    def item(self) -> WorkItem:
        rng = self.rng
        source, tool, _, style = rng.choices(SOURCES, self.source_w)[0]
        n = self.counters[source] = self.counters.get(source, 0) + 1
        container = rng.randrange(CONTAINERS_PER_SOURCE)
        project = f"P{container:02d}"
        key = {
            "jira": f"{project}-{n}",
            "linear": f"ENG{container:02d}-{n}",
            "github": f"acme/repo{container:02d}#{n}",
            "gitlab": f"acme/group/repo{container:02d}#{n}",
            "pb": f"feat-{n}",
        }[style]
        kind = rng.choices(self.kinds, self.kind_w)[0]
        if tool == "productboard":
            kind = rng.choice(["feature", "feature", "idea", "initiative"])
        status = rng.choices(self.statuses, self.status_w)[0]
        updated = NOW - SPAN * rng.random()
        created = updated - timedelta(days=rng.random() * 120)
        people = rng.choices(range(PEOPLE), self.person_weights, k=3)
        assignees = [] if rng.random() < 0.15 else [self.person(source, tool, people[0])]
        if rng.random() < 0.1:
            assignees.append(self.person(source, tool, people[1]))
        labels = rng.choices(LABELS, self.label_weights, k=rng.choice([0, 1, 1, 2, 2, 3]))
        item_id = f"{source}:{n}"
        sprint = f"{updated.year}.{updated.isocalendar()[1] // 2}"
        parent = None
        pool = self.parents.setdefault(source, [])
        if kind in ("epic", "feature", "initiative"):
            pool.append(item_id)
            if len(pool) > 2000:
                pool.pop(0)
        elif pool and rng.random() < 0.6:
            parent = rng.choice(pool)
        data: dict[str, Any] = {
            "source": source,
            "tool": tool,
            "native_id": str(n),
            "key": key,
            "url": f"https://{tool}.example.com/{key}",
            "kind": kind,
            "kind_raw": kind.title(),
            "title": f"{rng.choice(VERBS)} {rng.choice(NOUNS)} {rng.choice(TAILS)}".strip(),
            "description": BUG_TEXT if kind == "bug" else None,
            "status": {"category": status, "name": STATUS_NAMES[status]},
            "priority": {"level": rng.choices(self.prios, self.prio_w)[0]},
            "assignees": assignees,
            "reporter": self.person(source, tool, people[2]),
            "labels": labels,
            "container": {"id": f"{source}/{project}", "key": project, "name": f"Project {project}"},
            "parent_id": parent,
            "created_at": created,
            "updated_at": updated,
            "completed_at": updated if status == "done" else None,
            "estimate": {"value": rng.choice([1, 2, 3, 5, 8, 13]), "unit": "points"} if rng.random() < 0.5 else None,
            "iteration": {"id": f"{source}-it-{sprint}", "name": f"Sprint {sprint}"}
            if tool in ("jira", "linear") and rng.random() < 0.7
            else None,
            "raw": {"id": n, "key": key, "fields": {"summary": "…", "status": STATUS_NAMES[status]}},
        }
        return WorkItem.model_validate(data)

    def batches(self, total: int, size: int = BATCH) -> Iterator[list[WorkItem]]:
        done = 0
        while done < total:
            count = min(size, total - done)
            yield [self.item() for _ in range(count)]
            done += count


# ---------------------------------------------------------------------- backends


@dataclass
class Backend:
    name: str
    url: str
    cleanup: Any = None


def sqlite_backend(workdir: Path) -> Backend:
    path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
    return Backend(
        "sqlite",
        f"sqlite:///{path}",
        cleanup=lambda: [p.unlink(missing_ok=True) for p in workdir.glob(path.name + "*")],
    )


DATABASE_URL_HELP = (
    "time against this database instead of fresh ones (seeded first when it holds no items, kept "
    "afterwards): seed 100,000 items once, then profile or re-measure a change in seconds"
)


def existing_backend(url: str) -> Backend:
    name = "postgresql" if url.startswith("postgresql") else "sqlite"
    return Backend(name, url)


def needs_seed(store: Store) -> bool:
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 0


def postgres_backend(admin_url: str) -> Backend:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"opshub_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return Backend("postgresql", url, cleanup=drop)


# ---------------------------------------------------------------------- seeding


def seed(store: Store, total: int, seed_value: int) -> tuple[float, float]:
    """Returns (apply items/s, generation items/s)."""
    gen = Generator(seed_value)
    apply_s = gen_s = 0.0
    with Progress(
        TextColumn("  seeding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("seed", total=total)
        batches = gen.batches(total)
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            t1 = time.perf_counter()
            gen_s += t1 - t0
            if batch is None:
                break
            result = store.items.apply(batch)
            apply_s += time.perf_counter() - t1
            assert result.upserted == len(batch), result
            progress.advance(task, len(batch))
            done = int(progress.tasks[0].completed)
            if not console.is_terminal and done % max(BATCH, total // 10 // BATCH * BATCH) == 0:
                console.print(f"  seeded {done:,} items, apply {done / apply_s:,.0f} items/s so far")
    return total / apply_s, total / gen_s


def analyze(store: Store) -> None:
    with store.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


def explain(store: Store, seed_value: int, deep_pages: int) -> None:
    """Print the query plan of each combination's first and deep page (PostgreSQL: EXPLAIN ANALYZE)."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        # The page statement is the one selecting `sort_value`: a keyed page (label, assignee,
        # container) starts FROM item_labels / item_assignees / a UNION ALL, not FROM items,
        # and resolve_links' lookups after it also read items.
        if "sort_value" in statement and "LIMIT" in statement:
            captured.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    pg = store.engine.dialect.name == "postgresql"
    try:
        for name, filters in combinations(seed_value):
            query, sort = item_query(filters)
            cursor = None
            for pages in range(1, deep_pages + 1):
                captured.clear()
                _, next_cursor = store.queries.list_items(query, sort=sort, limit=PAGE, cursor=cursor)
                if (pages == 1 or next_cursor is None or pages == deep_pages) and captured:
                    statement, parameters = captured[0]
                    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if pg else "EXPLAIN QUERY PLAN "
                    with store.engine.connect() as conn:
                        t0 = time.perf_counter()
                        plan = conn.exec_driver_sql(prefix + statement, parameters).all()
                        took = (time.perf_counter() - t0) * 1000
                    console.print(f"\n[bold]{name}[/] page {pages} ({took:.1f} ms):", markup=True)
                    for row in plan:
                        console.print("    " + (str(row[0]) if pg else str(row[-1])), markup=False)
                if next_cursor is None:
                    break
                cursor = next_cursor
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)


SINGLE = ("updated_after", "updated_before", "q", "include_deleted")


def item_query(filters: list[tuple[str, str]]) -> tuple[ItemQuery, str]:
    """The store query and sort of a combination's request parameters."""
    values: dict[str, list[str]] = {}
    for key, value in filters:
        values.setdefault(key, []).append(value)
    sort = values.pop("sort", ["-updated_at"])[0]
    query = ItemQuery(
        **{k: (v if k not in SINGLE else (parse_time(v[0]) if "updated" in k else v[0])) for k, v in values.items()}
    )
    return query, sort


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------------- serving


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def report_gc_pauses() -> None:
    """Print, when this process exits, the collector's passes per generation: how many, their
    total and slowest pause, and how many objects generation 2 held (not frozen) at the last
    full pass. A walk's p99 is its slowest page, so one full pass inside a walk can decide it.
    https://docs.python.org/3/library/gc.html#gc.callbacks"""
    import atexit
    import gc

    started: list[float] = [0.0]
    passes: dict[int, list[float]] = {0: [], 1: [], 2: []}
    gen2_size: list[int] = [0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            if info["generation"] == 2:  # counted before the clock starts: listing them takes time too
                gen2_size[0] = len(gc.get_objects(2))
            started[0] = time.perf_counter()
            return
        passes[info["generation"]].append((time.perf_counter() - started[0]) * 1000)

    def report() -> None:
        for generation, pauses in passes.items():
            if pauses:
                print(
                    f"  gc generation {generation}: {len(pauses)} passes, {sum(pauses):.1f} ms in all,"
                    f" slowest {max(pauses):.1f} ms",
                    flush=True,
                )
        print(
            f"  gc: generation 2 held {gen2_size[0]:,} objects at the last full pass; frozen"
            f" {gc.get_freeze_count():,}; thresholds {gc.get_threshold()}",
            flush=True,
        )

    gc.callbacks.append(on_gc)
    atexit.register(report)
    # uvicorn restores this handler after its graceful shutdown and raises the SIGTERM again;
    # the default handler would end the process without running atexit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def serve_forever(url: str, port: int, gc_report: bool = False) -> None:
    """Child process: the real app on uvicorn, no access log (it would time the logger)."""
    import uvicorn

    from hub.api.app import create_app

    if gc_report:
        report_gc_pauses()
    store = Store.open(url, migrate_schema=False)
    uvicorn.run(create_app(store=store), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start_server(url: str, gc_report: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    extra = ["--gc-report"] if gc_report else []
    proc = subprocess.Popen([sys.executable, __file__, "--serve", url, "--port", str(port), *extra])
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the API process exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the API did not answer /healthz within 60 s")


# ---------------------------------------------------------------------- measuring


@dataclass
class Row:
    combo: str
    page: str
    n: int
    p50: float
    p99: float
    max: float
    items: int


def percentile(sorted_ms: list[float], q: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(q * (len(sorted_ms) - 1))))
    return sorted_ms[index]


def measure(client: httpx.Client, params: list[tuple[str, str]], requests: int) -> tuple[list[float], int]:
    times: list[float] = []
    count = 0
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get("/v1/items", params=params)
        times.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
        count = len(response.json()["items"])
    return sorted(times), count


def combinations(gen_seed: int) -> list[tuple[str, list[tuple[str, str]]]]:
    busy = Generator.email(0)  # the busiest person (Zipf rank 1)
    mid = Generator.email(200)
    return [
        ("(none)", []),
        ("tool=jira", [("tool", "jira")]),
        ("status_category=in_progress&kind=bug", [("status_category", "in_progress"), ("kind", "bug")]),
        ("label=security", [("label", "security")]),
        ("label=ios&label=android", [("label", "ios"), ("label", "android")]),
        (f"assignee={busy}", [("assignee", busy)]),
        (f"assignee={mid}", [("assignee", mid)]),
        ("container=acme-jira/P03&sort=updated_at", [("container", "acme-jira/P03"), ("sort", "updated_at")]),
        ("priority_level=urgent&source=acme-linear", [("priority_level", "urgent"), ("source", "acme-linear")]),
        ("q=timeout", [("q", "timeout")]),
        ("updated_after=2026-01-01&kind=epic", [("updated_after", "2026-01-01T00:00:00Z"), ("kind", "epic")]),
    ]


def bench_api(base: str, token: str, requests: int, deep_pages: int, seed_value: int) -> list[Row]:
    rows: list[Row] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        for name, filters in combinations(seed_value):
            params = [*filters, ("limit", str(PAGE))]
            for _ in range(5):  # warm up
                client.get("/v1/items", params=params).raise_for_status()
            times, count = measure(client, params, requests)
            rows.append(
                Row(name, "first", len(times), percentile(times, 0.5), percentile(times, 0.99), times[-1], count)
            )
            # Walk next_cursor deep_pages pages in, then time that page.
            cursor, depth, walk = None, 1, []
            body = client.get("/v1/items", params=params).json()
            while depth < deep_pages and body.get("next_cursor"):
                cursor = body["next_cursor"]
                t0 = time.perf_counter()
                body = client.get("/v1/items", params=[*params, ("cursor", cursor)]).json()
                walk.append((time.perf_counter() - t0) * 1000)
                depth += 1
            if cursor is None:
                rows.append(Row(name, "deep: n/a", 0, 0, 0, 0, 0))
                continue
            times, count = measure(client, [*params, ("cursor", cursor)], requests)
            rows.append(
                Row(
                    name, f"page {depth}", len(times), percentile(times, 0.5), percentile(times, 0.99), times[-1], count
                )
            )
            walk.sort()
            rows.append(
                Row(name, f"walk 2..{depth}", len(walk), percentile(walk, 0.5), percentile(walk, 0.99), walk[-1], PAGE)
            )
    return rows


def print_table(backend: str, total: int, apply_rate: float, gen_rate: float, rows: list[Row]) -> None:
    ok = "[green]ok[/]" if apply_rate >= APPLY_TARGET else "[red]MISS[/]"
    console.print(
        f"\n[bold]{backend}[/]: {total:,} items; apply {apply_rate:,.0f} items/s "
        f"(target >= {APPLY_TARGET:,}: {ok}); generating items: {gen_rate:,.0f} items/s (not counted)"
    )
    table = Table(title=f"GET /v1/items?limit={PAGE} on {backend}, {total:,} items (ms, client side)")
    for col in ("filters", "page", "n", "p50", "p99", "max", "items", "p99<50"):
        table.add_column(col, justify="left" if col in ("filters", "page") else "right")
    for r in rows:
        if r.n == 0:
            table.add_row(r.combo, r.page, "0", "-", "-", "-", "-", "-")
            continue
        mark = "ok" if r.p99 < P99_TARGET_MS else "[red]MISS[/]"
        table.add_row(r.combo, r.page, str(r.n), f"{r.p50:.1f}", f"{r.p99:.1f}", f"{r.max:.1f}", str(r.items), mark)
    console.print(table)


def run_backend(backend: Backend, args: argparse.Namespace) -> None:
    console.print(f"[bold]{backend.name}[/]: database {make_url(backend.url).render_as_string()}")
    store = Store.open(backend.url)
    proc = None
    try:
        apply_rate = gen_rate = 0.0
        if backend.cleanup is not None or needs_seed(store):
            apply_rate, gen_rate = seed(store, args.items, args.seed)
            console.print(f"  seeded {args.items:,} items: apply {apply_rate:,.0f} items/s")
        else:
            console.print("  already seeded: not seeding (apply figure not measured)")
        if not args.no_analyze:
            t0 = time.perf_counter()
            analyze(store)
            console.print(f"  ANALYZE took {time.perf_counter() - t0:.1f} s")
        rows: list[Row] = []
        if not args.skip_api:
            _, token = store.keys.create(Scope.read, "bench")
            proc, base = start_server(backend.url, args.gc_report)
            console.print(f"  API: uvicorn (separate process) on {base}; {args.requests} requests per row")
            rows = bench_api(base, token, args.requests, args.deep_pages, args.seed)
        print_table(backend.name, args.items, apply_rate, gen_rate, rows)
        if args.explain:
            explain(store, args.seed, args.deep_pages)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        store.close()
        if not args.keep and backend.cleanup is not None:
            backend.cleanup()
        elif args.keep:
            console.print(f"  kept database: {backend.url}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="admin URL; the benchmark creates and drops its own database next to it",
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests per filter combination and page")
    parser.add_argument("--deep-pages", type=int, default=50, help="how many pages in the deep page is")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=None, help="where the SQLite file goes (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--no-analyze", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print each combination's query plans afterwards")
    parser.add_argument("--skip-api", action="store_true", help="seed (and explain) only")
    parser.add_argument("--database-url", help=DATABASE_URL_HELP.replace("100,000", "--items"))
    parser.add_argument(
        "--gc-report", action="store_true", help="the API process prints its collector passes and pauses at exit"
    )
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_forever(args.serve, args.port, args.gc_report)
        return
    if args.database_url:
        run_backend(existing_backend(args.database_url), args)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="opshub-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if name == "sqlite":
                run_backend(sqlite_backend(workdir), args)
            elif name in ("postgresql", "postgres", "pg"):
                run_backend(postgres_backend(args.pg_url), args)
            else:
                raise SystemExit(f"unknown backend {name!r}: use sqlite,postgresql")
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def run_report_bench(
    description: str | None,
    name: str,
    run_backend: Callable[[Backend, argparse.Namespace], None],
    *,
    existing_store: bool = True,
) -> None:
    """The command line of a report benchmark (bench/quality.py, priorities.py, digest.py,
    flow.py): seed `--items` on each of `--backends`, then time `--requests` requests per case.
    With `existing_store`, `--database-url` times a store seeded before (the benchmark's
    `run_backend` must then not seed it again)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="admin URL; the benchmark creates and drops its own database next to it",
    )
    parser.add_argument("--requests", type=int, default=20, help="timed requests per case")
    parser.add_argument("--seed", type=int, default=42)
    if existing_store:
        parser.add_argument("--database-url", help=DATABASE_URL_HELP)
    args = parser.parse_args()
    if getattr(args, "database_url", None):
        run_backend(existing_backend(args.database_url), args)
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"opshub-bench-{name}-"))
    try:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend == "sqlite":
                run_backend(sqlite_backend(workdir), args)
            elif backend in ("postgresql", "postgres", "pg"):
                run_backend(postgres_backend(args.pg_url), args)
            else:
                raise SystemExit(f"unknown backend {backend!r}: use sqlite,postgresql")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
