"""What each index of `items` costs PostgreSQL's `INSERT INTO items ... ON CONFLICT` (issue 13).

    python bench/items_indexes.py --seeded NAME [--rows 20000] [--batch 300] [--variants all,-ix_items_key,...]
                                  [--pg-url postgresql://postgres@127.0.0.1:5432] [--pg-prefix P]

Runs on copies (`CREATE DATABASE ... TEMPLATE NAME`) of a store kept by
`bench/store_apply.py --preload N --keep-seed NAME`, one copy per variant, dropped after. In
each copy, `--rows` of the stored rows are copied to a staging table under new ids (same
titles, keys with a suffix, the same updated_at: fresh items land all over each index, as a
full sync's do), then upserted into items with the statement `ItemStore.apply` runs (the bulk
insert's `ON CONFLICT (id) DO UPDATE`), `--batch` rows a statement, each its own transaction:
phase "insert" (new rows), then phase "update" (the same ids again, updated_at a day later and
another status: every index gets new entries, no HOT update). The staging SELECT is the same in
every variant; compare variants, not absolute figures.

Variants: `all` (the schema as migrated), `-NAME` (that index dropped), `none` (every secondary
index dropped: the heap, the primary key and the WAL), `+NAME` (that index alone: its cost is
the difference from `none`, a steadier figure than `all` less `-NAME`), `gin-nofast` (the
trigram GIN index with fastupdate = off), `gin-pending=KB` (its gin_pending_list_limit), `gist`
or `gist=SIGLEN` (a trigram GiST in the GIN's place). Per variant and phase: wall
seconds, the backend's CPU seconds (`/proc/<pid>/schedstat`), WAL written, and the statements'
time distribution (p50/p90/p99/max ms: GIN pending-list flushes are stalls in some statements,
https://www.postgresql.org/docs/current/gin.html#GIN-FAST-UPDATE).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import psycopg

TRGM = "ix_items_text_trgm"
COLUMNS = [
    "id",
    "source",
    "tool",
    "native_id",
    "key",
    "title",
    "kind",
    "status_category",
    "priority_level",
    "container_id",
    "container_key",
    "parent_id",
    "rice_score",
    "created_at",
    "updated_at",
    "deleted",
    "deleted_at",
    "version",
    "synced_at",
    "doc",
    "raw",
]


def backend_cpu(pid: int) -> float:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def variant_ddl(conn: psycopg.Connection, variant: str) -> None:
    if variant == "all":
        return
    if variant == "none" or variant.startswith("+"):
        names = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'items' AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for (name,) in names:
            if name != variant[1:]:
                conn.execute(f"DROP INDEX {name}")
    elif variant.startswith("-"):
        conn.execute(f"DROP INDEX {variant[1:]}")
    elif variant == "gin-nofast":
        conn.execute(f"ALTER INDEX {TRGM} SET (fastupdate = off)")
    elif variant.startswith("gin-pending="):
        conn.execute(f"ALTER INDEX {TRGM} SET (gin_pending_list_limit = {int(variant.split('=')[1])})")
    elif variant == "gist" or variant.startswith("gist="):
        # The trigram GiST instead of the GIN: one signature entry a row instead of one entry a
        # trigram (https://www.postgresql.org/docs/current/pgtrgm.html#PGTRGM-INDEX; siglen in bytes).
        ops = f"gist_trgm_ops(siglen = {int(variant.split('=')[1])})" if "=" in variant else "gist_trgm_ops"
        conn.execute(f"DROP INDEX {TRGM}")
        conn.execute(f"CREATE INDEX {TRGM} ON items USING gist (key {ops}, title {ops})")
    else:
        raise SystemExit(f"unknown variant {variant}")


def run_variant(base: str, seeded: str, prefix: str, variant: str, rows: int, batch: int) -> None:
    name = f"{prefix}_ix"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {seeded} STRATEGY FILE_COPY")
    try:
        with psycopg.connect(f"{base}/{name}", autocommit=True) as conn:
            variant_ddl(conn, variant)
            conn.execute(
                "CREATE TABLE st AS SELECT row_number() OVER () AS n, * FROM "
                f"(SELECT * FROM items ORDER BY md5(id) LIMIT {rows}) s"
            )
            conn.execute(
                "UPDATE st SET id = 'ix-' || id, native_id = 'ix-' || native_id, key = key || 'X', version = 1"
            )
            conn.execute("VACUUM ANALYZE st")
            conn.execute("VACUUM ANALYZE items")
            conn.execute("CHECKPOINT")
            names = ", ".join(COLUMNS)
            sets = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS if c != "id")
            upsert = (
                f"INSERT INTO items ({names}) SELECT {names} FROM st WHERE n > %s AND n <= %s "
                f"ON CONFLICT (id) DO UPDATE SET {sets}"
            )
            pid = conn.info.backend_pid
            for phase in ("insert", "update"):
                if phase == "update":
                    conn.execute(
                        "UPDATE st SET updated_at = updated_at + interval '1 day', version = 2, "
                        "status_category = CASE status_category WHEN 'done' THEN 'in_progress' ELSE 'done' END"
                    )
                    conn.execute("VACUUM ANALYZE st")
                lsn0 = conn.execute("SELECT pg_current_wal_lsn() - '0/0'").fetchone()[0]  # type: ignore[index]
                cpu0, wall0 = backend_cpu(pid), time.perf_counter()
                times = []
                for start in range(0, rows, batch):
                    t0 = time.perf_counter()
                    conn.execute(upsert, (start, start + batch))
                    times.append((time.perf_counter() - t0) * 1000)
                wall, cpu = time.perf_counter() - wall0, backend_cpu(pid) - cpu0
                wal = conn.execute("SELECT pg_current_wal_lsn() - '0/0'").fetchone()[0] - lsn0  # type: ignore[index]
                q = statistics.quantiles(times, n=100)
                print(
                    f"{variant:28} {phase:6} wall {wall:6.2f} s  cpu {cpu:6.2f} s  {cpu / rows * 1e6:6.1f} us/row  "
                    f"wal {wal / rows / 1024:5.1f} KB/row  ms p50 {q[49]:6.1f} p90 {q[89]:6.1f} p99 {q[98]:6.1f} "
                    f"max {max(times):6.1f}",
                    flush=True,
                )
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeded", required=True)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=300)
    parser.add_argument("--variants", default="all,none")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--pg-prefix", default="bench_items")
    args = parser.parse_args()
    base = args.pg_url.replace("+psycopg", "").rstrip("/")  # the server; databases are named per variant
    for variant in args.variants.split(","):
        run_variant(base, args.seeded, args.pg_prefix, variant, args.rows, args.batch)


if __name__ == "__main__":
    main()
