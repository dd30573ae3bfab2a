"""Measure `ItemStore.apply` throughput (items/s) on SQLite and PostgreSQL.

    python bench/store_apply.py --items 100000 --batch 500 [--backend sqlite|postgresql|both]
                                [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
                                [--preload 0] [--profile] [--phases]
                                [--keep-seed NAME | --seeded NAME]

Each backend gets a throw-away database (a temp SQLite file; a fresh PostgreSQL database
dropped at the end). `--preload N` first fills the store with N items (not timed) so the
figure is for a store of that size. Items are realistic: labels, 1-2 assignees with
emails, container, custom fields and a ~1 KB raw payload. WorkItems are built before the
clock starts: the figure is for `apply` alone. Phases: fresh inserts, then updates of the
same items (newer updated_at, changed status and labels).

Seeding 1M items through `apply` takes most of an hour, so a seeded store can be kept and
reused: `--preload 1000000 --keep-seed NAME` seeds and keeps it (SQLite: NAME.db in --seed-dir;
PostgreSQL: database NAME), and `--seeded NAME` runs on a copy of it (a file copy; `CREATE
DATABASE ... TEMPLATE NAME`), brought to the newest migration first (so a seed made before a
schema change measures the migrated schema) and thrown away after. On PostgreSQL the seeding
analyses as the store grows (as the sync does), and a preloaded or seeded store is analysed
(`ANALYZE`, not timed) before the timed phases, as the sync or autovacuum would have: this
server runs with autovacuum off. The timed items' native ids (20,000,000 and up) are never
among the seeded ones (10,000,000 and up here; bench/api.py counts from 1, so
`bench/api.py --database-url ... --skip-api` seeds a store this bench can reuse too:
`--seeded NAME` with NAME its SQLite file's name in --seed-dir, or its database).

`--resync N` adds a third timed phase: newer versions of N items the store held before the
run, picked at random (another status: an open one moves to done, a closed one to in
progress), as a re-sync after a tool-side change delivers them. On a store seeded by
bench/api.py these items share title-twin groups and parents with many stored rows, which
the first two phases' fresh items (unique titles, no parents) do not.

`--phases` adds where the time of the two timed phases went: wall seconds and this process's
CPU seconds per step of `Applier.run` (hub/store/apply.py), per 1,000 items; "commit and
rest" is apply's time minus the steps (the change-log insert, the counter update and the
COMMIT). On a busy machine compare the CPU column.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hub.db.tables import items as items_table
from hub.schema import WorkItem
from hub.store import Store

BASE = datetime(2026, 1, 1, tzinfo=UTC)
PRELOADED, TIMED = 10_000_000, 20_000_000  # first native ids: of --preload, of the timed items
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


# The steps of Applier.run timed by --phases: (owner, attribute, label). Module functions are
# patched where apply.py looks them up.
PHASES = [
    ("hub.store.items", "storable_keys", "storable (ids, people)"),
    ("hub.store.apply.Applier", "_lock_counter", "lock counter row"),
    ("hub.store.apply.Applier", "_load_current", "load current rows"),
    ("hub.store.apply.Applier", "_register_sources", "register sources"),
    ("hub.store.people.PeopleResolver", "resolve", "resolve people"),
    ("hub.store.apply.Applier", "_decide", "decide (serialise, diff)"),
    ("hub.store.apply.Applier", "_item_rows", "build item rows"),
    ("hub.store.apply.Applier", "_copy_new_items", "COPY new items (PostgreSQL)"),
    ("hub.store.apply.Applier", "_write_items", "write items + side rows"),
    ("hub.store.apply", "write_report_facts", "  of which report facts"),
    ("hub.store.apply.Applier", "_write_transitions", "status transitions"),
    ("hub.store.apply", "refresh_flow_facts", "flow facts"),
]


@contextmanager
def phase_timer() -> Iterator[dict[str, float]]:
    """Wrap each step in PHASES (and ItemStore.apply as "total") with a wall-clock counter."""
    import importlib

    spent: dict[str, float] = defaultdict(float)
    undo: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, attr: str, label: str) -> None:
        original = owner.__dict__[attr] if isinstance(owner, type) else getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - start
                spent["cpu:" + label] += time.process_time() - cpu

        undo.append((owner, attr, original))
        setattr(owner, attr, timed)

    def resolve(path: str) -> Any:
        module, _, name = path.rpartition(".")
        try:
            return importlib.import_module(path)
        except ImportError:
            return getattr(importlib.import_module(module), name)

    from hub.store.items import ItemStore

    for owner, attr, label in PHASES:
        wrap(resolve(owner), attr, label)
    wrap(ItemStore, "apply", "total")
    try:
        yield spent
    finally:
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)


def print_phases(spent: dict[str, float], count: int) -> None:
    """Wall and this process's CPU per step (a busy machine inflates wall, far less CPU; on
    PostgreSQL the server's CPU is not in the CPU column)."""
    steps = [label for _, _, label in PHASES if not label.startswith("  ")]
    print(f"  where apply's time went ({count:,} items, ms per 1,000 items):   wall      CPU")
    for _, _, label in PHASES:
        print(
            f"    {label:28s}   {1e6 * spent.get(label, 0.0) / count:8.1f} {1e6 * spent.get('cpu:' + label, 0.0) / count:8.1f}"
        )
    rest = [spent.get(key + "total", 0.0) - sum(spent.get(key + s, 0.0) for s in steps) for key in ("", "cpu:")]
    print(f"    {'commit and rest':28s}   {1e6 * rest[0] / count:8.1f} {1e6 * rest[1] / count:8.1f}")
    print(
        f"    {'total':28s}   {1e6 * spent.get('total', 0.0) / count:8.1f} {1e6 * spent.get('cpu:total', 0.0) / count:8.1f}"
    )


def server_cpu(store: Store) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving this database (local server only)."""
    if store.engine.dialect.name != "postgresql":
        return 0.0
    with store.engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars().all()
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


def stored_versions(store: Store, count: int) -> list[WorkItem]:
    """Newer versions of `count` random items the store holds (`--resync`)."""
    t = items_table.c
    with store.engine.connect() as conn:
        ids = conn.execute(
            text("SELECT id FROM items WHERE NOT deleted ORDER BY random() LIMIT :n"), {"n": count}
        ).scalars()
        rows = conn.execute(select(t.doc, t.source, t.tool, t.native_id, t.parent_id).where(t.id.in_(list(ids)))).all()
    moved = {"done": "in_progress", "cancelled": "in_progress"}
    out = []
    for doc, source, tool, native_id, parent_id in rows:
        data = orjson.loads(doc)
        # bench/grow_store.py leaves the copies' documents naming their originals: the row's ids win.
        data.pop("id", None)
        data["status"] = {"category": moved.get(data["status"]["category"], "done")}
        data.update(source=source, tool=tool, native_id=native_id, parent_id=parent_id)
        data["updated_at"] = datetime.fromisoformat(data["updated_at"]) + timedelta(days=1)
        out.append(WorkItem.model_validate(data))
    return out


def resync(store: Store, items: list[WorkItem], args: argparse.Namespace) -> tuple[float, float]:
    """The `--resync` phase: (items/s wall, items per CPU-second), as `run_phase`."""
    with phase_timer() if args.phases else _nothing() as spent:
        figures = run_phase(store, items, args.batch)
        if spent is not None:
            print("  (resync phase below)")
            print_phases(spent, len(items))
    return figures


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def bench(url: str, args: argparse.Namespace) -> None:
    store = Store.open(url)
    rng = random.Random(7)
    try:
        done = 0
        if args.seeded:
            with store.engine.connect() as conn:
                done = args.preload = int(conn.execute(text("SELECT count(*) FROM items")).scalar_one())
        while done < args.preload:
            n = min(50_000, args.preload - done)
            run_phase(store, make_items(PRELOADED + done, n, 0, rng), args.batch)
            done += n
            store.items.statistics.written(n)  # analyse as the store grows, as the sync does
            print(f"  seeded {done:,} items ({time.strftime('%H:%M:%S')})", flush=True)
        if done and store.items.statistics.enabled:
            # The planner statistics a store of this size has in service: the sync analyses as
            # the store grows and autovacuum does elsewhere, but this bench calls apply alone, and
            # a server with autovacuum off (this machine's) would time plans made for empty
            # tables (hub/store/statistics.py; bench/README.md, i13pgitems). Not timed.
            store.items.statistics.analyze()
        if args.keep_seed:
            return
        fresh = make_items(TIMED, args.items, 0, rng)
        newer = make_items(TIMED, args.items, 60, rng)
        stored = stored_versions(store, args.resync) if args.resync else []
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        with phase_timer() if args.phases else _nothing() as spent:
            ins = run_phase(store, fresh, args.batch)
            if spent is not None:
                print_phases(spent, len(fresh))
                print("  (insert phase above; update phase below)")
                spent.clear()
            upd = run_phase(store, newer, args.batch)
            if spent is not None:
                print_phases(spent, len(newer))
        res = resync(store, stored, args) if stored else None
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(30)
        print(
            f"{store.engine.dialect.name:10s} store={args.preload:>9,d} batch={args.batch}"
            f"  insert {ins[0]:8,.0f} items/s ({ins[1]:8,.0f} per CPU-s)"
            f"  update {upd[0]:8,.0f} items/s ({upd[1]:8,.0f} per CPU-s)"
            + (f"  resync {res[0]:8,.0f} items/s ({res[1]:8,.0f} per CPU-s)" if res else "")
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
    parser.add_argument("--phases", action="store_true", help="print where apply's wall time went, per step")
    parser.add_argument("--resync", type=int, default=0, metavar="N", help="also time newer versions of N stored items")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--keep-seed", metavar="NAME", help="seed --preload items, keep the store as NAME, time nothing")
    seeds.add_argument("--seeded", metavar="NAME", help="time on a copy of the store kept by --keep-seed NAME")
    parser.add_argument(
        "--pg-prefix",
        default="opshub_bench",
        help="name prefix of the throw-away PostgreSQL database (helpers name theirs after their branch)",
    )
    parser.add_argument(
        "--seed-dir", type=Path, default=Path(tempfile.gettempdir()), help="where SQLite seeds are kept"
    )
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            if args.keep_seed:
                path = args.seed_dir / f"{args.keep_seed}.db"
            elif args.seeded:
                shutil.copyfile(args.seed_dir / f"{args.seeded}.db", path)
            bench(f"sqlite:///{path}", args)
    if args.backend in ("postgresql", "both"):
        admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        name = args.keep_seed or f"{args.pg_prefix}_{uuid.uuid4().hex[:8]}"
        template = f' TEMPLATE "{args.seeded}"' if args.seeded else ""
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
        try:
            bench(make_url(args.pg_url).set(database=name).render_as_string(hide_password=False), args)
        finally:
            if not args.keep_seed:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
