"""End-to-end sync benchmark: fake tool server -> connector -> mapping -> store, per tool.

    .venv/bin/python bench/sync.py --tools jira,github,gitlab,linear,redmine --size 20000
    .venv/bin/python bench/sync.py --tool jira --sizes 20000,100000 [--latency 0.05]
                                   [--backend sqlite|postgresql] [--runs 1] [--page-size 100]

For each tool (a `tests/conformance/cases.py` CASES entry) and each size, the fake tool runs
in its OWN PROCESS on a loopback port with `--latency` seconds added to every request
(`python -m fakes.jira` for Jira, `bench/_fake_server.py TOOL` for any other fake), so its
CPU is not charged to the hub. A fresh child process per (tool, size) then measures:

1. the bare connector fetch loop against the fake (no mapping, no storing): the measured
   floor, i.e. what the network + the fake + HTTP/JSON decoding cost by themselves;
2. a full sync (`SyncEngine.run(full=True, sweep=False)`) into a fresh store: wall time,
   issues/s, CPU seconds per 1,000 issues (this process, all threads: getrusage), peak RSS
   (ru_maxrss of the child, so each size's peak is independent), requests and pages;
3. an incremental run right after, with nothing changed: its requests.

The pure page-latency floor is requests x latency (every request of a run is sequential and
waits `--latency`); the hub's overhead is its wall time over that floor, and over the
measured fetch loop. Then, per tool, normalisation alone (no network, one process):
listing responses are recorded once from an in-process fake, and replayed through the
connector (JSON decode), mapped and applied into a fresh SQLite store, page by page, timed
per phase with process CPU time: issues per CPU-second ("per core").

Targets (issue 3): the hub adds <= 25% wall time over the page-latency floor; peak RSS
< 300 MB and about the same for 20k and 100k; an unchanged incremental run makes <= 3
requests; normalisation >= 15,000 issues/s per core.

The machine's load average is printed with every figure: on a shared machine wall-clock
figures are contention-bound (compare CPU s/1k, which is not). `--runs N` repeats each
measurement and keeps the fastest full sync.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # `fakes` and `tests` are not installed packages

from connectors.egress import EgressPolicy, configure_default  # noqa: E402

# The fakes listen on loopback over plain http: allow exactly that (connectors/egress.py).
configure_default(EgressPolicy(allow=("127.0.0.1", "localhost"), allow_http=True))

SOURCE = "bench"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

TARGET_OVERHEAD = 25.0  # % wall time over the page-latency floor
TARGET_RSS_MB = 300.0
TARGET_INCREMENTAL_REQUESTS = 3
TARGET_NORMALISE = 15_000.0  # issues per CPU-second

# Fakes whose own module runs standalone: how to start them (records, latency, port).
NATIVE_RUNNERS = {
    "jira": lambda n, latency, port: [
        "-m",
        "fakes.jira",
        "--issues",
        str(n),
        "--latency",
        str(latency),
        "--port",
        str(port),
    ],
}


# ================================================================ helpers


def loadavg() -> float:
    return os.getloadavg()[0]


def rusage_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def sched(pid: int | str = "self") -> tuple[float, float]:
    """(CPU seconds, run-queue wait seconds) of a process, all its threads (/proc/PID/task/*/schedstat).

    The wait is time spent runnable but not running: on a shared machine, the part of the wall
    clock that is contention, not the code."""
    cpu = wait = 0.0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError):
            fields = stat.read_text().split()
            cpu, wait = cpu + int(fields[0]) / 1e9, wait + int(fields[1]) / 1e9
    return cpu, wait


def bench_config(raw: dict[str, Any], page_size: int | None) -> dict[str, Any]:
    raw = dict(raw)
    if page_size:
        raw["page_size"] = page_size
    return raw


def hub_config(raw: dict[str, Any]) -> Any:
    from hub.config import parse_config

    return parse_config({"sources": {SOURCE: raw}})


@contextlib.contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    """A throw-away database URL: a temp SQLite file, or a fresh PostgreSQL database dropped after."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="opshub-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'hub.db'}"
        return
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"opshub_bench_sync_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ================================================================ the fake, in its own process


def _wait_for_port(host: str, port: int, proc: subprocess.Popen[str], err: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"fake server exited with {proc.returncode}: {err.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"fake server on {host}:{port} did not start within {timeout:.0f}s")
        time.sleep(0.05)


@contextlib.contextmanager
def fake_server(
    tool: str, records: int, latency: float, runner: str = "auto", latency_mode: str = "added"
) -> Iterator[dict[str, Any]]:
    """Start the tool's fake in a subprocess; yields {"url", "config", "pid", "runner"}."""
    from fakes.common import free_port

    host, port = "127.0.0.1", free_port()
    url = f"http://{host}:{port}"
    native = latency_mode == "added" and (runner == "native" or (runner == "auto" and tool in NATIVE_RUNNERS))
    if native:
        cmd = [sys.executable, *NATIVE_RUNNERS[tool](records, latency, port)]
    else:
        cmd = [sys.executable, str(HERE / "_fake_server.py"), tool, "--records", str(records)]
        cmd += ["--latency", str(latency), "--latency-mode", latency_mode, "--port", str(port)]
    with tempfile.NamedTemporaryFile("w+", prefix=f"fake-{tool}-", suffix=".log", delete=False) as errf:
        err = Path(errf.name)
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errf, text=True)
    try:
        if native:
            from bench._fake_server import build

            _, config = build(tool, 1, url, latency)  # credentials and scope as the CASES fake has them
        else:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                proc.wait(timeout=10)
                raise RuntimeError(f"fake server for {tool} exited with {proc.returncode}: {err.read_text()[-2000:]}")
            config = json.loads(line)["config"]
        _wait_for_port(host, port, proc, err)
        yield {"url": url, "config": config, "pid": proc.pid, "runner": "native" if native else "generic"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        err.unlink(missing_ok=True)


# ================================================================ child: one full + incremental sync


async def _bare_fetch(config: Any, fake_pid: int) -> dict[str, Any]:
    """The connector alone: same requests as a sync (mapping context + listing), nothing mapped or stored."""
    connector = config.source(SOURCE).connector()
    (_, wait0), fake0 = sched(), sched(fake_pid)
    start, cpu0 = time.perf_counter(), rusage_cpu()
    records = pages = 0
    async with connector:
        await connector.mapping_context()
        async for page in connector.fetch(None):
            records += len(page.records)
            pages += 1
        requests = int(connector.stats().get("requests", 0))
    (_, wait1), fake1 = sched(), sched(fake_pid)
    return {
        "seconds": time.perf_counter() - start,
        "cpu": rusage_cpu() - cpu0,
        "wait": wait1 - wait0,
        "fake_cpu": fake1[0] - fake0[0],
        "fake_wait": fake1[1] - fake0[1],
        "records": records,
        "pages": pages,
        "requests": requests,
    }


class _Timings:
    """Wall seconds the run spends in each step of a page, taken by wrapping (not editing) the hub's
    objects: mapping (on the event loop), apply and the run heartbeat (each in a worker thread).
    What is left of the run's wall time is waiting for the next page."""

    def __init__(self) -> None:
        self.seconds = {"map": 0.0, "apply": 0.0, "heartbeat": 0.0, "gc": 0.0}
        self._gc_start = 0.0

    def gc_callback(self, phase: str, _info: dict[str, Any]) -> None:
        """CPU time in the cyclic garbage collector (of the thread that triggered it)."""
        if phase == "start":
            self._gc_start = time.thread_time()
        else:
            self.seconds["gc"] += time.thread_time() - self._gc_start

    def wrap(self, name: str, fn: Any) -> Any:
        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds[name] += time.perf_counter() - t0

        return timed


@contextlib.contextmanager
def _instrument(engine: Any, store: Any) -> Iterator[_Timings]:
    import hub.sync

    timings = _Timings()
    original = hub.sync.Normaliser

    class TimedNormaliser(original):  # type: ignore[misc,valid-type]
        def map_many(self, *a: Any, **kw: Any) -> Any:
            return timings.wrap("map", super().map_many)(*a, **kw)

    hub.sync.Normaliser = TimedNormaliser  # type: ignore[misc]
    store.items.apply = timings.wrap("apply", store.items.apply)
    engine.runs.heartbeat = timings.wrap("heartbeat", engine.runs.heartbeat)
    gc.callbacks.append(timings.gc_callback)
    try:
        yield timings
    finally:
        gc.callbacks.remove(timings.gc_callback)
        hub.sync.Normaliser = original  # type: ignore[misc]
        del store.items.apply, engine.runs.heartbeat


async def _measure_sync(args: argparse.Namespace) -> dict[str, Any]:
    from hub.store import Store
    from hub.sync import SyncEngine

    raw = json.loads(args.config_json)
    config = hub_config(raw)
    out: dict[str, Any] = {"load_before": loadavg(), "rss_start_mb": peak_rss_mb()}
    with database(args.backend, args.pg_url) as url:
        store = Store.open(url)
        try:
            engine = SyncEngine(store, config)
            # Bare fetch first: it also warms the fake (caches) so the hub is not charged for that.
            out["bare"] = await _bare_fetch(config, args.fake_pid)
            rss_before = peak_rss_mb()
            with _instrument(engine, store) as timings:
                (_, wait0), fake0 = sched(), sched(args.fake_pid)
                start, cpu0 = time.perf_counter(), rusage_cpu()
                full = await engine.run(SOURCE, full=True, sweep=False)
                wall = time.perf_counter() - start
                (_, wait1), fake1 = sched(), sched(args.fake_pid)
            out["full"] = {
                "steps": timings.seconds,
                "wait": wait1 - wait0,
                "fake_cpu": fake1[0] - fake0[0],
                "fake_wait": fake1[1] - fake0[1],
                **full.counts(),
                "status": full.status,
                "error": full.error,
                "wall": wall,
                "cpu": rusage_cpu() - cpu0,
                "peak_rss_mb": peak_rss_mb(),
                "rss_before_mb": rss_before,
            }
            out["load_mid"] = loadavg()
            inc = await engine.run(SOURCE)
            out["incremental"] = {**inc.counts(), "status": inc.status, "error": inc.error, "mode": inc.mode}
        finally:
            store.close()
    out["load_after"] = loadavg()
    return out


# ================================================================ child: normalisation alone


def _key(request: Any) -> tuple[str, str, bytes]:
    return (request.method, str(request.url), request.content)


def _transports() -> tuple[type, type]:
    import httpx

    class Recorder(httpx.AsyncBaseTransport):
        """Pass through to `inner`, keeping every answer's status, headers and raw bytes."""

        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner
            self.answers: dict[tuple[str, str, bytes], tuple[int, list[tuple[bytes, bytes]], bytes]] = {}

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await request.aread()
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
            await response.aclose()
            self.answers[_key(request)] = (response.status_code, list(response.headers.raw), body)
            return httpx.Response(response.status_code, headers=response.headers.raw, content=body)

    class Replay(httpx.AsyncBaseTransport):
        """Answer from recorded bytes: no network, no fake."""

        def __init__(self, answers: dict[tuple[str, str, bytes], tuple[int, list[tuple[bytes, bytes]], bytes]]) -> None:
            self.answers = answers

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await request.aread()
            status, headers, body = self.answers[_key(request)]
            return httpx.Response(status, headers=headers, content=body)

    return Recorder, Replay


async def _measure_normalise(args: argparse.Namespace) -> dict[str, Any]:
    import httpx
    import orjson

    from bench._fake_server import build
    from hub.normalise import Normaliser
    from hub.store import Checkpoint, Store
    from hub.sync import ITEMS_STREAM

    Recorder, Replay = _transports()
    fake, raw = build(args.tool, args.records, "http://fake.bench", 0.0)
    config = hub_config(bench_config(raw, args.page_size))
    source = config.source(SOURCE)

    # Record the raw listing answers once (not timed).
    recorder = Recorder(httpx.ASGITransport(app=fake.app))
    async with source.connector_cls(SOURCE, source.config, transport=recorder) as connector:
        await connector.mapping_context()
        async for _page in connector.fetch(None):
            pass
    del fake
    answers = recorder.answers
    raw_bytes = sum(len(body) for _, _, body in answers.values())

    out: dict[str, Any] = {"load_before": loadavg(), "raw_bytes": raw_bytes, "responses": len(answers)}
    with database("sqlite", "") as url:
        store = Store.open(url)
        try:
            connector = source.connector_cls(SOURCE, source.config, transport=Replay(answers))
            async with connector:
                normaliser = Normaliser(source.tool, await connector.mapping_context(), source.config.mapping)
                pages = connector.fetch(None).__aiter__()
                t_fetch = t_map = t_apply = 0.0
                records = failed = stored = 0
                timings = _Timings()
                gc.callbacks.append(timings.gc_callback)
                wall0 = time.perf_counter()
                while True:
                    c0 = time.process_time()
                    try:
                        page = await pages.__anext__()
                    except StopAsyncIteration:
                        t_fetch += time.process_time() - c0
                        break
                    c1 = time.process_time()
                    items, errors = normaliser.map_many(page.records, connector.native_id)
                    c2 = time.process_time()
                    checkpoint = Checkpoint(SOURCE, ITEMS_STREAM, page.cursor) if page.cursor is not None else None
                    result = store.items.apply(items, checkpoint=checkpoint)
                    c3 = time.process_time()
                    t_fetch, t_map, t_apply = t_fetch + c1 - c0, t_map + c2 - c1, t_apply + c3 - c2
                    records += len(page.records)
                    failed += len(errors)
                    stored += result.upserted
                wall = time.perf_counter() - wall0
                gc.callbacks.remove(timings.gc_callback)
        finally:
            store.close()
    # JSON decode alone, for the breakdown (part of the fetch phase above).
    c0 = time.process_time()
    for _, _, body in answers.values():
        orjson.loads(body)
    t_decode = time.process_time() - c0
    total = t_fetch + t_map + t_apply
    out.update(
        {
            "records": records,
            "stored": stored,
            "failed": failed,
            "cpu": total,
            "wall": wall,
            "per_core": records / total if total else 0.0,
            "us_fetch": 1e6 * t_fetch / max(records, 1),
            "us_decode": 1e6 * t_decode / max(records, 1),
            "us_map": 1e6 * t_map / max(records, 1),
            "us_apply": 1e6 * t_apply / max(records, 1),
            "us_gc": 1e6 * timings.seconds["gc"] / max(records, 1),
            "load_after": loadavg(),
        }
    )
    return out


def _gc_what_if(mode: str) -> None:
    """Not what the hub does: to size a recommended fix. `freeze` moves everything alive after
    start-up (modules, pydantic schemas, SQLAlchemy metadata) out of the collector's sight;
    `tuned` also collects the youngest generation every 50,000 allocations, not every 700."""
    if mode in ("freeze", "tuned"):
        gc.collect()
        gc.freeze()
    if mode == "tuned":
        gc.set_threshold(50_000, 20, 100)


def child_main(args: argparse.Namespace) -> None:
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    work = _measure_sync if args.child == "sync" else _measure_normalise
    _gc_what_if(args.gc)
    result = asyncio.run(work(args))
    if args.profile:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    print("RESULT " + json.dumps(result), flush=True)


# ================================================================ parent: orchestration


def _run_child(argv: list[str], profile: bool) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv, *(["--profile"] if profile else [])]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if profile and proc.stderr:
        print(proc.stderr, file=sys.stderr)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(
        f"benchmark child {argv[:4]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


def measure_sync(tool: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    best: dict[str, Any] | None = None
    for _ in range(args.runs):
        with fake_server(tool, size, args.latency, args.runner, args.latency_mode) as fake:
            raw = bench_config(fake["config"], args.page_size)
            result = _run_child(
                ["--child", "sync", "--tool", tool, "--records", str(size), "--config-json", json.dumps(raw),
                 "--backend", args.backend, "--pg-url", args.pg_url, "--fake-pid", str(fake["pid"]), "--gc", args.gc],
                args.profile,
            )  # fmt: skip
            result["runner"] = fake["runner"]
        if best is None or result["full"]["wall"] < best["full"]["wall"]:
            best = result
    assert best is not None
    return best


def measure_normalise(tool: str, records: int, args: argparse.Namespace) -> dict[str, Any]:
    best: dict[str, Any] | None = None
    for _ in range(args.runs):
        result = _run_child(
            [
                "--child",
                "normalise",
                "--tool",
                tool,
                "--records",
                str(records),
                "--page-size",
                str(args.page_size),
                "--gc",
                args.gc,
            ],
            args.profile,
        )
        if best is None or result["per_core"] > best["per_core"]:
            best = result
    assert best is not None
    return best


def _ok(passed: bool) -> str:
    return "ok" if passed else "MISSED"


def print_table(headers: list[str], rows: list[tuple[str, str, list[str]]]) -> None:
    label_w = max(len(label) for label, _, _ in rows)
    target_w = max(len("target"), *(len(target) for _, target, _ in rows))
    col_w = [max(len(h), *(len(values[i]) for _, _, values in rows)) for i, h in enumerate(headers)]
    line = f"{'metric':<{label_w}} | {'target':<{target_w}} | " + " | ".join(
        h.rjust(w) for h, w in zip(headers, col_w, strict=True)
    )
    print(line)
    print("-" * len(line))
    for label, target, values in rows:
        cells = " | ".join(v.rjust(w) for v, w in zip(values, col_w, strict=True))
        print(f"{label:<{label_w}} | {target:<{target_w}} | {cells}")


def report_normalise(norms: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    tools = list(norms)
    rows: list[tuple[str, str, list[str]]] = []

    def row(label: str, target: str, fn: Any) -> None:
        rows.append((label, target, [fn(norms[t]) for t in tools]))

    row(
        "issues/s per core",
        f">= {TARGET_NORMALISE:,.0f}",
        lambda n: f"{n['per_core']:,.0f} {_ok(n['per_core'] >= TARGET_NORMALISE)}",
    )
    row("records (failed)", "", lambda n: f"{n['records']:,} ({n['failed']})")
    row("raw KB per issue", "", lambda n: f"{n['raw_bytes'] / 1024 / max(n['records'], 1):.1f}")
    row("us/issue: fetch (JSON decode)", "", lambda n: f"{n['us_fetch']:.0f} ({n['us_decode']:.0f})")
    row("us/issue: map", "", lambda n: f"{n['us_map']:.0f}")
    row("us/issue: apply (SQLite)", "", lambda n: f"{n['us_apply']:.0f}")
    row("us/issue: total", f"<= {1e6 / TARGET_NORMALISE:.0f}", lambda n: f"{1e6 / max(n['per_core'], 1e-9):.0f}")
    row("  of which in the GC", "", lambda n: f"{n.get('us_gc', 0):.0f}")
    row("load avg 1m before/after", "(2 cores)", lambda n: f"{n['load_before']:.1f}/{n['load_after']:.1f}")
    print()
    print(
        f"normalisation alone (raw bytes -> stored WorkItem, no network, one thread, SQLite), GC {args.gc}, "
        f"page size {args.page_size}"
    )
    print_table(tools, rows)


def report(
    runs: list[tuple[str, int, dict[str, Any]]], norms: dict[str, dict[str, Any]], args: argparse.Namespace
) -> None:
    latency = args.latency
    headers = [f"{tool} {size // 1000}k" if size % 1000 == 0 else f"{tool} {size:,}" for tool, size, _ in runs]
    rows: list[tuple[str, str, list[str]]] = []

    def row(label: str, target: str, values: list[str]) -> None:
        rows.append((label, target, values))

    rss_by_tool: dict[str, list[float]] = {}
    for tool, _, r in runs:
        rss_by_tool.setdefault(tool, []).append(r["full"]["peak_rss_mb"])

    def each(fn: Any) -> list[str]:
        return [fn(tool, size, r) for tool, size, r in runs]

    row("records synced (changed)", "", each(lambda t, s, r: f"{r['full']['changed']:,}"))
    row("load avg 1m before/after", "(2 cores)", each(lambda t, s, r: f"{r['load_before']:.1f}/{r['load_after']:.1f}"))
    row("full sync wall s", "", each(lambda t, s, r: f"{r['full']['wall']:.2f}"))
    row("issues/s", "", each(lambda t, s, r: f"{r['full']['changed'] / r['full']['wall']:,.0f}"))
    row(
        "CPU s per 1,000 issues",
        "",
        each(lambda t, s, r: f"{1000 * r['full']['cpu'] / max(r['full']['fetched'], 1):.3f}"),
    )
    row("CPU use of wall (cores)", "", each(lambda t, s, r: f"{r['full']['cpu'] / r['full']['wall']:.2f}"))
    row(
        "peak RSS MB",
        f"< {TARGET_RSS_MB:.0f}, same 20k/100k",
        each(lambda t, s, r: f"{r['full']['peak_rss_mb']:.0f} {_ok(r['full']['peak_rss_mb'] < TARGET_RSS_MB)}"),
    )
    row("requests (pages)", "", each(lambda t, s, r: f"{r['full']['requests']} ({r['full']['pages']})"))
    row(
        "retries / failed records",
        "0 / 0",
        each(lambda t, s, r: f"{r['full']['retries']} / {r['full']['failed_records']}"),
    )

    def floor(r: dict[str, Any]) -> float:
        return r["full"]["requests"] * latency

    row("latency floor s (requests x lat.)", "", each(lambda t, s, r: f"{floor(r):.2f}"))
    row(
        "hub overhead over floor",
        f"<= {TARGET_OVERHEAD:.0f}%",
        each(
            lambda t, s, r: (
                (
                    f"{100 * (r['full']['wall'] / floor(r) - 1):+.1f}% "
                    f"{_ok(100 * (r['full']['wall'] / floor(r) - 1) <= TARGET_OVERHEAD)}"
                )
                if floor(r)
                else "n/a"
            )
        ),
    )
    row(
        "  per page ms: map/apply/heartbeat [gc]",
        "",
        each(
            lambda t, s, r: (
                "/".join(
                    f"{1000 * r['full']['steps'][k] / max(r['full']['pages'], 1):.0f}"
                    for k in ("map", "apply", "heartbeat")
                )
                + f" [{1000 * r['full']['steps'].get('gc', 0) / max(r['full']['pages'], 1):.0f}]"
                if "steps" in r["full"]
                else "-"
            )
        ),
    )
    row(
        "  per page ms: wall / latency",
        "",
        each(lambda t, s, r: f"{1000 * r['full']['wall'] / max(r['full']['pages'], 1):.0f} / {1000 * latency:.0f}"),
    )
    row(
        "  run-queue wait s: hub / fake",
        "(contention)",
        each(lambda t, s, r: f"{r['full']['wait']:.1f} / {r['full']['fake_wait']:.1f}" if "wait" in r["full"] else "-"),
    )
    row(
        "  fake server CPU ms per page",
        "",
        each(
            lambda t, s, r: (
                f"{1000 * r['full']['fake_cpu'] / max(r['full']['requests'], 1):.1f}"
                if "fake_cpu" in r["full"]
                else "-"
            )
        ),
    )
    row(
        "  hub CPU ms per page", "", each(lambda t, s, r: f"{1000 * r['full']['cpu'] / max(r['full']['pages'], 1):.1f}")
    )

    def projected(r: dict[str, Any]) -> float | None:
        """Wall per page on an idle machine (a model, not a measurement): the prefetch overlaps
        fetching page k+1 with storing page k, so a page costs the longer of the two; fetching
        costs the latency + the fake's build (when added) + the client's own CPU (bare loop)."""
        if "fake_cpu" not in r["full"] or not latency:
            return None
        requests, pages = max(r["full"]["requests"], 1), max(r["full"]["pages"], 1)
        fake = r["full"]["fake_cpu"] / requests if args.latency_mode == "added" else 0.0
        fetch = latency + fake + r["bare"]["cpu"] / max(r["bare"]["requests"], 1)
        wall = pages * max(fetch, r["full"]["cpu"] / pages) + (requests - pages) * fetch
        return 100 * (wall / (requests * latency) - 1)

    row(
        "  idle-machine projection over floor",
        "(model)",
        each(lambda t, s, r: f"{projected(r):+.0f}%" if projected(r) is not None else "-"),
    )
    row("bare fetch loop s (measured floor)", "", each(lambda t, s, r: f"{r['bare']['seconds']:.2f}"))
    row(
        "bare fetch over latency floor",
        "",
        each(lambda t, s, r: f"{100 * (r['bare']['seconds'] / floor(r) - 1):+.1f}%" if floor(r) else "n/a"),
    )
    row(
        "hub overhead over bare fetch",
        "",
        each(lambda t, s, r: f"{100 * (r['full']['wall'] / r['bare']['seconds'] - 1):+.1f}%"),
    )
    row(
        "bare fetch CPU s per 1,000",
        "",
        each(lambda t, s, r: f"{1000 * r['bare']['cpu'] / max(r['bare']['records'], 1):.3f}"),
    )
    row(
        "incremental, unchanged: requests",
        f"<= {TARGET_INCREMENTAL_REQUESTS}",
        each(
            lambda t, s, r: (
                f"{r['incremental']['requests']} (fetched {r['incremental']['fetched']}, changed "
                f"{r['incremental']['changed']}) {_ok(r['incremental']['requests'] <= TARGET_INCREMENTAL_REQUESTS)}"
            )
        ),
    )
    print()
    print(
        f"sync benchmark: latency {latency * 1000:.0f} ms/request ({args.latency_mode}), GC {args.gc}, "
        f"page size {args.page_size}, backend {args.backend}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}"
    )
    print_table(headers, rows)
    for tool, peaks in rss_by_tool.items():
        if len(peaks) > 1:
            print(
                f"{tool}: peak RSS spread across sizes {min(peaks):.0f}-{max(peaks):.0f} MB ({max(peaks) / min(peaks):.2f}x)"
            )
    for tool, _, r in runs:
        if r["full"]["status"] != "succeeded" or r["incremental"]["status"] != "succeeded":
            print(
                f"{tool}: run status full={r['full']['status']} ({r['full']['error']}), incremental={r['incremental']['status']}"
            )
        if r["full"]["changed"] != r["full"]["fetched"]:
            print(f"{tool}: fetched {r['full']['fetched']} but stored {r['full']['changed']}")


def available_tools() -> list[str]:
    from tests.conformance.cases import CASES

    return [case.id for case in CASES]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tools", "--tool", default="jira", help="comma-separated CASES ids, or 'all'")
    parser.add_argument("--sizes", "--size", default="20000", help="records per tool, comma-separated")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds the fake adds to every request")
    parser.add_argument(
        "--latency-mode",
        choices=["added", "total"],
        default="added",
        help="added: the fake sleeps --latency, then builds the page (its build time comes on top); "
        "total: every answer takes --latency in all (bench/_fake_server.py for every tool)",
    )
    parser.add_argument("--page-size", type=int, default=100, help="the connectors' page_size (0: the case's own)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default=PG_URL, help="admin URL; a throw-away database is created beside it")
    parser.add_argument("--runs", type=int, default=1, help="repeat each measurement, keep the fastest")
    parser.add_argument("--norm-records", type=int, default=20_000, help="records for the normalisation measurement")
    parser.add_argument("--no-normalise", action="store_true")
    parser.add_argument("--no-sync", action="store_true", help="normalisation alone")
    parser.add_argument("--runner", choices=["auto", "native", "generic"], default="auto",
                        help="auto: `python -m fakes.TOOL` where it runs standalone, else bench/_fake_server.py")  # fmt: skip
    parser.add_argument(
        "--gc",
        choices=["default", "freeze", "tuned"],
        default="default",
        help="what-if (not the hub's behaviour): gc.freeze() after start-up, or freeze + gen0 threshold 50,000",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile each child (printed to stderr)")
    parser.add_argument("--child", choices=["sync", "normalise"], help=argparse.SUPPRESS)
    parser.add_argument("--records", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--config-json", help=argparse.SUPPRESS)
    parser.add_argument("--fake-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.tool = args.tools  # a child measures one tool
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return
    tools = available_tools() if args.tools == "all" else [t.strip() for t in args.tools.split(",") if t.strip()]
    missing = sorted(set(tools) - set(available_tools()))
    if missing:
        print(f"skipping {', '.join(missing)}: no conformance case (fake) yet; have {', '.join(available_tools())}")
        tools = [t for t in tools if t not in missing]
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    runs: list[tuple[str, int, dict[str, Any]]] = []
    norms: dict[str, dict[str, Any]] = {}
    for tool in tools:
        for size in [] if args.no_sync else sizes:
            print(
                f"[{time.strftime('%H:%M:%S')}] {tool} {size:,}: full + incremental sync (load {loadavg():.1f}) ...",
                flush=True,
            )
            try:
                runs.append((tool, size, measure_sync(tool, size, args)))
            except Exception as exc:
                print(f"  {tool} {size:,} FAILED: {exc}", flush=True)
        if not args.no_normalise and (args.no_sync or any(t == tool for t, _, _ in runs)):
            print(f"[{time.strftime('%H:%M:%S')}] {tool}: normalisation alone (load {loadavg():.1f}) ...", flush=True)
            try:
                norms[tool] = measure_normalise(tool, args.norm_records, args)
            except Exception as exc:
                print(f"  {tool} normalisation FAILED: {exc}", flush=True)
    if runs:
        report(runs, norms, args)
    if norms:
        report_normalise(norms, args)


if __name__ == "__main__":
    main()
