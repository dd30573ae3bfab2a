"""What one /metrics scrape costs with a large inbox: the store gauges' queries, on SQLite
and PostgreSQL.

    .venv/bin/python bench/metrics.py                         # 100,000 inbox rows, both backends
    .venv/bin/python bench/metrics.py --rows 500000 --backends sqlite

The inbox is filled with deliveries of which `--waiting` (default 10%) are not applied yet
(pending, processing, failed) and the rest done, as a busy hub's inbox looks. Prints the
median and p95 time of `hub.metrics.render` (the whole body: process counters plus the store
gauges) over `--scrapes` scrapes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import postgres_backend, sqlite_backend
from hub import metrics
from hub.db.tables import webhook_inbox
from hub.store import Store
from hub.store.items import utcnow


def fill(store: Store, rows: int, waiting_share: float) -> None:
    rng = random.Random(7)
    now = utcnow()
    batch = []
    with store.engine.begin() as conn:
        for n in range(rows):
            waiting = rng.random() < waiting_share
            batch.append(
                {
                    "source": f"src-{n % 7}",
                    "delivery_id": f"d-{n}",
                    "received_at": now - timedelta(seconds=rows - n),
                    "status": rng.choice(["pending", "processing", "failed"]) if waiting else "done",
                }
            )
            if len(batch) == 5000:
                conn.execute(insert(webhook_inbox), batch)
                batch = []
        if batch:
            conn.execute(insert(webhook_inbox), batch)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--waiting", type=float, default=0.10, help="share of rows not applied yet")
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.backends.split(","):
            backend = sqlite_backend(Path(workdir)) if name == "sqlite" else postgres_backend(args.pg_url)
            store = Store.open(backend.url)
            try:
                fill(store, args.rows, args.waiting)
                if store.engine.dialect.name == "postgresql":
                    with store.engine.begin() as conn:
                        conn.exec_driver_sql("ANALYZE webhook_inbox")
                metrics.render(store.engine)  # warm the pool and the statement cache
                took = []
                for _ in range(args.scrapes):
                    started = time.perf_counter()
                    body = metrics.render(store.engine)
                    took.append((time.perf_counter() - started) * 1000)
                took.sort()
                p95 = took[min(len(took) - 1, int(len(took) * 0.95))]
                print(
                    f"{backend.name:<10} inbox rows {args.rows:>8,} ({args.waiting:.0%} waiting): "
                    f"/metrics render p50 {statistics.median(took):.1f} ms, p95 {p95:.1f} ms, {len(body):,} bytes"
                )
            finally:
                store.close()
                if backend.cleanup:
                    backend.cleanup()


if __name__ == "__main__":
    main()
