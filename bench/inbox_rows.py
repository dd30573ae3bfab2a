"""The inbox's own statements per delivery: intake, claim and settle, client and server CPU
(issue 13, branch i13inbox: the body out of the row the claim and the settle rewrite).

    .venv/bin/python bench/inbox_rows.py [--deliveries 10000] [--claim 800]        # SQLite (a temp file)
    .venv/bin/python bench/inbox_rows.py --database-url postgresql+psycopg://127.0.0.1/test

Stores `--deliveries` signed Jira deliveries (bench/webhooks.py's, ~5 KB each) with
`InboxStore.add_many` in groups of 500 (the intake's group commit, no HTTP), then claims them
all, `--claim` at a time (`InboxStore.claim`), then settles each claim as done in its own
transaction (`settle_held`, which the worker runs first in a batch's apply transaction; here
nothing is applied). No mapping, no apply: only what the inbox's rows cost.

Per phase and delivery: the client thread's CPU (`time.thread_time`), the wall, and on
PostgreSQL the CPU of the database's backends (`/proc/<pid>/schedstat`, nanoseconds; the
server must run on this machine) and the WAL the phase wrote (`pg_current_wal_lsn`).
Compare A/B pairs run back to back: the figures are one machine's at one load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _pg_server import backend_cpu, backend_pids, wal_lsn
from webhooks import SECRET, SOURCE, Database, load, source_config

from fakes.jira import FakeJira
from hub.config import parse_config
from hub.db.engine import write_transaction
from hub.store.inbox import DONE, InboxStore
from hub.webhooks import WebhookIntake


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="PostgreSQL admin URL (default: a SQLite temp file)")
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--claim", type=int, default=800, help="deliveries per claim (the worker's 4 x 200)")
    parser.add_argument("--db-prefix", default="opshub_bench_inbox")
    args = parser.parse_args()
    fake = FakeJira(min(args.deliveries, 2000), seed=11)
    config = parse_config(source_config(fake))
    db = Database(args.database_url, fake, config, args.db_prefix)
    postgres = args.database_url is not None
    engine = db.store.engine
    try:
        intake = WebhookIntake(db.store, config)
        inbox = InboxStore(engine)
        ids = fake.ids()
        prepared = []
        for n in range(args.deliveries):
            headers, body = fake.webhook("upsert", ids[n % len(ids)], secret=SECRET)
            prepared.append(intake.prepare(SOURCE, headers, body))
        size = sum(len(d.body) for d in prepared) / len(prepared)

        def pids() -> set[int]:
            return backend_pids(engine) if postgres else set()

        def wal() -> int:
            return wal_lsn(engine) if postgres else 0

        known = pids()
        results: list[tuple[str, int, float, float, float, int]] = []

        def phase(name: str, run: object) -> object:
            nonlocal known
            before_server = {pid: backend_cpu(pid) for pid in known}
            lsn = wal()
            cpu0, t0 = time.thread_time(), time.perf_counter()
            out = run()  # type: ignore[operator]
            wall, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
            now = pids() | known
            server = sum(backend_cpu(pid) - before_server.get(pid, 0.0) for pid in now)
            known = now
            results.append((name, args.deliveries, wall, cpu, server, wal() - lsn))
            return out

        def store_all() -> None:
            for start in range(0, len(prepared), 500):
                inbox.add_many(prepared[start : start + 500])

        def claim_all() -> list[list[object]]:
            claims = []
            while batch := inbox.claim(args.claim):
                claims.append(batch)
            return claims

        print(
            f"backend {'postgresql' if postgres else 'sqlite'}; {args.deliveries} deliveries of {size:,.0f} bytes; "
            f"claims of {args.claim}; {load()}",
            flush=True,
        )
        phase("intake (add_many, groups of 500)", store_all)
        claims = phase("claim", claim_all)
        assert sum(len(c) for c in claims) == args.deliveries, "every delivery claimed once"  # type: ignore[arg-type]

        def settle_all() -> None:
            for batch in claims:  # type: ignore[attr-defined]
                with write_transaction(engine) as conn:
                    inbox.settle_held(conn, [(d, DONE, None) for d in batch])

        phase("settle (settle_held, done)", settle_all)
        assert inbox.counts() == {DONE: args.deliveries}
        print(f"{'phase':<34} {'wall us/dlv':>11} {'client CPU':>11} {'server CPU':>11} {'WAL B/dlv':>10}")
        for name, n, wall, cpu, server, wal_bytes in results:
            per = 1e6 / n
            print(f"{name:<34} {wall * per:>11.1f} {cpu * per:>11.1f} {server * per:>11.1f} {wal_bytes / n:>10,.0f}")
        print(load())
    finally:
        db.drop()


if __name__ == "__main__":
    main()
