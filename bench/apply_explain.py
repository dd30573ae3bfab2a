"""Every statement of one `ItemStore.apply` batch with its plan, on PostgreSQL, rolled back.

    .venv/bin/python bench/apply_explain.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/NAME \\
        [--mode fresh|stored] [--items 500] [--min-ms 0] [--set "jit_optimize_above_cost=400000"]

Applies one batch (`fresh`: new items as bench/store_apply.py makes them; `stored`: newer
versions of random stored items in another status, as its `--resync`) inside a transaction
that is rolled back, with `auto_explain` (ANALYZE, BUFFERS, nested statements) sending each
plan of a statement over --min-ms to this client as a NOTICE: plans of the real statements
with their real parameters, including the per-row foreign key checks, and JIT when the
server used it (a `JIT:` footer, whose time EXPLAIN charges to the top node). Long arrays in
the plans are shortened to `{...}`. Then it prints the statements by time. Loading
auto_explain needs a superuser. The database is left as it was (rolled back), but for the
dead rows of the rolled-back writes: run it on a copy (`CREATE DATABASE ... TEMPLATE`).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_apply import TIMED, make_items, stored_versions

from hub.store import Store

_ARRAY = re.compile(r"\{[^{}]{200,}\}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mode", choices=["fresh", "stored"], default="fresh")
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--min-ms", type=int, default=0, help="log plans of statements at least this slow")
    parser.add_argument("--set", action="append", default=[], help="a server setting for the session, name=value")
    args = parser.parse_args()
    store = Store.open(args.database_url)
    rng = random.Random()
    if args.mode == "fresh":
        batch = make_items(TIMED + 1_000_000 + rng.randrange(10**6), args.items, 0, rng)
    else:
        batch = stored_versions(store, args.items)
    timings: list[tuple[float, str]] = []

    def notice(diagnostic: object) -> None:
        message = _ARRAY.sub("{...}", getattr(diagnostic, "message_primary", "") or "")
        print(message, "\n", flush=True)
        found = re.match(r"duration: ([0-9.]+) ms.*?Query Text: (.{0,100})", message, re.S)
        if found:
            timings.append((float(found[1]), found[2].replace("\n", " ")))

    with store.engine.connect() as conn:
        conn.connection.driver_connection.add_notice_handler(notice)  # type: ignore[union-attr]
        conn.exec_driver_sql("LOAD 'auto_explain'")
        settings = {
            "auto_explain.log_min_duration": str(args.min_ms),
            "auto_explain.log_analyze": "on",
            "auto_explain.log_buffers": "on",
            "auto_explain.log_nested_statements": "on",
            "auto_explain.log_level": "notice",
            "client_min_messages": "notice",
        }
        settings.update(setting.split("=", 1) for setting in args.set)
        for name, value in settings.items():
            conn.exec_driver_sql(f"SET {name} = '{value}'")
        conn.commit()
        with conn.begin() as tx:
            start = time.perf_counter()
            store.items.apply(batch, conn=conn)
            spent = time.perf_counter() - start
            tx.rollback()
    store.close()
    print(f"apply of {len(batch)} items ({args.mode}): {spent * 1000:.0f} ms; slowest statements:")
    for ms, statement in sorted(timings, reverse=True)[:15]:
        print(f"  {ms:9.1f} ms  {statement}")


if __name__ == "__main__":
    main()
