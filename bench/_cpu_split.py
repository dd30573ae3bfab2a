"""Run `opshub ARGS...` and print where its CPU went, by thread CPU time (not sampled).

    python bench/_cpu_split.py OUT.json sync bench --full

cProfile (`--profile`) inflates Python-heavy code and, with the default timer, counts wall
time, so on a shared machine its seconds are mostly waiting. This child instead times the
sync engine's steps with `time.thread_time()` (CPU of the calling thread only:
https://docs.python.org/3/library/time.html#time.thread_time), by wrapping the engine's
methods (not editing them), and the garbage collector with `gc.callbacks`:

- start-up: process CPU before the run starts (imports, config, store, migrations check);
- map: `Normaliser.map_many` (worker thread); history: `Normaliser.carried_transitions`;
- store: `ItemStore.apply` (the store's own work: hub/store/apply.py and the facts);
- transaction: the rest of `SyncEngine._store_batch` (run heartbeat, commit);
- event loop: CPU of the thread running `asyncio.run` (HTTP, TLS, JSON decoding, paging, the
  sweep's id listing);
- http threads: `ThreadedGuardedTransport._send` in the connectors' worker threads (sending a
  request, TLS, reading the body), where that transport exists;
- gc: collections in any thread (already counted in the figures above, shown apart);
- other: the process's CPU less all of the above (other worker threads: opening the run, the
  sweep's store query; interpreter exit).

Beside the CPU, one wall figure: `waiting for pages`, the wall time between the end of storing
one page and the start of storing the next (`SyncEngine._store_page`), i.e. how long the store
sat idle for want of a fetched page. Near zero, the fetching keeps ahead and the run's wall
time is the pages' own CPU (and the machine's load); large, the run waits on page latency.

And a timeline of the store's wall on PostgreSQL (`timeline`): the wall of `_store_page` and
of `_store_batch`, and inside them the wall and thread CPU of every psycopg `execute` and
`commit` (by statement kind). A call's wall less its CPU is the wait on the server (its
statement, the commit's WAL flush) or for the GIL; the server's own CPU is read from the
backends' `/proc/<pid>/schedstat` at each commit (the server runs on this machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from _opshub_cli import run_cli  # a sibling module: these run as scripts

STARTED = time.process_time()
seconds: dict[str, float] = {}


def timed(owner: Any, name: str, key: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        begin = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            seconds[key] = seconds.get(key, 0.0) + time.thread_time() - begin

    setattr(owner, name, wrapper)


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    sys.argv = ["opshub", *args]
    sys.modules.setdefault("trio", None)  # type: ignore[arg-type] # as hub/__main__.py does
    from hub.cli import app  # the imports are part of the start-up
    from hub.normalise import Normaliser
    from hub.store.items import ItemStore
    from hub.sync import SyncEngine

    timed(Normaliser, "map_many", "map")
    timed(Normaliser, "carried_transitions", "history")
    timed(ItemStore, "apply", "store")
    timed(SyncEngine, "_store_batch", "store_batch")
    # Requests run in worker threads since branch i13fetch12 (ThreadedGuardedTransport): their
    # CPU (TLS, HTTP) is the fetch side's too, apart from the event loop's thread.
    with contextlib.suppress(ImportError):
        from connectors.egress import ThreadedGuardedTransport

        timed(ThreadedGuardedTransport, "_send", "http threads")
    store_page = SyncEngine._store_page
    pages = {"last_end": 0.0, "waited": 0.0}

    def waiting_store_page(*args: Any, **kwargs: Any) -> Any:
        begin = time.perf_counter()
        if pages["last_end"]:
            pages["waited"] += begin - pages["last_end"]
        try:
            return store_page(*args, **kwargs)
        finally:
            pages["last_end"] = time.perf_counter()

    SyncEngine._store_page = waiting_store_page  # type: ignore[method-assign]
    collector = {"begin": 0.0, "runs": 0}

    def on_gc(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            collector["begin"] = time.thread_time()
        else:
            seconds["gc"] = seconds.get("gc", 0.0) + time.thread_time() - collector["begin"]
            collector["runs"] += 1

    gc.callbacks.append(on_gc)
    timeline = _trace_psycopg()
    for name, key in (("_store_page", "page wall"), ("_store_batch", "batch wall")):
        _walled(SyncEngine, name, key, timeline)
    run = asyncio.run

    def timed_run(coro: Any, **kwargs: Any) -> Any:
        seconds["start-up"] = time.process_time() - STARTED
        begin = time.thread_time()
        try:
            return run(coro, **kwargs)
        finally:
            seconds["event loop"] = time.thread_time() - begin

    asyncio.run = timed_run  # type: ignore[assignment] # hub.cli_sync calls asyncio.run
    try:
        run_cli(app)
    finally:
        total = time.process_time() - STARTED
        seconds["transaction"] = seconds.pop("store_batch", 0.0) - seconds.get("store", 0.0)
        counted = ("start-up", "map", "history", "store", "transaction", "event loop", "http threads")
        seconds["other"] = total - sum(seconds.get(k, 0.0) for k in counted)
        with open(out, "w") as f:
            timeline["server cpu"] = {"n": len(_backends), "wall": sum(_backends.values()), "cpu": 0.0}
            data = {"total": total, "seconds": seconds, "gc_runs": collector["runs"], "waited": pages["waited"]}
            json.dump({**data, "timeline": timeline}, f)


_backends: dict[int, float] = {}


def _walled(owner: Any, name: str, key: str, timeline: dict[str, dict[str, float]]) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            entry = timeline.setdefault(key, {"n": 0, "wall": 0.0, "cpu": 0.0})
            entry["n"] += 1
            entry["wall"] += time.perf_counter() - wall
            entry["cpu"] += time.thread_time() - cpu

    setattr(owner, name, wrapper)


def _statement_kind(query: Any) -> str:
    text = query if isinstance(query, str) else getattr(query, "as_string", lambda _c: str(query))(None)
    words = " ".join(str(text).split())
    for marker in (" FROM ", " SET ", " (", " WHERE "):
        cut = words.find(marker, 12)
        if cut > 0:
            words = words[: cut + len(marker) + 20]
            break
    return words[:70]


def _trace_psycopg() -> dict[str, dict[str, float]]:
    """Wall and thread CPU of each psycopg execute and commit, by statement kind (module doc)."""
    try:
        import psycopg
    except ImportError:
        return {}
    timeline: dict[str, dict[str, float]] = {}

    def add(key: str, wall: float, cpu: float) -> None:
        entry = timeline.setdefault(key, {"n": 0, "wall": 0.0, "cpu": 0.0})
        entry["n"] += 1
        entry["wall"] += wall
        entry["cpu"] += cpu

    execute = psycopg.Cursor.execute

    def traced_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return execute(self, query, *args, **kwargs)
        finally:
            add("sql " + _statement_kind(query), time.perf_counter() - wall, time.thread_time() - cpu)

    commit = psycopg.Connection.commit

    def traced_commit(self: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return commit(self)
        finally:
            add("commit", time.perf_counter() - wall, time.thread_time() - cpu)
            pid = self.pgconn.backend_pid
            try:
                with open(f"/proc/{pid}/schedstat") as f:
                    _backends[pid] = int(f.read().split()[0]) / 1e9
            except (OSError, ValueError):
                pass

    # In a psycopg pipeline (hub/store/apply.py `pipelined`) `execute` only sends: the wait
    # for the server moves to the first `fetchall` after it and to the pipeline's end.
    fetchall = psycopg.Cursor.fetchall

    def traced_fetchall(self: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return fetchall(self)
        finally:
            add(
                "fetch (pipeline: waits for the statements sent before)",
                time.perf_counter() - wall,
                time.thread_time() - cpu,
            )

    pipeline_exit = psycopg.Pipeline.__exit__

    def traced_exit(self: Any, *args: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return pipeline_exit(self, *args)
        finally:
            add(
                "pipeline end (waits for the statements sent before)",
                time.perf_counter() - wall,
                time.thread_time() - cpu,
            )

    psycopg.Cursor.execute = traced_execute  # type: ignore[method-assign]
    psycopg.Cursor.fetchall = traced_fetchall  # type: ignore[method-assign]
    psycopg.Pipeline.__exit__ = traced_exit  # type: ignore[method-assign]
    psycopg.Connection.commit = traced_commit  # type: ignore[method-assign]
    return timeline


if __name__ == "__main__":
    main()
