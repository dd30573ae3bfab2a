"""Benchmark: GET /v1/insights/flow and /v1/insights/forecast at 100,000 items x 5 transitions.

    .venv/bin/python bench/flow.py                          # 100,000 items, SQLite and PostgreSQL
    .venv/bin/python bench/flow.py --items 10000 --backends sqlite   # smoke check

For each backend: a fresh database (bench/api.py's helpers), N delivery items in 20
containers over two sources, each with 5 status transitions over the two years before
2026-11-01 (to do -> in progress -> in review -> in progress -> done, 80 %; the same ending in
review, 5 %, created in the last 120 days, or cancelled, 15 %), stored through `store.items.apply` and
`TransitionStore.record` in batches; plus one feature with 60 open stories under it in two
containers. Then ANALYZE, and the routes are timed in process through the ASGI app
(`TestClient`: routing, validation, the service and JSON encoding; no network):

- flow, one container (about 1/20 of the items), default period (12 weeks);
- flow, everything;
- forecast `item=` the feature (10,000 trials), and `weeks=4` for one container.

Latency is per request, p50/p95/max over --requests requests after one warm-up request;
"CPU" is this process's CPU time per request (the app's share, not PostgreSQL's), which
says what a request costs when other processes share the machine.
Target (issue 9): each under 500 ms p95 on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import Backend, analyze, run_report_bench
from hub.api import create_app
from hub.flow.history import Transition
from hub.schema import StatusCategory, WorkItem
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from hub.store.transitions import TransitionStore

console = Console(highlight=False, width=150)
NOW = datetime(2026, 11, 1, tzinfo=UTC)
SPAN_HOURS = 2 * 365 * 24
BATCH = 1000
TARGET_MS = 500.0
CONTAINERS = [(f"c{n}", f"TEAM{n}") for n in range(20)]
STEPS = {  # (category, name) after creation (To Do), by ending
    "done": [
        ("in_progress", "In Progress"),
        ("in_progress", "In Review"),
        ("in_progress", "In Progress"),
        ("done", "Done"),
    ],
    "review": [
        ("in_progress", "In Progress"),
        ("in_progress", "In Review"),
        ("in_progress", "In Progress"),
        ("in_progress", "In Review"),
    ],
    "cancelled": [
        ("in_progress", "In Progress"),
        ("in_progress", "In Review"),
        ("in_progress", "In Progress"),
        ("cancelled", "Won't Do"),
    ],
}


def items_with_history(total: int, seed: int) -> Iterator[tuple[list[WorkItem], list[Transition]]]:
    rng = random.Random(seed)
    batch: list[WorkItem] = []
    facts: list[Transition] = []
    for n in range(total):
        source, tool = ("bench-jira", "jira") if n % 2 else ("bench-linear", "linear")
        container_id, key = CONTAINERS[n % len(CONTAINERS)]
        item_id = f"{source}:{n}"
        ending = rng.choices(("done", "review", "cancelled"), (80, 5, 15))[0]
        # Work still in progress is mostly recent (a team's WIP is a small part of its items).
        created = NOW - timedelta(hours=rng.randrange(SPAN_HOURS if ending != "review" else 120 * 24))
        at = created
        previous: tuple[str, str] = ("todo", "To Do")
        own = [Transition(item_id, created, StatusCategory.todo, "To Do", source="first_seen")]
        for category, name in STEPS[ending]:
            at += timedelta(hours=rng.randrange(1, 24 * 6))
            own.append(
                Transition(item_id, at, StatusCategory(category), name, StatusCategory(previous[0]), previous[1])
            )
            previous = (category, name)
        if at > NOW:  # still open at NOW: keep what happened before it
            own = [f for f in own if f.at <= NOW]
            previous = (own[-1].to_category.value, own[-1].to_name or "")
            at = own[-1].at
        batch.append(_item(source, tool, str(n), container_id, key, created, at, previous))
        facts.extend(own)
        if len(batch) == BATCH:
            yield batch, facts
            batch, facts = [], []
    if batch:
        yield batch, facts


def _item(
    source: str,
    tool: str,
    native_id: str,
    container_id: str,
    key: str,
    created: datetime,
    updated: datetime,
    status: tuple[str, str],
    **extra: Any,
) -> WorkItem:
    return WorkItem.model_validate(
        {
            "source": source,
            "tool": tool,
            "native_id": native_id,
            "key": f"{key}-{native_id}",
            "title": f"Item {native_id}",
            "kind": "story",
            "status": {"category": status[0], "name": status[1]},
            "container": {"id": container_id, "key": key, "name": key},
            "created_at": created,
            "updated_at": updated,
            **extra,
        }
    )


def seed(store: Store, total: int, seed_value: int) -> float:
    transitions = TransitionStore(store.engine)
    t0 = time.perf_counter()
    done = 0
    for batch, facts in items_with_history(total, seed_value):
        store.items.apply(batch)
        transitions.record(facts)
        done += len(batch)
        if done % (total // 5 or 1) < BATCH:
            console.print(f"  seeded {done:,} items ({time.perf_counter() - t0:.0f} s)")
    feature = WorkItem.model_validate(
        {
            "source": "bench-pb",
            "tool": "productboard",
            "native_id": "F1",
            "title": "Feature",
            "kind": "feature",
            "status": {"category": "in_progress", "name": "In progress"},
            "updated_at": NOW,
        }
    )
    store.items.apply([feature])
    opened = NOW - timedelta(days=3)
    store.items.apply(
        [
            _item(
                "bench-jira",
                "jira",
                f"open-{n}",
                *CONTAINERS[n % 2],
                opened,
                opened,
                ("todo", "To Do"),
                parent_id="bench-pb:F1",
            )
            for n in range(60)
        ]
    )
    return time.perf_counter() - t0


def percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, max(0, -(-len(sorted_ms) * q // 100) - 1))]


def measure(client: TestClient, params: dict[str, Any], requests: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds per request, each sorted (CPU: this process's, i.e. the
    app's share; PostgreSQL's own work is not in it)."""
    response = client.get(params.pop("path"), params=params)  # warm-up
    assert response.status_code == 200, response.text
    wall, cpu = [], []
    for _ in range(requests):
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(response.request.url)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert response.status_code == 200
    return sorted(wall), sorted(cpu)


def run_backend(backend: Backend, args: argparse.Namespace) -> None:
    console.print(f"[bold]{backend.name}[/]: {args.items:,} items x 5 transitions")
    store = Store.open(backend.url)
    try:
        seconds = seed(store, args.items, args.seed)
        console.print(f"  seeded in {seconds:.0f} s")
        analyze(store)
        as_of = NOW.isoformat()
        cases = [
            ("flow, one container", {"path": "/v1/insights/flow", "container": "TEAM3", "as_of": as_of}),
            ("flow, everything", {"path": "/v1/insights/flow", "as_of": as_of}),
            (
                "forecast item (10,000 trials)",
                {"path": "/v1/insights/forecast", "item": "bench-pb:F1", "as_of": NOW.date().isoformat()},
            ),
            (
                "forecast weeks=4, one container",
                {"path": "/v1/insights/forecast", "weeks": 4, "container": "TEAM3", "as_of": NOW.date().isoformat()},
            ),
        ]
        app = create_app(store=store, settings=Settings(database_url="sqlite://", background_tasks=False))
        token = store.keys.create(Scope.read, "bench")[1]
        table = Table(
            "route",
            "requests",
            "p50 ms",
            "p95 ms",
            "max ms",
            "CPU p50 ms",
            f"p95 < {TARGET_MS:.0f} ms",
            title=f"{backend.name}: {args.items:,} items, load {os.getloadavg()[0]:.1f}",
        )
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            for name, params in cases:
                ms, cpu = measure(client, dict(params), args.requests)
                p95 = percentile(ms, 95)
                table.add_row(
                    name,
                    str(len(ms)),
                    f"{percentile(ms, 50):.0f}",
                    f"{p95:.0f}",
                    f"{ms[-1]:.0f}",
                    f"{percentile(cpu, 50):.0f}",
                    "yes" if p95 < TARGET_MS else "NO",
                )
        console.print(table)
    finally:
        store.close()
        if backend.cleanup is not None:
            backend.cleanup()


def main() -> None:
    # Seeds every run: no --database-url (run_backend does not tell a seeded store apart).
    run_report_bench(__doc__, "flow", run_backend, existing_store=False)


if __name__ == "__main__":
    main()
