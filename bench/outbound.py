"""Outbound webhook figures: deliveries/s to a local receiver, and commit->delivery lag.

    python bench/outbound.py [--backend sqlite|postgresql|both] [--deliveries 5000]
                             [--rate 200] [--seconds 15] [--poll 1.0]
                             [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

- **Throughput**: `--deliveries` changes are stored first, then one subscription's cursor is
  walked by the real `Deliverer` (the loop of HubRuntime) to a receiver on 127.0.0.1. The hub
  process is pinned to one core (`sched_setaffinity`); the receiver runs in its own process
  on the other core (`python -m fakes.webhook_receiver`), so its CPU is not charged to the hub.
  The figure includes signing, the HTTP round trip, cursor commits and the delivery log.
  Also printed: deliveries per CPU-second of the hub process (user + system time of all its
  threads), which a loaded machine distorts less than wall time.
- **Lag**: a writer thread stores `--rate` new items per second (batches of rate/20 every 50
  ms) for `--seconds`, while the runtime's outbound loop delivers (poll interval `--poll`,
  the HUB_OUTBOUND_POLL_SECONDS default 1.0). Lag = the receiver's arrival time minus the
  change's `at` (stamped in the writing transaction, just before its commit). p50 and p99.

Each backend gets a throw-away database (temp SQLite file; a fresh PostgreSQL database, dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from connectors.egress import EgressPolicy  # noqa: E402
from hub.config import HubConfig  # noqa: E402
from hub.outbound.deliverer import Deliverer  # noqa: E402
from hub.outbound.models import EventType, SubscriptionFilter  # noqa: E402
from hub.outbound.store import SubscriptionStore  # noqa: E402
from hub.runtime import HubRuntime  # noqa: E402
from hub.schema import WorkItem  # noqa: E402
from hub.store import Store  # noqa: E402

LOCAL = EgressPolicy(allow=("127.0.0.1",), allow_http=True)  # the bench's receiver is local


def item(n: int) -> WorkItem:
    return WorkItem.model_validate(
        {
            "source": "bench",
            "tool": "jira",
            "native_id": str(n),
            "key": f"B-{n}",
            "title": f"Bench item {n}",
            "status": {"category": "todo", "name": "To Do"},
            "labels": ["bench", f"l{n % 7}"],
            "updated_at": datetime.now().astimezone(),
        }
    )


@contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"opshub_bench_outbound_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def receiver_process() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakes.webhook_receiver"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, {1})) if os.cpu_count() and os.cpu_count() > 1 else None,  # type: ignore[operator]
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    try:
        yield url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def arrivals(url: str) -> list[dict[str, object]]:
    data: list[dict[str, object]] = httpx.get(url, timeout=30).json()
    return data


def subscribe(store: Store, url: str) -> None:
    SubscriptionStore(store.engine).create(url, [EventType.item_created], SubscriptionFilter())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this (the hub's) process
    return usage.ru_utime + usage.ru_stime


def throughput(db_url: str, count: int) -> tuple[float, float]:
    """(deliveries per wall second, deliveries per CPU second of the hub process)."""
    store = Store.open(db_url)
    with receiver_process() as url:
        subscribe(store, url)
        for start in range(0, count, 500):
            store.items.apply([item(n) for n in range(start + 1, min(start + 501, count + 1))])

        async def deliver() -> float:
            deliverer = Deliverer(SubscriptionStore(store.engine), policy=LOCAL)
            started, cpu = time.perf_counter(), cpu_seconds()
            while await deliverer.run_once():
                pass
            elapsed, used[0] = time.perf_counter() - started, cpu_seconds() - cpu
            await deliverer.aclose()
            return elapsed

        used = [0.0]
        elapsed = asyncio.run(deliver())
        got = len(arrivals(url))
    store.close()
    assert got >= count, f"only {got} of {count} delivered"
    return count / elapsed, count / used[0]


def lag(db_url: str, rate: int, seconds: float, poll: float) -> tuple[float, float, int]:
    store = Store.open(db_url)
    with receiver_process() as url:
        subscribe(store, url)
        stop = threading.Event()
        per_tick, tick = max(1, rate // 20), 0.05
        written = [0]

        def writer() -> None:
            n, next_tick = 0, time.perf_counter()
            while not stop.is_set():
                store.items.apply([item(i) for i in range(n + 1, n + per_tick + 1)])
                n += per_tick
                written[0] = n
                next_tick += tick
                time.sleep(max(0.0, next_tick - time.perf_counter()))

        async def run() -> None:
            runtime = HubRuntime(
                store,
                HubConfig(),
                deliverer=Deliverer(SubscriptionStore(store.engine), policy=LOCAL),
                outbound_poll_seconds=poll,
            )
            await runtime.start()
            thread = threading.Thread(target=writer)
            thread.start()
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.to_thread(thread.join)
            deadline = time.monotonic() + 30
            while len(arrivals(url)) < written[0] and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await runtime.stop()

        asyncio.run(run())
        got = arrivals(url)
    store.close()
    lags = sorted(
        float(a["received_at"]) - datetime.fromisoformat(str(a["change_at"]).replace("Z", "+00:00")).timestamp()  # type: ignore[arg-type]
        for a in got
    )
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    return statistics.median(lags), p99, len(lags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("HUB_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # the hub on one core
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with database(backend, args.pg_url) as url:
            rate, per_cpu = throughput(url, args.deliveries)
        with database(backend, args.pg_url) as url:
            p50, p99, n = lag(url, args.rate, args.seconds, args.poll)
        print(
            f"{backend:10s} deliveries/s (one core, {args.deliveries} changes): {rate:5.0f} wall, "
            f"{per_cpu:5.0f} per CPU-second   "
            f"lag at {args.rate} changes/s, poll {args.poll:g} s ({n} deliveries): p50 {p50 * 1000:6.0f} ms  p99 {p99 * 1000:6.0f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
