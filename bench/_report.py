"""Shared timing for the report benchmarks (bench/quality.py, bench/digest.py,
bench/priorities.py): each case is a GET through the ASGI app, timed with bench/flow.py's
`measure` (wall and this process's CPU per request, one warm-up request first)."""

from __future__ import annotations

import os
from typing import Any

from fastapi.testclient import TestClient
from rich.table import Table

from bench.flow import measure, percentile

TARGET_MS = 1000.0  # issue 10: every report under 1 s p95 at 100,000 items


def report_table(title: str, *extra: str) -> Table:
    return Table(
        "case",
        *extra,
        "requests",
        "p50 ms",
        "p95 ms",
        "max ms",
        "CPU ms/request (p50)",
        f"p95 < {TARGET_MS:.0f} ms",
        title=f"{title}, load {os.getloadavg()[0]:.1f}",
    )


def time_case(table: Table, client: TestClient, name: str, params: dict[str, Any], requests: int, *extra: str) -> float:
    """Time one case, add its row to `table`, return its p95 in ms."""
    wall, cpu = measure(client, dict(params), requests)
    p95 = percentile(wall, 95)
    table.add_row(
        name,
        *extra,
        str(len(wall)),
        f"{percentile(wall, 50):.0f}",
        f"{p95:.0f}",
        f"{wall[-1]:.0f}",
        f"{percentile(cpu, 50):.0f}",
        "yes" if p95 < TARGET_MS else "NO",
    )
    return p95
