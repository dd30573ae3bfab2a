"""Benchmark: GET /v1/insights/digest at 100,000 items x 5 transitions.

    .venv/bin/python bench/digest.py                          # 100,000 items, SQLite and PostgreSQL
    .venv/bin/python bench/digest.py --items 10000 --backends sqlite   # smoke check

The store is bench/flow.py's (N delivery items in 20 containers over two years, 5 status
transitions each, a feature with 60 open stories), plus 2,000 items that give every point of
the digest work: a RICE score each, a due date or release date (a quarter of them past), a
`blocked_by` link (every tenth), priority urgent/high (a third), created and updated over the
last 60 days, under 20 epics. Then ANALYZE, and the route is timed in process through the ASGI
app (TestClient: routing, the service and encoding; no network), p50/p95/max over --requests
requests after one warm-up:

- digest JSON, default week before 2026-11-01;
- digest Markdown, same week;
- digest JSON, the last 30 days.

Target (issue 10): under 1 s p95 on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import report_table, time_case
from bench.api import (
    Backend,
    analyze,
    needs_seed,
    run_report_bench,
)
from bench.flow import CONTAINERS, NOW, _item, console, seed
from hub.api import create_app
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope

EXTRA = 2000


def seed_digest_items(store: Store, seed_value: int) -> None:
    """Roadmap-ish items with RICE, due/release dates, blocked_by links and urgent priorities."""
    rng = random.Random(seed_value)
    epics = [
        _item(
            "bench-jira",
            "jira",
            f"epic-{n}",
            *CONTAINERS[n],
            NOW - timedelta(days=200),
            NOW - timedelta(days=100),
            ("in_progress", "In Progress"),
            kind="epic",
            rice={"reach": rng.randrange(1, 5000), "impact": 2, "confidence": 0.8, "effort": 3},
        )
        for n in range(20)
    ]
    store.items.apply(epics)
    batch = []
    for n in range(EXTRA):
        created = NOW - timedelta(hours=rng.randrange(60 * 24))
        updated = min(NOW, created + timedelta(hours=rng.randrange(1, 24 * 10)))
        day = (NOW + timedelta(days=rng.randrange(-30, 90))).date().isoformat()
        extra: dict[str, object] = {
            "parent_id": f"bench-jira:epic-{n % 20}",
            "priority": rng.choice(
                [
                    {"level": "urgent", "name": "Highest"},
                    {"level": "high", "name": "High"},
                    {"level": "medium", "name": "Medium"},
                ]
            ),
            "rice": {"reach": rng.randrange(1, 5000), "impact": 1, "confidence": 0.5, "effort": 2},
        }
        if n % 2:
            extra["due_on"] = day
        else:
            extra["release"] = {"id": f"r{n % 7}", "name": f"R{n % 7}", "release_on": day}
        if n % 10 == 0:
            extra["links"] = [{"type": "blocked_by", "target_id": f"bench-jira:digest-{(n + 1) % EXTRA}"}]
        batch.append(
            _item(
                "bench-jira",
                "jira",
                f"digest-{n}",
                *CONTAINERS[n % 20],
                created,
                updated,
                rng.choice([("todo", "To Do"), ("in_progress", "In Progress")]),
                **extra,
            )
        )
        if len(batch) == 500:
            store.items.apply(batch)
            batch = []
    if batch:
        store.items.apply(batch)


def run_backend(backend: Backend, args: argparse.Namespace) -> None:
    console.print(f"[bold]{backend.name}[/]: {args.items:,} items x 5 transitions + {EXTRA:,} digest items")
    store = Store.open(backend.url)
    try:
        if needs_seed(store):
            seconds = seed(store, args.items, args.seed)
            seed_digest_items(store, args.seed)
            console.print(f"  seeded in {seconds:.0f} s")
        analyze(store)
        until = NOW.isoformat()
        cases = [
            ("digest JSON, 7 days", {"path": "/v1/insights/digest", "until": until}),
            ("digest Markdown, 7 days", {"path": "/v1/insights/digest", "until": until, "format": "markdown"}),
            (
                "digest JSON, 30 days",
                {"path": "/v1/insights/digest", "until": until, "since": (NOW - timedelta(days=30)).isoformat()},
            ),
        ]
        app = create_app(store=store, settings=Settings(database_url="sqlite://", background_tasks=False))
        token = store.keys.create(Scope.read, "bench")[1]
        table = report_table(f"{backend.name}: {args.items + EXTRA:,} items")
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            for name, params in cases:
                time_case(table, client, name, params, args.requests)
        console.print(table)
    finally:
        store.close()
        if backend.cleanup is not None:
            backend.cleanup()


def main() -> None:
    run_report_bench(__doc__, "digest", run_backend)


if __name__ == "__main__":
    main()
