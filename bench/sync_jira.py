"""Full Jira sync, whole process, over TLS (issue 13): what `opshub sync` costs as a user runs it.

    .venv/bin/python bench/sync_jira.py [--sizes 20000,100000] [--latency 0.05] [--runs 1]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--profile] [--split] [--no-sweep]

For each size: the fake Jira (`python -m fakes.jira`) serves N issues of about 3.8 KB each
(comments, worklogs: the source asks for `fields = ["comment", "worklog"]` on top of what
the mapping reads) over HTTPS on a loopback port, in its own process, with
`--latency-mode total` (every answer takes `--latency` in all, the fake's build time
included, as a real site's page latency does). A throw-away certificate is made with the
`openssl` CLI and trusted through `SSL_CERT_FILE` (httpx reads it:
https://www.python-httpx.org/environment_variables/#ssl_cert_file). A fresh database is
migrated with `opshub migrate`, then `opshub sync bench --full` (the deletion sweep
included, as a full run does it) is timed as one child process. Its CPU seconds (user +
system) and peak RSS come from `os.wait4` (the kernel's rusage of that process: start-up,
imports, TLS, JSON, mapping, store), its wall time from the parent. The page-latency floor
is the run's requests (from the command's own summary) x latency, as if all were sequential
(the target's floor). A full run now lists the ids once (5,000 a request), bulk-fetches the
pages four at a time and sweeps with that same listing, so only some of those requests wait
on one another: that chain's latency is printed too (`latency chain`), a floor no overlap can
go under, while `floor` keeps the target's definition.

Targets (issue 13): CPU <= 0.15 ms per issue incl. start-up; wall <= 1.25 x floor; peak RSS
<= 200 MiB and flat from 20k to 100k (ratio <= 1.1). `--profile` runs the sync once more under
cProfile in every thread (bench/_profile_all_threads.py; stdlib, pyinstrument is not in
the lock; imports included) and prints the
top functions by own and cumulative time; the profiled run's figures are not the measured ones.
`--split` runs the measured syncs through bench/_cpu_split.py, which starts the CLI as
`opshub` does and adds thread-CPU timers around the engine's steps (a few calls per page), and
prints where the CPU went: start-up, event loop (HTTP, TLS, JSON), map, store, transaction.
`uptime`'s load average is printed with every figure: other processes share the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPSHUB = Path(sys.executable).parent / "opshub"
PG_ADMIN_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

TARGET_CPU_MS_PER_ISSUE = 0.15
TARGET_WALL_OVER_FLOOR = 1.25
TARGET_RSS_MIB = 200.0
TARGET_RSS_RATIO = 1.1


@dataclass
class Result:
    size: int
    cpu_s: float
    wall_s: float
    rss_mib: float
    requests: int
    fetched: int
    latency: float
    load: float
    sweep: bool = True
    page_size: int = 100

    @property
    def floor_s(self) -> float:
        return self.requests * self.latency

    @property
    def chain_floor_s(self) -> float:
        """The page latency no overlap can hide: requests that wait on one another. A full run
        lists ids (5,000 a request, one after the other), then bulk-fetches pages of them
        `max_concurrency` (4) at once (connectors/jira/connector.py `_fetch_listed`); the field
        catalog comes first. `floor_s` (every request one after the other) is the issue's floor
        and stays the figure the target is read against."""
        pages = math.ceil(self.size / self.page_size)
        return (1 + math.ceil(self.size / 5000) + math.ceil(pages / 4)) * self.latency

    @property
    def cpu_ms_per_issue(self) -> float:
        return self.cpu_s * 1000 / self.size


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (subjectAltName: Python checks the IP there)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
            *("-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.contextmanager
def fake_jira(size: int, latency: float, cert: Path, key: Path) -> Iterator[int]:
    port = free_port()
    cmd = [sys.executable, "-m", "fakes.jira", "--issues", str(size), "--latency", str(latency)]
    cmd += ["--latency-mode", "total", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the fake Jira did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def fresh_database(url: str | None, directory: Path, prefix: str = "opshub_bench_jira") -> Iterator[str]:
    """A SQLite file in `directory`, or a new database `PREFIX_<random>` beside the PostgreSQL URL,
    dropped after."""
    if url is None or url.startswith("sqlite"):
        yield f"sqlite:///{directory / 'bench.db'}"
        return
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def compile_bytecode() -> None:
    """Byte-compile the hub's own packages, as installing it does (`pip install .` compiles a
    wheel's modules: https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-no-compile).

    The editable install of a checkout has no `.pyc` files of its own, and with
    `PYTHONDONTWRITEBYTECODE=1` (set in this machine's environment and in the Dockerfile) the
    first run never writes them: every `opshub sync` then compiled ~100 modules from source,
    about 0.4 CPU-s of start-up that an installed hub does not pay.
    """
    import compileall

    for package in ("hub", "connectors", "mappings"):
        compileall.compile_dir(str(ROOT / package), quiet=1)


def write_config(directory: Path, port: int, page_size: int) -> Path:
    path = directory / "opshub.toml"
    path.write_text(
        "\n".join(
            [
                "[sources.bench]",
                'tool = "jira"',
                f'base_url = "https://127.0.0.1:{port}"',
                'email = "bot@example.com"',
                'api_token = "jira-token"',
                'projects = ["PROJ", "OPS"]',
                f"page_size = {page_size}",
                'fields = ["comment", "worklog"]',
                "",
            ]
        )
    )
    return path


def run_measured(cmd: list[str], env: dict[str, str], work: Path) -> tuple[float, float, float, str]:
    """(CPU s, wall s, peak RSS MiB, stdout) of one child process, from the kernel's rusage."""
    out_path, err_path = work / "sync.out", work / "sync.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # reaps the child with its own rusage
        wall = time.perf_counter() - started
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text()
    if code:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{stdout}\n{err_path.read_text()[-3000:]}")
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, stdout


def summary_number(stdout: str, label: str) -> int:
    found = re.search(rf"^\W*{label}\W+(\d+)", stdout, re.MULTILINE)
    if not found:
        raise SystemExit(f"no '{label}' in the sync summary:\n{stdout}")
    return int(found.group(1))


def measure(size: int, args: argparse.Namespace, work: Path, cert: Path, key: Path, profile: bool) -> Result:
    with (
        fake_jira(size, args.latency, cert, key) as port,
        fresh_database(args.database_url, work, args.pg_prefix) as db_url,
    ):
        config = write_config(work, port, args.page_size)
        env = {
            **os.environ,
            "HUB_DATABASE_URL": db_url,
            "HUB_CONFIG": str(config),
            "HUB_EGRESS_ALLOW": '["127.0.0.1"]',
            "SSL_CERT_FILE": str(cert),
            "COLUMNS": "200",
        }
        subprocess.run([str(OPSHUB), "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)
        cmd = [str(OPSHUB), "sync", "bench", "--full", *([] if args.sweep else ["--no-sweep"])]
        split = work / f"split-{size}.json"
        if profile:
            prof = work / f"sync-{size}.prof"
            cmd = [sys.executable, str(ROOT / "bench" / "_profile_all_threads.py"), str(prof), *cmd[1:]]
        elif args.plans:
            cmd = [sys.executable, str(ROOT / "bench" / "_sync_plans.py"), args.plans, *cmd[1:]]
        elif args.split:
            cmd = [sys.executable, str(ROOT / "bench" / "_cpu_split.py"), str(split), *cmd[1:]]
        load = os.getloadavg()[0]
        cpu, wall, rss, stdout = run_measured(cmd, env, work)
        if profile:
            print_profile(prof, args.profile_top)
        elif args.split:
            print_split(split, size)
        if args.database_url is None or args.database_url.startswith("sqlite"):
            (work / "bench.db").unlink(missing_ok=True)
            for suffix in ("-wal", "-shm"):
                (work / f"bench.db{suffix}").unlink(missing_ok=True)
        fetched = summary_number(stdout, "fetched")
        if fetched != size:
            raise SystemExit(f"fetched {fetched} issues, expected {size}:\n{stdout}")
        requests = summary_number(stdout, "requests")
        return Result(size, cpu, wall, rss, requests, fetched, args.latency, load, args.sweep, args.page_size)


def print_split(path: Path, size: int) -> None:
    """The thread-CPU split of bench/_cpu_split.py, in CPU-s, share and microseconds per issue."""
    data = json.loads(path.read_text())
    total, parts = data["total"], data["seconds"]
    order = ["start-up", "event loop", "http threads", "map", "history", "store", "transaction", "other"]
    cells = [f"{k} {parts.get(k, 0.0):.2f} s ({100 * parts.get(k, 0.0) / total:.0f} %)" for k in order]
    print(f"  CPU split of {total:.2f} s: " + ", ".join(cells), flush=True)
    print(
        "  per issue (us): "
        + ", ".join(f"{k} {1e6 * parts.get(k, 0.0) / size:.0f}" for k in order if k != "start-up")
        + f"; of all that, gc {parts.get('gc', 0.0):.2f} s in {data['gc_runs']} collections",
        flush=True,
    )
    if "waited" in data:
        print(f"  the store waited {data['waited']:.2f} s (wall) for fetched pages between pages", flush=True)
    timeline = data.get("timeline") or {}
    if "server cpu" in timeline and timeline["server cpu"]["n"]:
        print(f"  server backends' CPU: {timeline['server cpu']['wall']:.2f} s", flush=True)
        rows = sorted(((k, v) for k, v in timeline.items() if k != "server cpu"), key=lambda kv: -kv[1]["wall"])
        for key, v in rows[:24]:
            wait = v["wall"] - v["cpu"]
            print(
                f"    {v['wall']:7.2f} s wall {v['cpu']:6.2f} s cpu {wait:6.2f} s wait {int(v['n']):6d}x  {key}",
                flush=True,
            )


def print_profile(path: Path, top: int) -> None:
    import pstats

    for key in ("tottime", "cumulative"):
        print(f"--- profile: top {top} by {key} ({path})")
        pstats.Stats(str(path)).sort_stats(key).print_stats(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,100000", help="issues per run, comma-separated")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request (total)")
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1, help="runs per size; the median is reported")
    parser.add_argument("--database-url", help=f"PostgreSQL admin URL, e.g. {PG_ADMIN_DEFAULT} [default: SQLite]")
    parser.add_argument("--pg-prefix", default="opshub_bench_jira", help="name prefix of the throw-away database")
    parser.add_argument("--profile", action="store_true", help="one extra cProfile'd run per size, printed")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument(
        "--split",
        action="store_true",
        help="run the measured syncs through bench/_cpu_split.py: thread-CPU split (start-up, HTTP, map, store ...)",
    )
    parser.add_argument(
        "--plans",
        metavar="OUT.json",
        help="PostgreSQL: run the sync through bench/_sync_plans.py, which EXPLAINs every statement before it "
        "runs and writes each statement's plans with the commits they were seen between (figures not comparable)",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--no-sweep", dest="sweep", action="store_false", help="leave out the deletion sweep (`--no-sweep`)"
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    backend = "sqlite" if not args.database_url or args.database_url.startswith("sqlite") else "postgresql"
    print(f"# bench/sync_jira.py {' '.join(argv if argv is not None else sys.argv[1:])}  ({backend})")
    print(f"# uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    results: dict[int, Result] = {}
    with tempfile.TemporaryDirectory(prefix="opshub-bench-jira-") as tmp:
        work = Path(tmp)
        cert, key = make_certificate(work)
        compile_bytecode()
        for size in sizes:
            runs = [measure(size, args, work, cert, key, profile=False) for _ in range(max(1, args.runs))]
            runs.sort(key=lambda r: r.wall_s)
            result = runs[len(runs) // 2]
            result.cpu_s = statistics.median(r.cpu_s for r in runs)
            result.rss_mib = statistics.median(r.rss_mib for r in runs)
            results[size] = result
            report(result, len(runs))
            if args.profile:
                measure(size, args, work, cert, key, profile=True)
    verdicts(results)
    if args.json:
        Path(args.json).write_text(json.dumps({str(k): vars(v) for k, v in results.items()}, indent=2))


def report(r: Result, runs: int) -> None:
    over = r.wall_s / r.floor_s if r.floor_s else float("nan")
    print(
        f"{r.size:>7} issues: CPU {r.cpu_s:6.2f} s = {r.cpu_ms_per_issue:.3f} ms/issue "
        f"(target <= {TARGET_CPU_MS_PER_ISSUE})  wall {r.wall_s:6.2f} s  floor {r.floor_s:6.2f} s "
        f"({r.requests} requests x {r.latency * 1000:.0f} ms)  wall/floor {over:.2f} (target <= {TARGET_WALL_OVER_FLOOR}; "
        f"latency chain {r.chain_floor_s:.2f} s)  "
        f"peak RSS {r.rss_mib:.0f} MiB (target <= {TARGET_RSS_MIB:.0f})  load {r.load:.2f}  runs {runs}",
        flush=True,
    )


def verdicts(results: dict[int, Result]) -> None:
    print("# verdicts")
    for size, r in results.items():
        cpu_ok = r.cpu_ms_per_issue <= TARGET_CPU_MS_PER_ISSUE
        wall_ok = r.floor_s > 0 and r.wall_s / r.floor_s <= TARGET_WALL_OVER_FLOOR
        rss_ok = r.rss_mib <= TARGET_RSS_MIB
        print(
            f"{size:>7}: CPU {'met' if cpu_ok else 'NOT met'}, wall {'met' if wall_ok else 'NOT met'}, "
            f"RSS {'met' if rss_ok else 'NOT met'}"
        )
    if len(results) >= 2:
        small, large = results[min(results)], results[max(results)]
        ratio = large.rss_mib / small.rss_mib
        verdict = "met" if ratio <= TARGET_RSS_RATIO else "NOT met"
        print(f"RSS {max(results)}/{min(results)} ratio {ratio:.2f} (target <= {TARGET_RSS_RATIO}): {verdict}")


if __name__ == "__main__":
    main()
