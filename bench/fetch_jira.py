"""The sync's fetch side alone (issue 13): CPU per page of a full Jira fetch over TLS, no store.

    .venv/bin/python bench/fetch_jira.py [--issues 20000] [--runs 3] [--profile OUT.prof]
    PYTHONHASHSEED=0 valgrind --tool=callgrind .venv/bin/python bench/fetch_jira.py --issues 2000 --port P ...

The fake Jira (`python -m fakes.jira`, its own process, HTTPS on a loopback port with a
throw-away certificate, no added latency) serves `--issues` issues of ~3.8 KB; this process
runs `JiraConnector.fetch(None)` (a full run: the id listing, then bulk fetches four at a time)
through the real `SourceClient`, the egress guard and httpx/httpcore/anyio TLS, as
`opshub sync` does, and counts the records. Nothing is mapped or stored. Printed: this
process's CPU (user + system, `time.process_time`) for the fetch alone (imports and set-up
excluded), per page and per issue, with `uptime`'s load.

`--port` serves from a fake already running (`--serve-only` starts one and waits), so a
callgrind run of the client does not count the fake: per-page cost is then
(I(N2) - I(N1)) / (pages(N2) - pages(N1)), start-up cancelling.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # the hub itself comes from PYTHONPATH (A/B: the base tree's)

from sync_jira import fake_jira, make_certificate  # noqa: E402

CONFIG = {
    "tool": "jira",
    "email": "bot@example.com",
    "api_token": "jira-token",
    "projects": ["PROJ", "OPS"],
    "page_size": 100,
    "fields": ["comment", "worklog"],
}


async def fetch_all(port: int) -> tuple[int, int, float, dict[str, int]]:
    """(issues, pages, CPU s of the fetch, HTTP stats) of one full fetch."""
    from connectors.egress import EgressPolicy, configure_default
    from connectors.registry import connector_class

    configure_default(EgressPolicy(allow=("127.0.0.1",)))
    # The collector as a sync runs it (hub/sync.py: start-up objects frozen, generation 0 at
    # SYNC_GC_THRESHOLD): at the default threshold it would run ~15 times a page.
    from hub.sync import SYNC_GC_THRESHOLD, freeze_startup_objects

    freeze_startup_objects()
    gc.set_threshold(SYNC_GC_THRESHOLD, *gc.get_threshold()[1:])
    cls = connector_class("jira")
    config = cls.config_model.model_validate({**CONFIG, "base_url": f"https://127.0.0.1:{port}"})
    issues = pages = 0
    async with cls("bench", config) as connector:
        started = time.process_time()
        async for page in connector.fetch(None):
            issues += len(page.records)
            pages += 1
        cpu = time.process_time() - started
        stats: dict[str, int] = {}
        for client in connector._clients:
            for key, value in client.stats().items():
                stats[key] = stats.get(key, 0) + value
    return issues, pages, cpu, stats


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--port", type=int, help="a fake Jira already serving on this port (its cert in SSL_CERT_FILE)")
    parser.add_argument(
        "--serve-only", metavar="DIR", help="start the fake (cert in DIR/cert.pem), print its port, wait"
    )
    parser.add_argument("--profile", metavar="OUT.prof", help="cProfile the fetch (figures not comparable)")
    args = parser.parse_args(argv)
    if args.serve_only:
        work = Path(args.serve_only)
        cert, key = make_certificate(work)
        # SIGTERM ends the wait as Ctrl-C does, so that the fake's process is stopped too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with fake_jira(args.issues, 0.0, cert, key) as port:
            print(port, flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return
    if args.port:
        run(args, args.port)
        return
    with tempfile.TemporaryDirectory(prefix="opshub-bench-fetch-") as tmp:
        cert, key = make_certificate(Path(tmp))
        os.environ["SSL_CERT_FILE"] = str(cert)
        with fake_jira(args.issues, 0.0, cert, key) as port:
            run(args, port)


def run(args: argparse.Namespace, port: int) -> None:
    for _ in range(max(1, args.runs)):
        before = load()
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
        issues, pages, cpu, stats = asyncio.run(fetch_all(port))
        if args.profile:
            profiler.disable()
            profiler.dump_stats(args.profile)
        if issues != args.issues:
            raise SystemExit(f"fetched {issues} issues, expected {args.issues}")
        print(
            f"{issues} issues, {pages} pages, {stats.get('requests', 0)} requests: fetch CPU {cpu:.3f} s = "
            f"{1000 * cpu / pages:.2f} ms/page, {1e6 * cpu / issues:.1f} us/issue  ({time.strftime('%H:%M:%S', time.gmtime())} UTC; {before})",
            flush=True,
        )


if __name__ == "__main__":
    main()
