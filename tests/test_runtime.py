"""What `opshub serve` runs besides the API: the inbox worker and scheduled syncs."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from connectors.base import Connector
from fakes.common import asgi_transport
from fakes.jira import FakeJira
from hub.api.app import create_app
from hub.config import SourceDefinition, parse_config
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from hub.sync import due_sources

SECRET = "s3cret"


def _config(fake: FakeJira, **extra: object) -> object:
    return parse_config(
        {
            "sources": {
                "acme-jira": {
                    "tool": "jira",
                    "base_url": fake.base_url,
                    "email": fake.email,
                    "api_token": fake.api_token,
                    "projects": list(fake.projects),
                    "webhook_secret": SECRET,
                    **extra,
                }
            }
        }
    )


def _factory(fake: FakeJira) -> Callable[[SourceDefinition], Connector]:
    return lambda source: source.connector_cls(source.name, source.config, transport=asgi_transport(fake.app))


def _wait_for(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_due_sources_follows_each_schedule() -> None:
    fake = FakeJira(1)
    config = parse_config(
        {
            "sources": {
                name: {
                    "tool": "jira",
                    "base_url": fake.base_url,
                    "email": "e@x",
                    "api_token": "t",
                    "projects": ["P"],
                    **extra,
                }
                for name, extra in {
                    "never": {},
                    "hourly": {"schedule": "1h"},
                    "quarter": {"schedule": "15m"},
                }.items()
            }
        }
    )
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    last = {"hourly": now - timedelta(minutes=30), "quarter": now - timedelta(minutes=30)}
    assert due_sources(config, last.get, now) == ["quarter"]  # type: ignore[arg-type]
    assert due_sources(config, lambda name: None, now) == ["hourly", "quarter"]  # type: ignore[arg-type]


def test_serve_applies_webhooks_in_the_background(sqlite_store: Store) -> None:
    fake = FakeJira(20)
    settings = Settings(background_tasks=True, inbox_poll_seconds=0.05)
    app = create_app(sqlite_store, settings, config=_config(fake), connector_factory=_factory(fake))  # type: ignore[arg-type]
    _, token = sqlite_store.keys.create(Scope.read)
    native_id = fake.ids()[0]
    headers, body = fake.webhook("upsert", native_id, secret=SECRET)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.post("/webhooks/acme-jira", headers=headers, content=body).status_code == 202
        assert _wait_for(lambda: client.get(f"/v1/items/acme-jira:{native_id}").status_code == 200)


@pytest.mark.parametrize("schedule", ["1h"])
def test_serve_runs_scheduled_syncs(sqlite_store: Store, schedule: str) -> None:
    fake = FakeJira(30)
    settings = Settings(background_tasks=True, schedule_poll_seconds=0.05)
    app = create_app(
        sqlite_store,
        settings,
        config=_config(fake, schedule=schedule),
        connector_factory=_factory(fake),  # type: ignore[arg-type]
    )
    with TestClient(app):
        # Never synced, so due at once; then not again within the hour.
        assert _wait_for(lambda: len(sqlite_store.items.live_ids("acme-jira")) == 30)
        time.sleep(0.3)
    from hub.store.runs import RunStore

    runs = RunStore(sqlite_store.engine).list("acme-jira")
    assert [r.status for r in runs] == ["succeeded"]
