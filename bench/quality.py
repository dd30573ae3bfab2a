"""Benchmark: GET /v1/insights/quality at 100,000 items, on SQLite and PostgreSQL.

    .venv/bin/python bench/quality.py                                  # 100,000 items, both backends
    .venv/bin/python bench/quality.py --items 10000 --backends sqlite  # smoke check

For each backend: a fresh database (bench/api.py's helpers) with N items over two sources and
20 containers: one epic in 50 and one feature in 100 (RICE on half), stories under the epics,
a tenth of the parents missing from the hub, a link per 20 items (a third to a missing target,
a fifth `duplicates` across the sources), fields filled at random (assignee 70 %, estimate
50 %, description 80 %, iteration 40 %, priority 70 %), 2 % of the items with a recorded
vocabulary fallback, and 10 % of the open items in progress for longer than the stale days.
Items go through `store.items.apply` in batches of 1,000, then ANALYZE; the route is timed in
process through the ASGI app (`TestClient`: routing, the service, JSON encoding; no network):

- everything (both sources, 20 containers);
- one container (about 1/20 of the items).

Latency per request: p50/p95/max over --requests requests after one warm-up request, and this
process's CPU time per request (on a shared machine wall time is mostly waiting for a core;
PostgreSQL's own CPU runs in its server and is not in it).
Target (issue 10): under 1 s p95 on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
from mappings.engine import FALLBACKS_KEY

console = Console(highlight=False, width=150)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
BATCH = 1000
CONTAINERS = [(f"c{n}", f"TEAM{n}") for n in range(20)]
CATEGORIES = (("todo", "To Do"), ("in_progress", "In Progress"), ("done", "Done"), ("backlog", "Backlog"))


def items(total: int, seed: int) -> Iterator[list[WorkItem]]:
    rng = random.Random(seed)
    batch: list[WorkItem] = []
    for n in range(total):
        source, tool = ("bench-jira", "jira") if n % 2 else ("bench-gh", "github")
        container_id, key = CONTAINERS[n % len(CONTAINERS)]
        kind = "epic" if n % 50 == 0 else "feature" if n % 100 == 1 else "story"
        category, name = rng.choice(CATEGORIES)
        updated = NOW - timedelta(days=rng.randrange(1, 60))
        data: dict[str, Any] = {
            "source": source,
            "tool": tool,
            "native_id": str(n),
            "key": f"{key}-{n}",
            "kind": kind,
            "url": f"https://bench.example/{key}-{n}",
            "title": f"Item {n % 30_000}",
            "status": {"category": category, "name": name},
            "updated_at": updated,
            "container": {"id": container_id, "key": key, "name": key},
        }
        if kind == "story":
            epic = n - n % 50
            data["parent_id"] = f"{source}:{epic}" if rng.random() > 0.1 else f"{source}:gone-{n}"
        if rng.random() < 0.7:
            data["assignees"] = [{"native_id": f"u{n % 40}", "name": f"User {n % 40}"}]
        if rng.random() < 0.5:
            data["estimate"] = {"value": rng.randrange(1, 13), "unit": "points"}
        if rng.random() < 0.8:
            data["description"] = "Why and how."
        if rng.random() < 0.4:
            data["iteration"] = {"id": f"s{n % 10}", "name": f"Sprint {n % 10}"}
        if rng.random() < 0.7:
            data["priority"] = {"level": rng.choice(("urgent", "high", "medium", "low")), "name": "P"}
        if kind == "feature" and rng.random() < 0.5:
            data["rice"] = {"reach": 100, "impact": 2, "confidence": 0.8, "effort": 3}
        if rng.random() < 0.02:
            data["custom"] = {FALLBACKS_KEY: [{"field": "status", "raw": f"Odd {n % 7}"}]}
        if n % 20 == 0:
            target = rng.choice(("missing", "dup", "relates"))
            other = "bench-gh" if source == "bench-jira" else "bench-jira"
            data["links"] = [
                {"type": "relates", "target_id": f"{source}:missing-{n}"}
                if target == "missing"
                else {"type": "duplicates", "target_id": f"{other}:{n + 1}"}
                if target == "dup"
                else {"type": "relates", "target_id": f"{source}:{max(0, n - 3)}"}
            ]
        batch.append(WorkItem.model_validate(data))
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
        as_of = NOW.isoformat()
        cases = [
            ("quality, everything", {"path": "/v1/insights/quality", "as_of": as_of}),
            ("quality, one container", {"path": "/v1/insights/quality", "container": "TEAM3", "as_of": as_of}),
        ]
        app = create_app(store=store, settings=Settings(database_url="sqlite://", background_tasks=False))
        token = store.keys.create(Scope.read, "bench")[1]
        table = report_table(f"{backend.name}: {args.items:,} items")
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            for name, params in cases:
                time_case(table, client, name, params, args.requests)
        console.print(table)
    finally:
        store.close()
        if backend.cleanup is not None:
            backend.cleanup()


def main() -> None:
    run_report_bench(__doc__, "quality", run_backend)


if __name__ == "__main__":
    main()
