"""Where SQLite's text index (migration 0019's FTS5 triggers) spends an `items` INSERT.

    .venv/bin/python bench/fts_write.py [--rows 10000] [--batch 500]

Raw sqlite3 on the hub's schema at 0021 (migrated once into a temp file, then copied per
variant), rows inserted `--batch` to a transaction as apply writes them; prints process CPU
per row. Variants: no text index; 0019's trigger with executemany (one statement execution per
row: each opens a statement journal and makes FTS5 flush a one-row segment, `fts5SavepointMethod`);
the same trigger with each batch as ONE statement; detail=none; a no-op trigger (the statement
journal alone); and the FTS5 inserts run directly without a trigger (tokenising and the index).
bench/README.md, section "SQLite text index: its write cost" (branch i13fts).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from hub.db.engine import migrate

WORDS = [
    "fix",
    "add",
    "remove",
    "update",
    "login",
    "page",
    "invoice",
    "PDF",
    "timeout",
    "billing",
    "export",
    "dashboard",
    "webhook",
    "sync",
]
FTS = "CREATE VIRTUAL TABLE items_text USING fts5(key, title, content='items', content_rowid='rowid', {})"
OPTIONS = "tokenize='trigram case_sensitive 0', columnsize=0"
TRIGGER = "CREATE TRIGGER items_text_insert AFTER INSERT ON items BEGIN {}; END"
FTS_ROW = "INSERT INTO items_text(rowid, key, title) VALUES (new.rowid, new.key, new.title)"
VARIANTS = {
    "no text index": ([], "many"),
    "0019 trigger, executemany": ([FTS.format(OPTIONS), TRIGGER.format(FTS_ROW)], "many"),
    "0019 trigger, one statement a batch": ([FTS.format(OPTIONS), TRIGGER.format(FTS_ROW)], "one"),
    "detail=none trigger, executemany": ([FTS.format(OPTIONS + ", detail=none"), TRIGGER.format(FTS_ROW)], "many"),
    "no-op trigger, executemany": ([TRIGGER.format("SELECT 1")], "many"),
    "FTS5 inserts alone, no trigger": ([FTS.format(OPTIONS)], "fts"),
}


def rows(rng: random.Random, start: int, count: int) -> list[tuple[object, ...]]:
    found = []
    for n in range(start, start + count):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + f" {rng.randint(0, 10**6)}"
        found.append(
            (f"s:{n}", "s", "jira", str(n), f"P{n % 50}-{n}", title, "task", "todo", "medium", f"c{n % 50}",
             f"P{n % 50}", None, None, "2026-01-01T00:00:00", f"2026-01-{1 + n % 28:02d}T00:00:00", 0, None, 1,
             "2026-01-01T00:00:00", "{}" + "x" * 1500, None)
        )  # fmt: skip
    return found


def run(template: Path, ddl: list[str], mode: str, total: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fts.db"
        shutil.copyfile(template, path)
        con = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536"):
            con.execute(f"PRAGMA {pragma}")
        for statement in ["DROP TRIGGER items_text_insert", "DROP TRIGGER items_text_delete",
                          "DROP TRIGGER items_text_update", "DROP TABLE items_text", *ddl]:  # fmt: skip
            con.execute(statement)
        con.execute("CREATE TEMP TABLE stage AS SELECT * FROM items WHERE 0")
        rng = random.Random(1)
        batches = [rows(rng, start, batch) for start in range(0, total, batch)]
        insert = "INSERT INTO {} VALUES (" + ", ".join("?" * 21) + ")"
        cpu = 0.0
        for part in batches:
            if mode == "one":
                con.execute("DELETE FROM temp.stage")
                con.executemany(insert.format("temp.stage"), part)
            started = time.process_time()
            con.execute("BEGIN")
            if mode == "one":
                con.execute("INSERT INTO items SELECT * FROM temp.stage")
            elif mode == "fts":
                con.executemany(insert.format("items"), part)
                con.execute("INSERT INTO items_text(rowid, key, title) SELECT rowid, key, title FROM items"
                            " WHERE rowid > (SELECT count(*) FROM items) - ?", (len(part),))  # fmt: skip
            else:
                con.executemany(insert.format("items"), part)
            con.execute("COMMIT")
            cpu += time.process_time() - started
        con.close()
        return cpu / total * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "schema.db"
        migrate(create_engine(f"sqlite:///{template}"))
        with sqlite3.connect(template) as con:  # 0021's text index, whatever the checkout's head is
            con.execute("DROP TABLE IF EXISTS items_text_ids")
        for name, (ddl, mode) in VARIANTS.items():
            per_row = run(template, ddl, mode, args.rows, args.batch)
            print(f"{name:40s} {per_row:7.1f} us CPU per row", flush=True)


if __name__ == "__main__":
    main()
