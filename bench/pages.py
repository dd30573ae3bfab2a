"""Benchmark: server time per dashboard page at 100,000 items, on SQLite and PostgreSQL.

    .venv/bin/python bench/pages.py                                  # 100,000 items, both backends
    .venv/bin/python bench/pages.py --items 10000 --backends sqlite  # smoke check
    .venv/bin/python bench/pages.py --database-url sqlite:////tmp/pages-100k.db --only roadmap
    .venv/bin/python bench/pages.py --database-url postgresql+psycopg://127.0.0.1/pages_100k

--database-url runs against that database instead of a throw-away one, and keeps it: it is
seeded only when it holds no items yet, so the next run (say, after a change to a page) times
the same 100,000 items without the minutes of seeding. Migrations run first, as `opshub
migrate` would. The PostgreSQL database must exist (`createdb -h 127.0.0.1 pages_100k`).

Data: bench/flow.py's seed (N delivery items in 20 containers over two sources, each with 5
status transitions over two years, plus one feature with 60 open stories), and 50 epics with
20 stories each under them, so the roadmap has a shape. Then ANALYZE (PostgreSQL: VACUUM
ANALYZE, see `settle`).

Each page is asked for in process through the ASGI app (`TestClient`, signed in with a session
cookie as a browser is): routing, the session check, the service, the SVG charts and the
Jinja2 rendering; no network. That is the server's time for the page; the browser's own work
(a few hundred KB of HTML, no script) is not in it. p50/p95/max over --requests requests after
one warm-up request, wall time and CPU time (this process's, every thread: routing, the
service's Python, the charts and templates; on SQLite the database's work too, on PostgreSQL
not the server's). Beside each page, the API requests that give the same figures are timed
the same way ("API" columns): the difference is what the page adds (session check, charts,
templates). Target (issue 11): p95 <= 300 ms per page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import Backend, analyze, postgres_backend, sqlite_backend
from bench.flow import CONTAINERS, NOW, _item
from bench.flow import seed as seed_flow
from hub.api import create_app
from hub.schema import WorkItem
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope

console = Console(highlight=False, width=150)
TARGET_MS = 300.0
EPICS, STORIES_PER_EPIC = 50, 20


def seed_roadmap(store: Store) -> None:
    """50 epics in bench-jira, each with 20 stories (a third done), updated in the last weeks."""
    epics, stories = [], []
    for e in range(EPICS):
        at = NOW - timedelta(days=e % 30)
        epics.append(
            WorkItem.model_validate(
                {
                    "source": "bench-jira",
                    "tool": "jira",
                    "native_id": f"E{e}",
                    "key": f"EPIC-{e}",
                    "title": f"Epic {e}",
                    "kind": "epic",
                    "status": {"category": "in_progress", "name": "In Progress"},
                    "container": {"id": CONTAINERS[e % 20][0], "key": CONTAINERS[e % 20][1]},
                    "updated_at": at,
                    "rice": {"reach": 100 + e, "impact": 1 + e % 3, "confidence": 0.8, "effort": 1 + e % 8},
                }
            )
        )
        for s in range(STORIES_PER_EPIC):
            status = ("done", "Done") if s % 3 == 0 else ("in_progress", "In Progress")
            stories.append(
                _item(
                    "bench-jira",
                    "jira",
                    f"E{e}-S{s}",
                    *CONTAINERS[e % 20],
                    at - timedelta(days=20),
                    at,
                    status,
                    parent_id=f"bench-jira:E{e}",
                    estimate={"value": 1 + s % 5},
                )
            )
    store.items.apply(epics)
    for start in range(0, len(stories), 500):
        store.items.apply(stories[start : start + 500])


Case = tuple[str, str, dict[str, str], list[tuple[str, dict[str, str]]]]
"""(name, page path, params, the API requests that give the same figures)."""


def cases() -> list[Case]:
    team = {"container": "TEAM3"}
    return [
        ("overview", "/", {}, [("/v1/sources", {})]),
        ("roadmap", "/roadmap", {}, [("/v1/roadmap", {})]),
        ("priorities", "/priorities", {}, [("/v1/insights/priorities", {}), ("/v1/items", {"sort": "-rice_score"})]),
        (
            "priorities, one container",
            "/priorities",
            team,
            [("/v1/insights/priorities", team), ("/v1/items", {"sort": "-rice_score", **team})],
        ),
        ("flow, one container", "/flow", team, [("/v1/insights/flow", team)]),
        ("flow, everything", "/flow", {}, [("/v1/insights/flow", {})]),
        (
            "flow + forecast",
            "/flow",
            {**team, "forecast": "bench-pb:F1"},
            [("/v1/insights/flow", team), ("/v1/insights/forecast", {"item": "bench-pb:F1"})],
        ),
        ("quality, one container", "/quality", team, [("/v1/insights/quality", team)]),
        ("quality, everything", "/quality", {}, [("/v1/insights/quality", {})]),
        ("items", "/items", {}, [("/v1/items", {})]),
        (
            "items, filtered",
            "/items",
            {"status_category": "in_progress", **team},
            [("/v1/items", {"status_category": "in_progress", **team})],
        ),
        (
            "item page (epic and its tree)",
            "/items/bench-jira:E1",
            {},
            [
                ("/v1/items/bench-jira:E1", {"include": "raw"}),
                ("/v1/items/bench-jira:E1/history", {}),
                ("/v1/items/bench-jira:E1/tree", {}),
            ],
        ),
    ]


def percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, max(0, -(-len(sorted_ms) * q // 100) - 1))]


def measure(
    client: TestClient, requests: list[tuple[str, dict[str, str]]], times: int, headers: dict[str, str] | None = None
) -> tuple[list[float], list[float]]:
    """Wall and CPU ms per round of `requests` (one page, or the API calls behind it), after a
    warm-up round, each sorted. CPU is time.process_time(): all threads of this process."""

    def one_round() -> None:
        for path, params in requests:
            response = client.get(path, params=params, headers=headers)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])

    one_round()
    wall, cpu = [], []
    for _ in range(times):
        t0, c0 = time.perf_counter(), time.process_time()
        one_round()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return sorted(wall), sorted(cpu)


def settle(store: Store) -> None:
    """ANALYZE the fresh data; on PostgreSQL VACUUM it too, as autovacuum would have by the
    time anyone looks at a dashboard (it vacuums a table after inserts since PostgreSQL 13:
    https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM). The test
    server here runs with autovacuum off, and without the visibility map VACUUM sets, an
    index-only scan reads every table row anyway (the flow page's counts and migration
    0015's covering indexes: 2-3x slower statements than a live database would run)."""
    if store.engine.dialect.name != "postgresql":
        analyze(store)
        return
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))


def _has_items(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM items")).scalar_one())


def run_backend(backend: Backend, args: argparse.Namespace) -> list[tuple[str, float]]:
    console.print(f"[bold]{backend.name}[/]: {args.items:,} items x 5 transitions + {EPICS} epics")
    store = Store.open(backend.url)
    p95s = []
    try:
        found = _has_items(store)
        if found:
            console.print(f"  {backend.url.split('@')[-1]} already holds {found:,} items: not seeded again")
        else:
            seconds = seed_flow(store, args.items, args.seed)
            seed_roadmap(store)
            console.print(f"  seeded in {seconds:.0f} s")
            settle(store)
        app = create_app(store=store, settings=Settings(database_url="sqlite://", background_tasks=False))
        token = store.keys.create(Scope.read, "bench")[1]
        table = Table(
            "page",
            "requests",
            "p50 ms",
            "p95 ms",
            "max ms",
            "CPU p50 ms",
            "CPU p95 ms",
            "KB",
            f"p95 <= {TARGET_MS:.0f} ms",
            "API p50 ms",
            "API p95 ms",
            title=f"{backend.name}: {found or args.items:,} items, load {os.getloadavg()[0]:.1f}",
        )
        with TestClient(app) as client:
            nonce = client.get("/signin").text.split('name="signin_nonce" value="')[1].split('"')[0]
            signed_in = client.post("/signin", data={"api_key": token, "signin_nonce": nonce}, follow_redirects=False)
            assert signed_in.status_code == 303, signed_in.text
            bearer = {"Authorization": f"Bearer {token}"}
            for name, path, params, api in cases():
                if args.only and not any(word in name for word in args.only.split(",")):
                    continue
                ms, cpu = measure(client, [(path, params)], args.requests)
                api_ms, _ = measure(client, api, args.requests, headers=bearer)
                size = len(client.get(path, params=params).content) / 1024
                p95 = percentile(ms, 95)
                p95s.append((name, p95))
                table.add_row(
                    name,
                    str(len(ms)),
                    f"{percentile(ms, 50):.0f}",
                    f"{p95:.0f}",
                    f"{ms[-1]:.0f}",
                    f"{percentile(cpu, 50):.0f}",
                    f"{percentile(cpu, 95):.0f}",
                    f"{size:.0f}",
                    "yes" if p95 <= TARGET_MS else "NO",
                    f"{percentile(api_ms, 50):.0f}",
                    f"{percentile(api_ms, 95):.0f}",
                )
        console.print(table)
        console.print(f"  load after: {os.getloadavg()[0]:.1f}")
    finally:
        store.close()
        if backend.cleanup is not None:
            backend.cleanup()
    return p95s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="admin URL; the benchmark creates and drops its own database next to it",
    )
    parser.add_argument(
        "--database-url",
        default="",
        help="use (and keep) this database instead of throw-away ones; seeded only when it holds no items",
    )
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--only", default="", help="comma-separated words: time only pages whose name has one")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="opshub-bench-pages-"))
    try:
        if args.database_url:
            kind = "sqlite" if args.database_url.startswith("sqlite") else "postgresql"
            run_backend(Backend(kind, args.database_url), args)
            return
        for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if name == "sqlite":
                run_backend(sqlite_backend(workdir), args)
            elif name in ("postgresql", "postgres", "pg"):
                run_backend(postgres_backend(args.pg_url), args)
            else:
                raise SystemExit(f"unknown backend {name!r}: use sqlite,postgresql")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
