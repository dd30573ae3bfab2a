"""Process-level edges (issue 8, item 9): `opshub serve` on a busy port, `gc.freeze()` once per
process, and a suite that skips (not errors) without ../shared/fixtures."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from connectors.base import Connector
from fakes.common import asgi_transport, free_port
from hub import sync as hub_sync
from hub.api.app import create_app
from hub.cli import app
from hub.config import SourceDefinition, parse_config
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from hub.sync import SyncEngine
from tests.conformance.cases import CASES
from tests.factories import make_item

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_serve_on_a_busy_port_prints_one_line_and_exits_non_zero(busy_port: int, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--database-url", f"sqlite:///{tmp_path / 'hub.db'}", "serve", "--port", str(busy_port)]
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert f"cannot listen on 127.0.0.1:{busy_port}" in lines[0]
    assert "serving on" not in result.output


def test_serve_still_serves_on_the_socket_it_bound(tmp_path: Path) -> None:
    """The busy-port check binds the socket itself and hands it to uvicorn: the API answers."""
    port = free_port()
    env = {**os.environ, "HUB_BACKGROUND_TASKS": "false", "HUB_CONFIG": str(tmp_path / "none.toml")}
    (tmp_path / "none.toml").write_text("")
    command = ["--database-url", f"sqlite:///{tmp_path / 'h.db'}", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from hub.cli import app; app()", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        answer = None
        for _ in range(300):  # wait for start-up (migrations), at most ~30 s
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        output = proc.stdout.read() if proc.stdout is not None and proc.poll() is not None else ""
        assert answer is not None and answer.status_code == 200, output
    finally:
        proc.terminate()
        proc.wait(30)


def test_gc_freeze_runs_once_per_process_not_at_every_sync(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[None] = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(None))
    hub_sync.freeze_startup_objects.cache_clear()  # as in a fresh process
    case = next(c for c in CASES if c.id == "github")
    fake = case.fake(5)
    config = parse_config({"sources": {"gh": case.config(fake)}})

    def connector(source: SourceDefinition) -> Connector:
        return source.connector_cls(source.name, source.config, transport=asgi_transport(fake.app))

    engine = SyncEngine(store, config, connector_factory=connector)
    try:
        for _ in range(3):  # three runs, as a long-running `serve` would schedule them
            assert asyncio.run(engine.run("gh")).status == "succeeded"
    finally:
        hub_sync.freeze_startup_objects.cache_clear()  # later runs in this process freeze for real
    assert len(calls) == 1


def test_the_suite_skips_with_a_reason_when_the_shared_fixtures_are_absent(tmp_path: Path) -> None:
    """Collection of every module that reads ../shared/fixtures, with them absent: skips
    naming the path, no collection error; under CI=true the same is a failure."""
    modules = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "tests").glob("test_*.py"))
        if "shared_fixtures(" in p.read_text() and p.name != Path(__file__).name
    ]
    assert modules, "no module reads the shared fixtures any more: drop this test"
    env = {**os.environ, "OPSHUB_SHARED_FIXTURES": str(tmp_path / "absent"), "CI": "false"}
    args = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--co", *modules]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-3000:]
    assert "collected" in summary and "error" not in summary, summary
    assert f"real payloads not found at {tmp_path / 'absent'}" in done.stdout  # the skip says why

    in_ci = subprocess.run(
        args, cwd=ROOT, env={**env, "CI": "true"}, capture_output=True, text=True, timeout=300, check=False
    )
    assert in_ci.returncode not in (0, 5), in_ci.stdout[-3000:]
    assert "real payloads not found" in in_ci.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_redmine_script_stops_the_server_it_started_and_waits_for_it() -> None:
    """`scripts/redmine-server stop` (called after the suite by tests/test_redmine_e2e.py when
    the suite started the server) ends the process of its pid file; `status` tells whether
    one runs. A detached stand-in process plays the server, on a port of its own (own pid
    file), so no real Redmine is touched."""
    port = str(free_port())
    pidfile = Path(f"/tmp/opshub-redmine-{port}.pid")
    script = [str(ROOT / "scripts" / "redmine-server")]
    env = {**os.environ, "REDMINE_PORT": port}
    # Detached (as the script's nohup'd server is), so its exit is reaped by init, not us.
    spawned = subprocess.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
    pid = int(spawned.stdout.strip())
    try:
        assert subprocess.run([*script, "status"], env=env, check=False).returncode == 1
        pidfile.write_text(f"{pid}\n")
        assert subprocess.run([*script, "status"], env=env, check=False).returncode == 0
        assert subprocess.run([*script, "stop"], env=env, check=False, timeout=60).returncode == 0
        assert not _alive(pid)  # stop returned only once the process was gone
        assert not pidfile.exists()
        assert subprocess.run([*script, "status"], env=env, check=False).returncode == 1
    finally:
        if _alive(pid):
            os.kill(pid, 9)
        pidfile.unlink(missing_ok=True)


def test_post_sync_on_sqlite_never_500s_while_runs_and_other_writers_write(sqlite_store: Store) -> None:
    """POST /v1/sources/{name}/sync opens a run (two writes) while the previous run stores
    pages and another writer applies items: each answer is 202 or 409, never a 500
    "database is locked" (2 of 85 tries before every store write took BEGIN IMMEDIATE)."""
    case = next(c for c in CASES if c.id == "github")
    fake = case.fake(400)
    config = parse_config({"sources": {"gh": {**case.config(fake), "page_size": 20}}})

    def connector(source: SourceDefinition) -> Connector:
        return source.connector_cls(source.name, source.config, transport=asgi_transport(fake.app))

    stop = threading.Event()
    writes: list[int] = []

    def other_writer() -> None:
        n = 0
        while not stop.is_set():
            sqlite_store.items.apply([make_item(f"w{n}-{k}", minutes=n, source="other") for k in range(20)])
            writes.append(n)
            n += 1

    app = create_app(sqlite_store, Settings(background_tasks=False), config=config, connector_factory=connector)
    _, token = sqlite_store.keys.create(Scope.admin, "test")
    writer = threading.Thread(target=other_writer)
    statuses: list[int] = []
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        writer.start()
        try:
            for _ in range(60):
                response = client.post("/v1/sources/gh/sync")
                assert response.status_code in (202, 409), response.text
                statuses.append(response.status_code)
        finally:
            stop.set()
            writer.join()
    assert 202 in statuses and 409 in statuses  # runs were started and were writing meanwhile
    assert writes  # the other writer wrote during the hammering
