"""Benchmark: `q=` pages at 1M items, per plan and term (issue 13, migration 0019).

    .venv/bin/python bench/api_text.py --database-url sqlite:////work/tmp/api1m.db
    .venv/bin/python bench/api_text.py --database-url postgresql+psycopg://127.0.0.1/NAME

For each term (rare, medium, very common; alone and with other filters) and each plan, walks
pages 1..--pages of GET /v1/items?q=... in process (`store.queries.list_items`, what the
route calls) on a fresh Store, and prints the wall and CPU per page (pages 2.., p50 / max)
and what a page read:

- SQLite plans (hub/store/queries.py `TextPlan`): `walk` (test key and title on each entry
  the page-order index passes, as without the text index), `index` (read the FTS5 matches,
  sort), `auto` (the hub's choice by the number of matches, and that count's cost). The
  `filter` plan of earlier figures was removed after migration 0024. Reads: read system calls (B-tree pages that missed the
  connection's cache).
- PostgreSQL: `auto` (the planner), `walk` (bitmap scans off: the ordered walk), `index`
  (plain index scans off: the trigram bitmap, then a sort). Reads: shared buffers hit + read
  of a cold EXPLAIN (ANALYZE, BUFFERS) of the page statement, and its server ms.

--explain prints the plan of each term's page 2 (the hub's choice).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import percentile
from bench.api_walks import is_page_statement, record_cold, timed_pages
from hub.store import ItemQuery, Store
from hub.store.queries import TextPlan

console = Console(highlight=False, width=170)

TERMS: list[tuple[str, dict[str, Any]]] = [
    ("rare: a key", {"q": "KEY"}),  # replaced by a stored item's key
    ("rare: invoice PDF timeout", {"q": "invoice PDF timeout"}),
    ("medium: timeout", {"q": "timeout"}),
    ("medium: timeout & source", {"q": "timeout", "source": ["acme-linear"]}),
    ("rare: timeout & urgent & source", {"q": "timeout", "source": ["acme-linear"], "priority_level": ["urgent"]}),
    ("common: billing page", {"q": "billing page"}),
    ("very common: for", {"q": "for"}),
    ("very common: fix", {"q": "fix"}),
    ("short: ab", {"q": "ab"}),
]


def walk(url: str, query: ItemQuery, plan: str, pages: int, explain: bool) -> list[dict[str, float]]:
    store = Store.open(url, migrate_schema=False)
    pg = store.engine.dialect.name == "postgresql"
    cold: dict[str, float] = {}
    plans: list[str] = []

    def before(_conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if pg and plan != "auto":
            cursor.execute("SET enable_bitmapscan = off" if plan == "walk" else "SET enable_indexscan = off")
        if is_page_statement(statement):
            if pg:
                record_cold(cursor, statement, parameters, cold)
                if explain and not plans:
                    cursor.execute("EXPLAIN " + statement, parameters)
                    plans.append("\n".join(r[0] for r in cursor.fetchall()))
            elif explain and not plans:
                cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                plans.append("\n".join(str(r[3]) for r in cursor.fetchall()))

    event.listen(store.engine, "before_cursor_execute", before)
    if not pg and plan != "auto":
        store.queries.text_plan = TextPlan(plan)

    def show_plan(page: int) -> None:
        if page == 2 and plans and explain:
            console.print(f"    plan ({plan}), page 2:\n      " + plans[-1].replace("\n", "\n      "))

    return timed_pages(store, query, pages, cold, on_page=show_plan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pages", type=int, default=20, help="walk pages 1..PAGES, report 2..PAGES")
    parser.add_argument("--plans", default="", help="comma-separated; default: every plan of the backend")
    parser.add_argument("--terms", default="", help="comma-separated substrings of the term labels to run")
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    store = Store.open(args.database_url, migrate_schema=False)
    pg = store.engine.dialect.name == "postgresql"
    with store.engine.connect() as conn:
        key = conn.exec_driver_sql(
            "SELECT key FROM items WHERE key IS NOT NULL ORDER BY id LIMIT 1 OFFSET 4321"
        ).scalar()
        key = key or "KEY-1"
        total = conn.exec_driver_sql("SELECT count(*) FROM items").scalar()
    store.close()
    plans = args.plans.split(",") if args.plans else ["auto", "walk", "index"]
    table = Table(
        title=f"q= pages 2..{args.pages} at {total:,} items, {'PostgreSQL' if pg else 'SQLite'}: "
        "wall ms p50 / max; CPU ms p50; reads p50 / max"
    )
    for name in ["term", "matches", *plans]:
        table.add_column(name, justify="left" if name == "term" else "right")
    for label, filters in TERMS:
        if args.terms and not any(t in label for t in args.terms.split(",")):
            continue
        filters = {**filters, "q": key} if filters["q"] == "KEY" else filters
        query = ItemQuery(**filters)
        store = Store.open(args.database_url, migrate_schema=False)
        with store.engine.connect() as conn:
            where = " AND ".join(f"{k} = '{v[0]}'" for k, v in filters.items() if k != "q")
            like = filters["q"].lower()
            matches = conn.exec_driver_sql(
                "SELECT count(*) FROM items WHERE NOT deleted AND (lower(key) LIKE ? OR lower(title) LIKE ?)".replace(
                    "?", "%s" if pg else "?"
                )
                + (f" AND {where}" if where else ""),
                (f"%{like}%", f"%{like}%"),
            ).scalar()
        store.close()
        console.print(f"{label} ({filters}): {matches:,} matches")
        cells = [label, f"{matches:,}"]
        for plan in plans:
            found = walk(args.database_url, query, plan, args.pages, args.explain)
            if not found:
                cells.append("one page")
                continue
            walls = [f["wall"] for f in found]
            cpus = [f["cpu"] for f in found]
            got = [f["hit"] + f["read"] for f in found] if pg else [f["calls"] for f in found]
            cells.append(
                f"{percentile(walls, 50):.1f} / {max(walls):.1f}; {percentile(cpus, 50):.1f}; "
                f"{percentile(got, 50):,.0f} / {max(got):,.0f}"
            )
            console.print(f"  {plan}: {cells[-1]}")
        table.add_row(*cells)
    console.print(table)


if __name__ == "__main__":
    main()
