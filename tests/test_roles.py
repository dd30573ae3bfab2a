"""Process roles (issue 12 item 5): `opshub serve --role api|worker|all`.

An api process serves the API and stores webhooks but runs nothing in the background; a
worker process on the same database applies what the api process stored, and answers HTTP
only for the health probes and /metrics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from connectors.base import Connector
from fakes.common import asgi_transport, free_port
from fakes.jira import FakeJira
from hub.api.app import create_app
from hub.cli import app as cli
from hub.config import HubConfig, SourceDefinition, parse_config
from hub.settings import Role, Settings
from hub.store import Store
from hub.store.keys import Scope
from hub.store.runs import RunStore
from tests.webhook_support import statuses

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "roles-jira"
SECRET = "roles-webhook-secret"


def _hub(fake: FakeJira) -> tuple[HubConfig, object]:
    config = parse_config(
        {
            "sources": {
                SOURCE: {
                    "tool": "jira",
                    "base_url": fake.base_url,
                    "email": fake.email,
                    "api_token": fake.api_token,
                    "projects": list(fake.projects),
                    "webhook_secret": SECRET,
                    "schedule": "1h",
                }
            }
        }
    )

    def connector(source: SourceDefinition) -> Connector:
        return source.connector_cls(source.name, source.config, transport=asgi_transport(fake.app))

    return config, connector


def test_api_and_worker_processes_split_the_work(store: Store) -> None:
    fake = FakeJira(5, seed=4)
    config, connector = _hub(fake)
    settings = Settings(database_url="sqlite://", inbox_poll_seconds=0.05, schedule_poll_seconds=3600)
    api_app = create_app(store, settings, config=config, connector_factory=connector, role=Role.api)  # type: ignore[arg-type]
    worker_app = create_app(store, settings, config=config, connector_factory=connector, role=Role.worker)  # type: ignore[arg-type]
    _, key = store.keys.create(Scope.admin, "test")
    native_id = sorted(fake.ids())[0]
    headers, body = fake.webhook("upsert", native_id, secret=SECRET)

    with TestClient(api_app, headers={"Authorization": f"Bearer {key}"}) as api:
        runtime = api.app.state.runtime  # type: ignore[attr-defined]
        assert runtime.background is False and not runtime._tasks  # no schedule, no inbox loop
        assert api.get("/v1/items").status_code == 200
        accepted = api.post(f"/webhooks/{SOURCE}", headers=headers, content=body)
        assert accepted.status_code == 202
        delivery = accepted.json()["delivery_id"]
        time.sleep(0.3)  # several poll intervals: nobody in this process applies it
        assert statuses(store) == {delivery: "pending"}
        assert RunStore(store.engine).list(SOURCE) == []  # the due source was not synced here

        with TestClient(worker_app, headers={"Authorization": f"Bearer {key}"}) as worker:
            deadline = time.monotonic() + 15
            while statuses(store)[delivery] != "done" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert statuses(store)[delivery] == "done"
            assert api.get(f"/v1/items/{SOURCE}:{native_id}").status_code == 200
            # The worker's HTTP: health and its own metrics, nothing else.
            assert worker.get("/healthz").status_code == 200
            assert worker.get("/readyz").status_code == 200
            scraped = worker.get("/metrics").text
            assert f'opshub_inbox_deliveries_processed_total{{source="{SOURCE}",status="done"}}' in scraped
            assert worker.get("/v1/items").status_code == 404
            assert worker.post(f"/webhooks/{SOURCE}", headers=headers, content=body).status_code == 404
            # The schedule runs in the worker: the source, never synced, is due at once.
            while not RunStore(store.engine).list(SOURCE) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert RunStore(store.engine).list(SOURCE)


def test_role_all_keeps_background_tasks_setting(sqlite_store: Store) -> None:
    app = create_app(sqlite_store, Settings(database_url="sqlite://", background_tasks=False))
    with TestClient(app) as client:
        assert client.app.state.role is Role.all  # type: ignore[attr-defined]
        assert client.app.state.runtime.background is False  # type: ignore[attr-defined]


def test_an_unknown_role_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--database-url", f"sqlite:///{tmp_path / 'h.db'}", "serve", "--role", "cook"])
    assert result.exit_code == 2
    assert "cook" in result.output


def test_serve_role_worker_answers_health_not_the_api(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "none.toml").write_text("")
    env = {**os.environ, "HUB_CONFIG": str(tmp_path / "none.toml"), "HUB_LOG_FORMAT": "json"}
    command = ["--database-url", f"sqlite:///{tmp_path / 'h.db'}", "serve", "--port", str(port), "--role", "worker"]
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
        for _ in range(300):  # start-up (migrations): at most ~30 s
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200
        assert answer.headers["x-request-id"]
        assert httpx.get(f"http://127.0.0.1:{port}/v1/items", timeout=5).status_code == 404
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    assert "(worker) health and metrics on" in output
