"""Grow a seeded benchmark store K-fold in SQL, for measuring at 1,000,000 items without
seeding them all through `apply`.

    python bench/grow_store.py --database-url sqlite:////tmp/x/api.db --times 4
    python bench/grow_store.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/NAME --times 4

Seeding 1M items through `ItemStore.apply` takes about an hour on a shared 2-core machine
(apply slows as the store grows: that is what issue 13 measures). This copies every item
and everything keyed by it (side rows, report and flow facts, status history, change log)
K-1 times, each copy's ids suffixed `~k` (items.id, native_id, parent_id, link targets), so
the copies have the same shape as the seed: the same label, assignee, container, status and
date distributions, the same history per item, parents among the copies' own items. Then it
recomputes the report flags from scratch (hub/store/report_facts.py `recompute_all_flags`)
and sets the change counter. The copies' change log is the seed's shifted by K x max(seq),
so it stays gap-free. What is not rewritten: the ids inside the stored JSON documents (a
copy's `doc` names its original), which no benchmark reads back.

Run it on a copy (`cp`, `CREATE DATABASE ... TEMPLATE`) of a store seeded by bench/api.py
--database-url or bench/store_apply.py --keep-seed; then bench/store_apply.py --seeded and
bench/api.py --database-url time against it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.db.tables import metadata
from hub.store import Store
from hub.store.report_facts import recompute_all_flags

# Per table: the columns that hold an item id (suffixed in a copy) and the original rows'
# test (ids without the suffix mark).
ID_COLUMNS = {
    "items": ("id", "native_id", "parent_id"),
    "item_labels": ("item_id",),
    "item_assignees": ("item_id",),
    "item_links": ("item_id", "target_id"),
    "item_report_facts": ("item_id", "parent_id"),
    "flow_facts": ("item_id",),
    "flow_days": ("item_id",),
    "status_transitions": ("item_id",),
    "changes": ("item_id",),
}
KEY = {"items": "id"}  # the column that tells an original row (else item_id)
MARK = "~"


def grow(store: Store, times: int) -> None:
    with store.engine.begin() as conn:
        if store.engine.dialect.name == "postgresql":
            # recompute_all_flags' NOT IN (subquery) is hashed only if the ids fit in
            # work_mem (default 4 MB); at 1M they do not, and the fallback re-scans the
            # subquery per row. https://www.postgresql.org/docs/current/runtime-config-resource.html
            conn.execute(text("SET LOCAL work_mem = '1GB'"))
        max_seq = int(conn.execute(text("SELECT coalesce(max(seq), 0) FROM changes")).scalar_one())
        original = int(conn.execute(text("SELECT count(*) FROM items")).scalar_one())
        print(f"  {original:,} items, change log up to seq {max_seq:,}; making {times - 1} copies", flush=True)
        for k in range(1, times):
            for name, id_columns in ID_COLUMNS.items():
                table = metadata.tables[name]
                started = time.perf_counter()
                exprs = []
                for column in table.columns:
                    if column.name in id_columns:
                        exprs.append(f"{column.name} || '{MARK}{k}'")  # NULL stays NULL
                    elif column.name in ("seq", "version") and name in ("changes", "items"):
                        exprs.append(f"{column.name} + {k * max_seq}")
                    else:
                        exprs.append(column.name)
                cols = ", ".join(c.name for c in table.columns)
                key = KEY.get(name, "item_id")
                conn.execute(
                    text(
                        f"INSERT INTO {name} ({cols}) SELECT {', '.join(exprs)} FROM {name} "
                        f"WHERE {key} NOT LIKE '%{MARK}%'"
                    )
                )
                print(f"    copy {k}: {name} in {time.perf_counter() - started:.1f} s", flush=True)
        conn.execute(text("UPDATE change_counter SET last_seq = :s WHERE id = 1"), {"s": max_seq * times})
        started = time.perf_counter()
        recompute_all_flags(conn)
        print(f"  report flags recomputed in {time.perf_counter() - started:.1f} s", flush=True)
    with store.engine.connect() as conn:
        total = int(conn.execute(text("SELECT count(*) FROM items")).scalar_one())
        conn.execute(text("ANALYZE"))
        conn.commit()
    print(f"  now {total:,} items (ANALYZE done)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--times", type=int, default=4, help="the store's size afterwards, in seeds (K)")
    args = parser.parse_args()
    if args.times < 2:
        raise SystemExit("--times must be 2 or more")
    store = Store.open(args.database_url)
    try:
        grow(store, args.times)
    finally:
        store.close()


if __name__ == "__main__":
    main()
