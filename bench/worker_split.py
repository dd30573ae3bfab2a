"""Where a webhook worker drain's wall time goes on PostgreSQL: the hub's CPU, waiting for the
server (by statement), waiting for the commit's WAL flush (issue 13, branch i13pgserver).

    .venv/bin/python bench/worker_split.py --database-url postgresql+psycopg://127.0.0.1/test \\
        [--deliveries 10000] [--batch 200] [--server-times] [--db-prefix NAME]
    .venv/bin/python bench/worker_split.py                # SQLite (a temp file): the same split

Stores `--deliveries` signed Jira deliveries (as bench/webhooks.py makes them) straight into
the inbox (no HTTP), then runs `InboxWorker.drain` in this process with every DBAPI call timed:

- **per step** (wall and CPU of its thread, `time.thread_time`): the claim, the mapping (the
  lane's `_prepare`, on the event loop), and the batch's transaction (`_commit_batch`),
  whose wall splits into its statements (`cursor.execute`/`executemany`, client side: the
  round trip, the server's work and the wait for the CPU to run the two), its COMMIT (the
  server's WAL flush, durable by design) and the rest (the hub's Python between statements);
- **per statement**: calls, round trips, client-side wall, and with `--server-times` the
  server's own time (`log_min_duration_statement = 0` sent to this client as notices, so
  nothing is written to the server's log files: a superuser setting for this session only).
  A statement's client wall less its server time is the round trip and the scheduler's delay.

The figures of one run are one machine's at one load: compare A/B pairs run back to back.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg_server import backends_cpu, wal_lsn
from sqlalchemy import event
from webhooks import SECRET, SOURCE, Database, load, source_config

from fakes.jira import FakeJira
from hub.config import parse_config
from hub.store.inbox import InboxStore
from hub.webhooks import InboxWorker, WebhookIntake

_WORDS = re.compile(r"\s+")


def label(sql: Any) -> str:
    """A short name of a statement: its verb and table (enough to tell apply's apart)."""
    text = sql if isinstance(sql, str) else sql.decode() if isinstance(sql, bytes) else str(sql)
    text = _WORDS.sub(" ", text).strip()
    upper = text.upper()
    for verb, marker in (("INSERT INTO", " "), ("UPDATE", " "), ("DELETE FROM", " ")):
        if upper.startswith(verb):
            rest = text[len(verb) :].strip().split(marker)[0]
            extra = ""
            if verb == "UPDATE" and "SET" in upper:
                extra = " SET " + text[upper.index(" SET ") + 5 :].split("=")[0].strip()
            returning = " RETURNING" if " RETURNING " in upper else ""
            return f"{verb.split()[0]} {rest}{extra}{returning}"[:70]
    if upper.startswith("SELECT"):
        found = re.search(r"\bFROM (\w+)", text, re.I)
        lock = " FOR UPDATE" if "FOR UPDATE" in upper else ""
        return f"SELECT {found[1] if found else text[7:40]}{lock}"[:70]
    return text[:50]


class Split:
    def __init__(self) -> None:
        self.statements: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])  # calls, wall, cpu, server
        self.steps: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # calls, wall, cpu
        self.pending_server: list[str] = []  # labels of statements sent, awaiting their duration notice

    def add(self, key: str, wall: float, cpu: float) -> None:
        entry = self.statements[key]
        entry[0] += 1
        entry[1] += wall
        entry[2] += cpu

    def step(self, key: str, wall: float, cpu: float) -> None:
        entry = self.steps[key]
        entry[0] += 1
        entry[1] += wall
        entry[2] += cpu


SPLIT = Split()
_DURATION = re.compile(r"duration: ([0-9.]+) ms(?:\s+(statement|execute [^:]*|parse [^:]*|bind [^:]*): (.*))?", re.S)


def instrument_psycopg(server_times: bool) -> Callable[[Any, Any], None] | None:
    import psycopg

    def wrap(owner: Any, name: str, key_of: Callable[..., str]) -> None:
        original = getattr(owner, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            key = key_of(*args)
            w0, c0 = time.perf_counter(), time.thread_time()
            try:
                return original(self, *args, **kwargs)
            finally:
                SPLIT.add(key, time.perf_counter() - w0, time.thread_time() - c0)

        setattr(owner, name, wrapper)

    wrap(psycopg.Cursor, "execute", lambda sql, *a: label(sql))
    wrap(psycopg.Cursor, "executemany", lambda sql, *a: label(sql) + " (executemany)")
    wrap(psycopg.Connection, "commit", lambda *a: "COMMIT")
    wrap(psycopg.Connection, "rollback", lambda *a: "ROLLBACK")
    if not server_times:
        return None

    def notice(diagnostic: Any) -> None:
        found = _DURATION.search(getattr(diagnostic, "message_primary", "") or "")
        if not found:
            return
        kind, text = found[2] or "", found[3] or ""
        key = (
            "COMMIT"
            if text.strip().upper() == "COMMIT"
            else "BEGIN"
            if text.strip().upper() == "BEGIN"
            else label(text)
        )
        if kind.startswith(("parse", "bind")):
            key = f"({kind.split()[0]}, all statements)"
        SPLIT.statements["server: " + key][3] += float(found[1]) / 1000
        SPLIT.statements["server: " + key][0] += 1

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.add_notice_handler(notice)
        with dbapi_conn.cursor() as cur:
            cur.execute("SET log_min_duration_statement = 0")
            cur.execute("SET client_min_messages = log")
        dbapi_conn.commit()

    return on_connect


def timed_sync(owner: Any, name: str, key: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            SPLIT.step(key, time.perf_counter() - w0, time.thread_time() - c0)

    setattr(owner, name, wrapper)


def timed_async(owner: Any, name: str, key: str) -> None:
    original = getattr(owner, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        w0, c0 = time.perf_counter(), time.thread_time()
        try:
            return await original(*args, **kwargs)
        finally:
            SPLIT.step(key, time.perf_counter() - w0, time.thread_time() - c0)

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="PostgreSQL admin URL (default: a SQLite temp file)")
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=200, help="the drain's claim size (it grows 4x in a backlog)")
    parser.add_argument("--server-times", action="store_true", help="the server's time per statement (notices)")
    parser.add_argument("--db-prefix", default="opshub_bench_split")
    parser.add_argument(
        "--sql", action="append", default=[], help="a statement to run before the inbox is filled (A/B of a setting)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    parser.add_argument("--pipeline", action="store_true", help="InboxWorker(pipeline=True): PostgreSQL only")
    args = parser.parse_args()
    fake = FakeJira(args.deliveries, seed=11)
    config = parse_config(source_config(fake))
    db = Database(args.database_url, fake, config, args.db_prefix)
    try:
        with db.store.engine.begin() as conn:
            for statement in args.sql:
                conn.exec_driver_sql(statement)
        intake = WebhookIntake(db.store, config)
        inbox = InboxStore(db.store.engine)
        ids = fake.ids()
        group = []
        for n in range(args.deliveries):
            headers, body = fake.webhook("upsert", ids[n % len(ids)], secret=SECRET)
            group.append(intake.prepare(SOURCE, headers, body))
            if len(group) == 500:
                inbox.add_many(group)
                group = []
        inbox.add_many(group)
        postgres = args.database_url is not None
        if postgres:
            on_connect = instrument_psycopg(args.server_times)
            if on_connect is not None:
                db.store.engine.dispose()  # new connections carry the notice handler
                event.listen(db.store.engine, "connect", on_connect)
        timed_sync(InboxStore, "claim", "claim (thread)")
        timed_async(InboxWorker, "_prepare", "map (event loop)")
        timed_sync(InboxWorker, "_commit_batch", "apply transaction (thread)")
        worker = InboxWorker(db.store, config, pipeline=args.pipeline)

        async def drain() -> int:
            try:
                return await worker.drain(args.batch)
            finally:
                await worker.aclose()

        print(
            f"backend {'postgresql' if postgres else 'sqlite'}; {args.deliveries} deliveries; "
            f"pipeline {worker.pipeline}; {load()}",
            flush=True,
        )
        backends = backends_cpu(db.store.engine, {}) if postgres else {}
        lsn = wal_lsn(db.store.engine) if postgres else 0
        cpu0, t0 = time.process_time(), time.perf_counter()
        applied = asyncio.run(drain())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        print(
            f"drain: {applied:,} in {wall:.2f} s = {applied / wall:,.0f}/s wall, {applied / cpu:,.0f} per CPU-s "
            f"(process CPU {cpu:.2f} s, {cpu / wall:.0%} of the wall); {load()}"
        )
        if postgres:
            server = sum(backends_cpu(db.store.engine, backends).values())
            print(
                f"server: the database's backends used {server:.2f} CPU-s ({server * 1e6 / applied:,.0f} us per "
                f"delivery); client + server: {applied / (cpu + server):,.0f} deliveries per CPU-s; "
                f"WAL {(wal_lsn(db.store.engine) - lsn) / applied:,.0f} bytes per delivery"
            )
        per = 1e6 / applied
        print(f"\n{'step':<34} {'calls':>6} {'wall us/dlv':>12} {'cpu us/dlv':>11} {'wall-cpu':>9}")
        for key, (calls, w, c) in sorted(SPLIT.steps.items(), key=lambda kv: -kv[1][1]):
            print(f"{key:<34} {int(calls):>6} {w * per:>12.0f} {c * per:>11.0f} {(w - c) * per:>9.0f}")
        steps_wall = sum(w for _, w, _ in SPLIT.steps.values())
        print(f"{'(outside the steps)':<34} {'':>6} {(wall - steps_wall) * per:>12.0f}")
        if not postgres:
            return
        client = {k: v for k, v in SPLIT.statements.items() if not k.startswith("server: ")}
        trips = sum(int(v[0]) for v in client.values())
        batches = SPLIT.steps["apply transaction (thread)"][0] or 1
        print(f"\nDBAPI calls: {trips:,} ({trips / batches:.1f} per batch of {applied / batches:.0f})")
        print(f"{'statement (client side)':<72} {'calls':>6} {'wall us/dlv':>11} {'cpu us/dlv':>10}")
        for key, (calls, w, c, _) in sorted(client.items(), key=lambda kv: -kv[1][1]):
            print(f"{key:<72} {int(calls):>6} {w * per:>11.0f} {c * per:>10.0f}")
        print(
            f"{'all statements':<72} {trips:>6} {sum(v[1] for v in client.values()) * per:>11.0f} "
            f"{sum(v[2] for v in client.values()) * per:>10.0f}"
        )
        server = {k[8:]: v for k, v in SPLIT.statements.items() if k.startswith("server: ")}
        if server:
            print(f"\n{'statement (server time)':<72} {'count':>6} {'us/dlv':>11}")
            for key, (calls, _, _, s) in sorted(server.items(), key=lambda kv: -kv[1][3]):
                if s * per < 1:
                    continue
                print(f"{key:<72} {int(calls):>6} {s * per:>11.0f}")
            print(f"{'all (server)':<72} {'':>6} {sum(v[3] for v in server.values()) * per:>11.0f}")
    finally:
        if args.keep:
            print(f"kept: {db.url}")
        else:
            db.drop()


if __name__ == "__main__":
    main()
