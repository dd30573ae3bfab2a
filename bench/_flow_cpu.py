"""CPU of one flow request over every item, client and PostgreSQL server apart.

    python bench/_flow_cpu.py postgresql+psycopg://127.0.0.1/pages_100k 30
    python bench/_flow_cpu.py sqlite:////tmp/pages-100k.db 30

Calls `FlowService.figures()` (what the dashboard's Flow page runs) N times after one warm-up
call and prints wall p50/p95, this process's CPU p50 (`time.process_time()`) and, on
PostgreSQL, the CPU the server's backend spent per call: its utime + stime from
`/proc/<pid>/stat` (https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html), read before
and after (the server must run on this machine). CPU seconds rather than wall time, because
the machine's load stretches wall time far more than the work changes. To compare two
versions on one database, run this alternately from each checkout (`PYTHONPATH=<checkout>`).
The backend is the pool's one connection when the calls are sequential; the line says
whether it stayed the same. Parallel workers, if a plan used them, are not counted.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import text

from hub.insights.flow import FlowService
from hub.store import Store
from hub.store.queries import ItemQuery


def backend_cpu_ms(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") * 1000


def main() -> None:
    url, calls = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30
    store = Store.open(url)
    service = FlowService(store.engine)
    now = datetime.now(UTC)
    postgresql = store.engine.dialect.name == "postgresql"
    pid = 0
    if postgresql:
        with store.engine.connect() as conn:
            pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    service.figures(ItemQuery(), as_of=now)
    walls, cpus = [], []
    server_before = backend_cpu_ms(pid) if postgresql else 0.0
    for _ in range(calls):
        t0, c0 = time.perf_counter(), time.process_time()
        service.figures(ItemQuery(), as_of=now)
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
    walls.sort()
    cpus.sort()
    line = (
        f"figures() x{calls}: wall p50 {walls[calls // 2]:.0f} p95 {walls[max(0, int(calls * 0.95) - 1)]:.0f} ms; "
        f"client CPU p50 {cpus[calls // 2]:.0f} ms"
    )
    if postgresql:
        server = (backend_cpu_ms(pid) - server_before) / calls
        with store.engine.connect() as conn:
            same = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()) == pid
        line += f"; server backend CPU {server:.1f} ms per call (same backend: {same})"
    print(f"{line}; load {os.getloadavg()[0]:.1f}")
    store.close()


if __name__ == "__main__":
    main()
