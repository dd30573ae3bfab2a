"""Webhook path load generator (issue 13): intake, worker, 202 -> queryable, and the ceiling.

    .venv/bin/python bench/webhooks.py                                  # SQLite (a temp file)
    .venv/bin/python bench/webhooks.py --database-url postgresql+psycopg://127.0.0.1/test
    .venv/bin/python bench/webhooks.py --rate 500 --seconds 60 --deliveries 20000

One run measures, in order (each server is `opshub`'s own app under uvicorn in a child
process, so its CPU is read from its pid alone and not mixed with the load generator's):

1. **ceiling**: a bare FastAPI app whose one POST route checks the Jira HMAC signature and
   answers 202 (no database), closed loop: requests/s and requests per server CPU-second;
2. **intake**: the hub (`role=api`: no worker) takes `--deliveries` signed Jira deliveries,
   closed loop over `--connections` keep-alive connections: deliveries/s, per server CPU-s
   (the target: >= 2,000 per CPU-s with a durable commit), 202 latency p50/p95/p99, and the
   mean group size (deliveries per commit);
3. **worker**: the deliveries stored in 2 are applied by `InboxWorker.drain` in this
   process (no intake running): deliveries/s (target >= 2,000/s);
4. **202 -> queryable**: the hub with its worker (`role=all`), fresh database, open loop at
   `--rate` deliveries/s for `--seconds`; a poller (every 5 ms) reads which deliveries are
   `done` (the row is marked in the transaction that applied the item, so done = queryable):
   p50/p95/p99/max of (seen done - 202 received). Target p99 < 250 ms at 500/s for 60 s.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio streams (httpx costs
more CPU per request than the server being measured). Requests are built and signed before
the clock starts. The mapping context (Jira's field catalog) is stored before the runs, as a
sync would have, so the worker never calls the tool. `uptime`'s load is printed with the
figures: other processes share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from fastapi import FastAPI, Request, Response
from sqlalchemy import create_engine, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fakes.jira import FakeJira
from hub.config import HubConfig, parse_config
from hub.db.tables import webhook_inbox
from hub.store import Store
from hub.store.contexts import ContextStore
from hub.webhooks import InboxWorker

SOURCE = "acme-jira"
SECRET = "bench-secret"


def source_config(fake: FakeJira) -> dict[str, Any]:
    return {
        "sources": {
            SOURCE: {
                "tool": "jira",
                "base_url": fake.base_url,
                "email": fake.email,
                "api_token": fake.api_token,
                "projects": list(fake.projects),
                "webhook_secret": SECRET,
            }
        }
    }


# ------------------------------------------------------------------ servers (child processes)


def bare_app() -> Any:
    """The ceiling: FastAPI, one POST route, the Jira HMAC check, 202; no database."""
    app = FastAPI()
    key = SECRET.encode()

    @app.post("/webhooks/{source}", status_code=202)
    async def receive(source: str, request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-hub-signature", "")):
            return Response(status_code=401)
        return Response(b'{"delivery_id":"x","duplicate":false}', 202, media_type="application/json")

    return app


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.serve == "bare":
        app = bare_app()
    else:
        from hub.api.app import create_app
        from hub.settings import Role, Settings

        fake = FakeJira(10, seed=7)
        settings = Settings(
            database_url=args.database_url, migrate_on_start=False, log_level="warning", metrics_enabled=False
        )
        app = create_app(None, settings, config=parse_config(source_config(fake)), role=Role(args.serve))
    profile_to = os.environ.get("OPSHUB_BENCH_PROFILE")  # a path: cProfile the server into it
    if profile_to:
        import cProfile
        import signal

        def leave(_signum: int, _frame: object) -> None:
            raise SystemExit(0)

        # uvicorn re-raises the SIGTERM it caught once it has shut down: exit through `finally`.
        signal.signal(signal.SIGTERM, leave)
        profile = cProfile.Profile()
        profile.enable()
        try:
            uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
        finally:
            profile.disable()
            profile.dump_stats(f"{profile_to}.{args.serve}")
        return
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


class Server:
    def __init__(self, mode: str, database_url: str, port: int) -> None:
        self.port = port
        cmd = [sys.executable, __file__, "--serve", mode, "--port", str(port), "--database-url", database_url]
        self.proc = subprocess.Popen(cmd, env={**os.environ, "HUB_LOG_LEVEL": "warning"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# ------------------------------------------------------------------ load generator


def build_requests(fake: FakeJira, count: int) -> list[tuple[str, bytes]]:
    """(delivery id, raw HTTP request) per delivery: distinct issues, signed like Jira."""
    out = []
    ids = fake.ids()
    for n in range(count):
        headers, body = fake.webhook("upsert", ids[n % len(ids)], secret=SECRET)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        raw = (
            f"POST /webhooks/{SOURCE} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        out.append((headers["X-Atlassian-Webhook-Identifier"], raw))
    return out


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def closed_loop(port: int, requests: list[tuple[str, bytes]], connections: int) -> list[float]:
    """Each connection sends its next request when the last is answered; returns 202 latencies."""
    queue = list(reversed(requests))
    latencies: list[float] = []

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            _, raw = queue.pop()
            start = time.perf_counter()
            writer.write(raw)
            status = await _read_response(reader)
            latencies.append(time.perf_counter() - start)
            if status != 202:
                raise RuntimeError(f"status {status}")
        writer.close()

    await asyncio.gather(*(conn() for _ in range(connections)))
    return latencies


async def open_loop(
    port: int, requests: list[tuple[str, bytes]], rate: float, connections: int, acked: dict[str, float]
) -> int:
    """Send at `rate`/s on a schedule (not waiting for answers beyond a free connection);
    records each delivery's 202 time (perf_counter) in `acked`. Returns late sends."""
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    start = time.perf_counter()
    late = 0
    tasks = []

    async def send(delivery_id: str, raw: bytes) -> None:
        reader, writer = await free.get()
        writer.write(raw)
        status = await _read_response(reader)
        acked[delivery_id] = time.perf_counter()
        free.put_nowait((reader, writer))
        if status != 202:
            raise RuntimeError(f"status {status}")

    for n, (delivery_id, raw) in enumerate(requests):
        due = start + n / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.01:
            late += 1
        tasks.append(asyncio.create_task(send(delivery_id, raw)))
    await asyncio.gather(*tasks)
    while not free.empty():
        free.get_nowait()[1].close()
    return late


def poll_done(url: str, expected: int, seen: dict[str, float], stop: threading.Event) -> None:
    """Every 5 ms: which deliveries are done (applied and committed) since the last look.

    Two primary-key lookups (the new rows, the rows still pending), not one `id > n OR id IN
    (...)`: sampling pg_stat_activity every 50 ms during a 500/s run on PostgreSQL found that
    one statement in 37 % of the samples with an active backend, slowing the hub it measured."""
    engine = create_engine(url)
    t = webhook_inbox.c
    last_id = 0
    pending: set[int] = set()
    with engine.connect() as conn:
        while not stop.is_set() and len(seen) < expected:
            now = time.perf_counter()
            rows = conn.execute(select(t.id, t.delivery_id, t.status).where(t.id > last_id)).all()
            if pending:
                rows += conn.execute(select(t.id, t.delivery_id, t.status).where(t.id.in_(sorted(pending)))).all()
            conn.rollback()  # a fresh snapshot next time
            for row in rows:
                last_id = max(last_id, row.id)
                if row.status in ("done", "ignored", "dead"):
                    seen.setdefault(row.delivery_id, now)
                    pending.discard(row.id)
                else:
                    pending.add(row.id)
            time.sleep(0.005)
    engine.dispose()


# ------------------------------------------------------------------ databases


class Database:
    """A throw-away migrated database with the source's mapping context stored."""

    def __init__(self, base_url: str | None, fake: FakeJira, config: HubConfig, prefix: str) -> None:
        self.base_url = base_url
        self.tmp: str | None = None
        if base_url is None:
            self.tmp = tempfile.mkdtemp(prefix=f"{prefix}-")
            self.url = f"sqlite:///{self.tmp}/hub.db"
        else:
            name = f"{prefix}_{uuid.uuid4().hex[:8]}"
            admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            self.url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
        self.store = Store.open(self.url)
        connector = config.source(SOURCE).connector_cls(
            SOURCE, config.source(SOURCE).config, transport=httpx.ASGITransport(app=fake.app)
        )

        async def context() -> dict[str, Any]:
            try:
                return await connector.mapping_context()
            finally:
                await connector.aclose()

        ContextStore(self.store.engine).save(SOURCE, asyncio.run(context()))

    def drop(self) -> None:
        self.store.close()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.base_url is not None:
            admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(self.url).database}" WITH (FORCE)'))
            admin.dispose()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=None, help="PostgreSQL admin URL (default: a SQLite temp file)")
    parser.add_argument("--deliveries", type=int, default=20_000, help="closed-loop intake and worker runs")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop deliveries/s for 202 -> queryable")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--port", type=int, default=18931)
    parser.add_argument(
        "--db-prefix", default="opshub_bench_webhooks", help="name prefix of the throw-away databases (unique suffix)"
    )
    parser.add_argument("--skip", default="", help="comma list of phases to skip: ceiling,intake,worker,latency")
    parser.add_argument(
        "--pipeline",
        action="store_true",
        help="the worker maps a backlog's next batch while the one before commits (HUB_INBOX_PIPELINE, PostgreSQL)",
    )
    parser.add_argument(
        "--roles",
        choices=("all", "split"),
        default="all",
        help="202 -> queryable: one `role=all` process, or `split`: a `role=api` process for the intake and a "
        "`role=worker` process for the inbox worker (woken by LISTEN/NOTIFY on PostgreSQL)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipeline:
        os.environ["HUB_INBOX_PIPELINE"] = "true"  # the hub servers (child processes) read it
    if args.serve:
        serve(args)
        return
    skip = set(filter(None, args.skip.split(",")))
    backend = "postgresql" if args.database_url else "sqlite"
    total = max(args.deliveries, int(args.rate * args.seconds))
    fake = FakeJira(total, seed=11)
    config = parse_config(source_config(fake))
    print(f"building {total} signed deliveries ...", flush=True)
    requests = build_requests(fake, total)
    print(f"backend {backend}; {os.cpu_count()} cores; pipeline {args.pipeline}; {load()}", flush=True)

    if "ceiling" not in skip:
        server = Server("bare", "sqlite://", args.port)
        try:
            asyncio.run(closed_loop(args.port, requests[:2000], args.connections))  # warm up
            cpu0, t0 = server.cpu(), time.perf_counter()
            lat = asyncio.run(closed_loop(args.port, requests[: args.deliveries], args.connections))
            wall, cpu = time.perf_counter() - t0, server.cpu() - cpu0
        finally:
            server.stop()
        print(
            f"ceiling (bare POST + HMAC, no DB): {len(lat) / wall:,.0f} req/s wall, "
            f"{len(lat) / cpu:,.0f} per server CPU-s; 202 p50 {pct(lat, 0.5):.1f} ms p99 {pct(lat, 0.99):.1f} ms; "
            f"{load()}",
            flush=True,
        )

    if "intake" not in skip or "worker" not in skip:
        db = Database(args.database_url, fake, config, args.db_prefix)
        try:
            batch = requests[: args.deliveries]
            server = Server("api", db.url, args.port)
            try:
                cpu0, t0 = server.cpu(), time.perf_counter()
                lat = asyncio.run(closed_loop(args.port, batch, args.connections))
                wall, cpu = time.perf_counter() - t0, server.cpu() - cpu0
            finally:
                server.stop()
            print(
                f"intake (durable group commit, role=api): {len(lat) / wall:,.0f} deliveries/s wall, "
                f"{len(lat) / cpu:,.0f} per server CPU-s (target >= 2,000); 202 p50 {pct(lat, 0.5):.1f} ms "
                f"p95 {pct(lat, 0.95):.1f} ms p99 {pct(lat, 0.99):.1f} ms; {load()}",
                flush=True,
            )
            if "worker" not in skip:
                worker = InboxWorker(db.store, config, pipeline=args.pipeline)

                async def drain() -> int:
                    try:
                        return await worker.drain()
                    finally:
                        await worker.aclose()

                cpu0, t0 = time.process_time(), time.perf_counter()
                applied = asyncio.run(drain())
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                counts = db.store.engine.connect().execute(
                    select(webhook_inbox.c.status, text("count(*)")).group_by(webhook_inbox.c.status)
                )
                print(
                    f"worker (batches of 200, growing to 800 in a backlog, one transaction each): {applied:,} applied in {wall:.1f} s = "
                    f"{applied / wall:,.0f} deliveries/s wall (target >= 2,000), {applied / cpu:,.0f} per CPU-s "
                    f"of this process; statuses {dict(counts.all())}; {load()}",
                    flush=True,
                )
        finally:
            db.drop()

    if "latency" not in skip:
        db = Database(args.database_url, fake, config, args.db_prefix)
        try:
            n = int(args.rate * args.seconds)
            batch = requests[:n]
            # `split`: the intake and the worker in two processes (two GILs), as a deployment
            # with `HUB_ROLE=api` and `HUB_ROLE=worker` runs them; the CPU figure sums both.
            server = Server("all" if args.roles == "all" else "api", db.url, args.port)
            servers = [server] if args.roles == "all" else [server, Server("worker", db.url, args.port + 1)]
            acked: dict[str, float] = {}
            seen: dict[str, float] = {}
            stop = threading.Event()
            poller = threading.Thread(target=poll_done, args=(db.url, n, seen, stop), daemon=True)
            try:
                poller.start()
                cpu0 = sum(s.cpu() for s in servers)
                late = asyncio.run(open_loop(args.port, batch, args.rate, args.connections, acked))
                deadline = time.perf_counter() + 30
                while len(seen) < n and time.perf_counter() < deadline:
                    time.sleep(0.05)
                cpu = sum(s.cpu() for s in servers) - cpu0
            finally:
                stop.set()
                poller.join()
                for each in servers:
                    each.stop()
            gaps = [max(seen[d] - acked[d], 0.0) for d in acked if d in seen]
            print(
                f"202 -> queryable at {args.rate:.0f}/s for {args.seconds:.0f} s (roles {args.roles}, worker running): "
                f"{len(gaps):,}/{n:,} applied; p50 {pct(gaps, 0.5):.0f} ms p95 {pct(gaps, 0.95):.0f} ms "
                f"p99 {pct(gaps, 0.99):.0f} ms max {max(gaps) * 1000:.0f} ms (target p99 < 250); "
                f"mean {statistics.fmean(gaps) * 1000:.0f} ms; server CPU {cpu:.1f} s; late sends {late}; {load()}",
                flush=True,
            )
        finally:
            db.drop()


if __name__ == "__main__":
    main()
