"""Benchmark: what each page of a cold walk over GET /v1/items reads (issue 13).

    .venv/bin/python bench/api_walks.py --database-url sqlite:////work/tmp/api1m.db
    .venv/bin/python bench/api_walks.py --database-url postgresql+psycopg://127.0.0.1/NAME

bench/api.py times the walk over pages 2..50 of each filter combination once, through HTTP:
its p99 is the slowest of 49 pages and moves with the machine's load. This walks the same
combinations' pages in process, through `store.queries.list_items` (what the route calls),
with a fresh Store per combination, and says what each page read besides how long it took:

- SQLite: the read system calls of the page (`syscr` of /proc/self/io). The store reads its
  file with pread (no mmap: hub/db/engine.py), so this counts the B-tree pages that missed
  the connection's page cache, which starts empty, and the KiB of them that came from
  storage rather than the OS page cache (`read_bytes`).
- PostgreSQL: the shared buffers the page statement hit and read, from EXPLAIN (ANALYZE,
  BUFFERS) of the statement run just before it, so the figures, and its execution time
  ("server ms"), are the cold ones; the statement itself then runs warm.

Wall and CPU are per page, this thread's CPU (on PostgreSQL the server's is not in it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import PAGE, combinations, item_query, percentile
from hub.store import Store
from hub.sync import freeze_startup_objects

console = Console(highlight=False, width=160)


def reads() -> tuple[int, int]:
    """This process's read system calls so far, and the bytes of them that came from storage
    (not the OS page cache)."""
    with open("/proc/self/io") as io:
        counters = dict(line.split(": ") for line in io.read().splitlines())
    return int(counters["syscr"]), int(counters["read_bytes"])


def record_cold(cursor: Any, statement: str, parameters: Any, cold: dict[str, float]) -> None:
    """PostgreSQL: run the page statement under EXPLAIN (ANALYZE, BUFFERS) first and keep its
    server time and buffers in `cold` (the page's own run then finds them cached)."""
    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters)
    plan = cursor.fetchone()[0][0]
    cold.update(
        server_ms=plan["Execution Time"],
        hit=plan["Plan"]["Shared Hit Blocks"],
        read=plan["Plan"]["Shared Read Blocks"],
    )


def is_page_statement(statement: str) -> bool:
    return "sort_value" in statement and "LIMIT" in statement  # bench/api.py `explain`


def timed_pages(
    store: Store,
    query: Any,
    pages: int,
    cold: dict[str, float],
    sort: str | None = None,
    on_page: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Pages 1..`pages` of `query` (closing `store`): wall and CPU ms, read calls, KiB from
    storage and `cold`'s figures of pages 2.. ; `on_page(n)` after each page."""
    found: list[dict[str, float]] = []
    cursor = None
    kwargs = {"sort": sort} if sort is not None else {}
    try:
        for page in range(1, pages + 1):
            (calls, disk), cpu, wall = reads(), time.thread_time(), time.perf_counter()
            _, cursor = store.queries.list_items(query, limit=PAGE, cursor=cursor, **kwargs)
            figures = {
                "wall": (time.perf_counter() - wall) * 1000,
                "cpu": (time.thread_time() - cpu) * 1000,
                "calls": reads()[0] - calls,
                "disk": (reads()[1] - disk) / 1024,
                **cold,
            }
            if on_page is not None:
                on_page(page)
            if page > 1:
                found.append(figures)
            if cursor is None:
                break
    finally:
        store.close()
    return found


def walk(url: str, filters: list[tuple[str, str]], pages: int) -> list[dict[str, float]]:
    """Pages 1..`pages` of one combination on a fresh Store; the figures of pages 2.. ."""
    store = Store.open(url, migrate_schema=False)
    cold: dict[str, float] = {}

    def explain_first(_conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if is_page_statement(statement):
            record_cold(cursor, statement, parameters, cold)

    if store.engine.dialect.name == "postgresql":
        event.listen(store.engine, "before_cursor_execute", explain_first)
    query, sort = item_query(filters)
    return timed_pages(store, query, pages, cold, sort=sort)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--database-url", required=True, help="a store seeded by bench/api.py (--database-url)")
    parser.add_argument("--pages", type=int, default=50, help="walk pages 1..PAGES, report 2..PAGES")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    pg = args.database_url.startswith("postgresql")
    columns = ["server ms (cold)", "buffers hit", "buffers read"] if pg else ["read calls", "from storage KiB"]
    keys = ["server_ms", "hit", "read"] if pg else ["calls", "disk"]
    table = Table(title=f"walk pages 2..{args.pages}, per page: p50 / max (load {os.getloadavg()[0]:.1f} at start)")
    for col in ("filters", "pages", "wall ms", "CPU ms", *columns):
        table.add_column(col, justify="left" if col == "filters" else "right")
    # As the API process does after start-up (hub/api/app.py): without it the collector's full
    # passes over the imported modules land on one page of a walk now and then (30-40 ms of CPU).
    freeze_startup_objects()
    for name, filters in combinations(args.seed):
        found = walk(args.database_url, filters, args.pages)
        cells = []
        for key in ("wall", "cpu", *keys):
            values = sorted(f[key] for f in found)
            digits = 1 if key in ("wall", "cpu", "server_ms") else 0
            cells.append(f"{percentile(values, 0.5):,.{digits}f} / {values[-1]:,.{digits}f}" if values else "-")
        table.add_row(name, str(len(found)), *cells)
    console.print(table)
    console.print(f"load at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
