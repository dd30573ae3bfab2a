"""What a local PostgreSQL server spent for a benchmark: its backends' CPU and the WAL written.

The server must run on this machine (the CPU is read from `/proc/<pid>/schedstat`, whose first
field is the time on CPU in nanoseconds: https://docs.kernel.org/scheduler/sched-stats.html).
Backends that end between two readings are not counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text


def backend_pids(engine: Any) -> set[int]:
    """The server processes serving the engine's database now."""
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars())


def backend_cpu(pid: int) -> float:
    """CPU seconds this server process has used (0.0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def backends_cpu(engine: Any, since: dict[int, float]) -> dict[int, float]:
    """Each current backend's CPU seconds, less its reading in `since` (from an earlier call)."""
    return {pid: backend_cpu(pid) - since.get(pid, 0.0) for pid in backend_pids(engine)}


def wal_lsn(engine: Any) -> int:
    """The server's WAL position in bytes: the difference of two readings is what was written."""
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_current_wal_lsn() - '0/0'")).scalar_one())
