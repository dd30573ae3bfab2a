"""Measure `ItemStore.apply` throughput (items/s) on SQLite and PostgreSQL.

    python bench/store_apply.py --items 100000 --batch 500 [--backend sqlite|postgresql|both]
                                [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                [--preload 0] [--profile]

Each backend gets a throw-away database (a temp SQLite file; a fresh PostgreSQL database
dropped at the end). `--preload N` first fills the store with N items (not timed) so the
figure is for a store of that size. Items are realistic: labels, 1-2 assignees with
emails, container, custom fields and a ~1 KB raw payload. WorkItems are built before the
clock starts: the figure is for `apply` alone. Phases: fresh inserts, then updates of the
same items (newer updated_at, changed status and labels).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hub.schema import WorkItem
from hub.store import Store

BASE = datetime(2026, 1, 1, tzinfo=UTC)
LABELS = [f"label-{i}" for i in range(40)]
STATUSES = [("todo", "To Do"), ("in_progress", "In Progress"), ("done", "Done"), ("backlog", "Backlog")]


def make_items(start: int, count: int, minutes: int, rng: random.Random) -> list[WorkItem]:
    out = []
    for n in range(start, start + count):
        people = rng.sample(range(2000), rng.randint(1, 2))
        cat, name = rng.choice(STATUSES)
        out.append(
            WorkItem.model_validate(
                {
                    "source": f"acme-{['jira', 'linear', 'github'][n % 3]}",
                    "tool": ["jira", "linear", "github"][n % 3],
                    "native_id": str(n),
                    "key": f"PROJ-{n}",
                    "url": f"https://acme.example/browse/PROJ-{n}",
                    "kind": rng.choice(["story", "bug", "task", "epic"]),
                    "title": f"Item {n}: make the widget frobnicate {rng.random():.6f}",
                    "description": "Some *markdown* description. " * 5,
                    "status": {"category": cat, "name": name},
                    "priority": {"level": rng.choice(["high", "medium", "low"]), "name": "P2"},
                    "assignees": [
                        {"native_id": f"u{p}", "name": f"User {p}", "email": f"user{p}@acme.example"} for p in people
                    ],
                    "reporter": {"native_id": "u1", "name": "User 1", "email": "user1@acme.example"},
                    "labels": rng.sample(LABELS, rng.randint(1, 4)),
                    "container": {"id": f"c{n % 50}", "key": f"P{n % 50}", "name": f"Project {n % 50}"},
                    "created_at": BASE,
                    "updated_at": BASE + timedelta(minutes=minutes, seconds=n % 60),
                    "estimate": {"value": rng.randint(1, 13), "unit": "points"},
                    "custom": {"team": f"team-{n % 7}", "severity": rng.choice(["S1", "S2", "S3"]), "sla_days": 5},
                    "raw": {
                        "id": str(n),
                        "key": f"PROJ-{n}",
                        "fields": {"summary": f"Item {n}", "padding": "x" * 800, "labels": ["a", "b"]},
                    },
                }
            )
        )
    return out


def server_cpu(store: Store) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving this database (local server only)."""
    if store.engine.dialect.name != "postgresql":
        return 0.0
    with store.engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars().all()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # not local, or gone
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_phase(store: Store, items: list[WorkItem], batch: int) -> tuple[float, float]:
    """(items/s by the wall clock, items per CPU-second of this process + its PostgreSQL backends).

    The second figure is what an otherwise idle machine would reach (less I/O waits): a
    shared, busy machine distorts the first one.
    """
    start, cpu_start, server_start = time.perf_counter(), time.process_time(), server_cpu(store)
    for i in range(0, len(items), batch):
        store.items.apply(items[i : i + batch])
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start + server_cpu(store) - server_start
    return len(items) / wall, len(items) / cpu


def bench(url: str, args: argparse.Namespace) -> None:
    store = Store.open(url)
    rng = random.Random(7)
    try:
        done = 0
        while done < args.preload:
            n = min(50_000, args.preload - done)
            run_phase(store, make_items(10_000_000 + done, n, 0, rng), args.batch)
            done += n
        fresh = make_items(0, args.items, 0, rng)
        newer = make_items(0, args.items, 60, rng)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        ins = run_phase(store, fresh, args.batch)
        upd = run_phase(store, newer, args.batch)
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(30)
        print(
            f"{store.engine.dialect.name:10s} store={args.preload:>9,d} batch={args.batch}"
            f"  insert {ins[0]:8,.0f} items/s ({ins[1]:8,.0f} per CPU-s)"
            f"  update {upd[0]:8,.0f} items/s ({upd[1]:8,.0f} per CPU-s)"
        )
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--preload", type=int, default=0)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            bench(f"sqlite:///{Path(tmp) / 'bench.db'}", args)
    if args.backend in ("postgresql", "both"):
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        name = f"opshub_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            bench(make_url(args.pg_url).set(database=name).render_as_string(hide_password=False), args)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
