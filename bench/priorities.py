"""Benchmark: GET /v1/insights/priorities (the urgent x important matrix) at 100,000 items.

    .venv/bin/python bench/priorities.py                                  # 100,000 items, SQLite and PostgreSQL
    .venv/bin/python bench/priorities.py --items 10000 --backends sqlite  # smoke check

For each backend: a fresh database (bench/api.py's helpers) seeded through
`store.items.apply` in batches. The items are shaped so every rule of the matrix has work:
20 containers over two sources; 1 in 100 items an epic or feature, 1 in 1,000 an
initiative; 40 % of the stories have an epic as parent and 5 % state an `implements` link
to one (by hub id); 65 % are open (to do or in progress); priorities spread over the five
levels; 30 % have a due date and 20 % a release date within +-60 days of the matrix's day;
30 % carry every RICE input (so a score). Then ANALYZE, and the route is timed in process
through the ASGI app (`TestClient`: routing, validation, the service and JSON encoding; no
network), p50/p95/max over --requests requests after one warm-up request, and the CPU time
of this process per request (the app runs in it; on a shared machine wall time is mostly
waiting for a core, CPU time is not; PostgreSQL's own CPU is not in it):

- everything (about 65,000 open items, every quadrant's first page of 50);
- one container (about 1/20 of the items);
- the open urgent and high items of every container (`priority_level` filter).

Target (issue 10): under 1 s p95 on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import report_table, time_case
from bench.api import Backend, analyze, needs_seed, run_report_bench
from hub.api import create_app
from hub.schema import WorkItem
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope

console = Console(highlight=False, width=150)
AS_OF = date(2026, 11, 1)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
BATCH = 1000
CONTAINERS = [(f"c{n}", f"TEAM{n}") for n in range(20)]
LEVELS = ("urgent", "high", "medium", "low", "none")
STATUSES = (("todo", "To Do"), ("in_progress", "In Progress"), ("done", "Done"), ("cancelled", "Won't Do"))


def items(total: int, seed: int) -> Iterator[list[WorkItem]]:
    rng = random.Random(seed)
    roadmap: list[str] = []  # epics and features seen so far: what stories hang under
    batch: list[WorkItem] = []
    for n in range(total):
        source, tool = ("bench-jira", "jira") if n % 2 else ("bench-linear", "linear")
        container_id, key = CONTAINERS[n % len(CONTAINERS)]
        item_id = f"{source}:{n}"
        extra: dict[str, Any] = {}
        if n % 1000 == 0:
            kind = "initiative"
        elif n % 100 == 1:
            kind = "epic" if n % 200 == 1 else "feature"
            roadmap.append(item_id)
        else:
            kind = "story"
            if roadmap and rng.random() < 0.4:
                extra["parent_id"] = rng.choice(roadmap)
            elif roadmap and rng.random() < 0.05:
                extra["links"] = [{"type": "implements", "target_id": rng.choice(roadmap)}]
        status = rng.choices(STATUSES, (40, 25, 30, 5))[0]
        if rng.random() < 0.3:
            extra["due_on"] = AS_OF + timedelta(days=rng.randint(-60, 60))
        if rng.random() < 0.2:
            extra["release"] = {"id": "r1", "name": "R1", "release_on": AS_OF + timedelta(days=rng.randint(-60, 60))}
        if rng.random() < 0.3:
            extra["rice"] = {
                "reach": rng.randint(1, 5000),
                "impact": rng.choice((0.25, 0.5, 1, 2, 3)),
                "confidence": rng.choice((0.5, 0.8, 1)),
                "effort": rng.randint(1, 20),
            }
        batch.append(
            WorkItem.model_validate(
                {
                    "source": source,
                    "tool": tool,
                    "native_id": str(n),
                    "key": f"{key}-{n}",
                    "title": f"Item {n}",
                    "kind": kind,
                    "status": {"category": status[0], "name": status[1]},
                    "priority": {"level": rng.choice(LEVELS)},
                    "url": f"https://example.test/{key}-{n}",
                    "container": {"id": container_id, "key": key, "name": key},
                    "created_at": NOW - timedelta(days=rng.randint(1, 700)),
                    "updated_at": NOW,
                    **extra,
                }
            )
        )
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(store: Store, total: int, seed_value: int) -> float:
    t0 = time.perf_counter()
    done = 0
    for batch in items(total, seed_value):
        store.items.apply(batch)
        done += len(batch)
        if done % (total // 5 or 1) < BATCH:
            console.print(f"  seeded {done:,} items ({time.perf_counter() - t0:.0f} s)")
    return time.perf_counter() - t0


def run_backend(backend: Backend, args: argparse.Namespace) -> None:
    console.print(f"[bold]{backend.name}[/]: {args.items:,} items")
    store = Store.open(backend.url)
    try:
        if needs_seed(store):
            console.print(f"  seeded in {seed(store, args.items, args.seed):.0f} s")
        analyze(store)
        path, day = "/v1/insights/priorities", AS_OF.isoformat()
        cases = [
            ("everything", {"path": path, "as_of": day}),
            ("one container", {"path": path, "as_of": day, "container": "TEAM3"}),
            ("priority urgent or high", {"path": path, "as_of": day, "priority_level": ["urgent", "high"]}),
        ]
        app = create_app(store=store, settings=Settings(database_url="sqlite://", background_tasks=False))
        token = store.keys.create(Scope.read, "bench")[1]
        table = report_table(f"{backend.name}: {args.items:,} items", "open items")
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            for name, params in cases:
                query = {k: v for k, v in params.items() if k != "path"}
                open_items = client.get(path, params=query).json()["open_items"]
                time_case(table, client, name, params, args.requests, f"{open_items:,}")
        console.print(table)
    finally:
        store.close()
        if backend.cleanup is not None:
            backend.cleanup()


def main() -> None:
    run_report_bench(__doc__, "priorities", run_backend)


if __name__ == "__main__":
    main()
