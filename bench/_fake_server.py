"""Serve any conformance fake (tests/conformance/cases.py `CASES`) on a loopback port.

    python bench/_fake_server.py TOOL --records N [--latency 0.05] [--latency-mode added|total]
                                 [--port P] [--host 127.0.0.1]

For the sync benchmark (bench/sync.py), which runs each fake in its own process so the
fake's CPU is not charged to the hub's. Works for every tool in `CASES`, including those
whose fake module has no standalone runner. Before serving, prints one JSON line on
stdout: `{"tool": ..., "url": ..., "config": {...}}`, the raw source config (as in
opshub.toml) a connector needs to talk to this fake.

`--latency-mode added` (the default, as the fakes do it) sleeps `--latency` and then builds
the answer, so a page takes latency + the fake's own build time. `total` makes every answer
take `--latency` in all (the build time is part of it, as a real tool's page latency is),
so requests x latency is a floor a client can actually reach.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `tests` is not installed (nor bench/)

from fakes.common import TotalLatency


def find_case(tool: str) -> Any:
    from tests.conformance.cases import CASES

    for case in CASES:
        if case.id == tool:
            return case
    known = ", ".join(case.id for case in CASES)
    raise SystemExit(f"no conformance case for tool {tool!r} (known: {known})")


def build(tool: str, records: int, base_url: str, latency: float) -> tuple[Any, dict[str, Any]]:
    """The fake (its base URL pointed at where it is served) and the raw source config for it."""
    case = find_case(tool)
    fake = case.fake(records)
    fake.base_url = base_url
    fake.faults.latency = latency
    return fake, case.config(fake)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tool")
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--latency-mode", choices=["added", "total"], default="added")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    args = parser.parse_args(argv)
    if not args.port:
        from fakes.common import free_port

        args.port = free_port(args.host)
    url = f"http://{args.host}:{args.port}"
    total = args.latency_mode == "total"
    fake, config = build(args.tool, args.records, url, 0.0 if total else args.latency)
    app = TotalLatency(fake.app, args.latency) if total else fake.app
    print(json.dumps({"tool": args.tool, "url": url, "config": config}, default=str), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="off")


if __name__ == "__main__":
    main()
