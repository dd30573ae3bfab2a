"""/metrics (issue 12 item 3): Prometheus text that the reference parser reads, and counters
that move as the hub syncs a fake tool and receives webhooks, on both backends.

Counters are process-wide (as in a real server), so every assertion compares a scrape
before with a scrape after, never absolute values.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from connectors.base import Connector
from fakes.common import asgi_transport
from fakes.jira import FakeJira
from hub.api.app import create_app
from hub.config import HubConfig, SourceDefinition, parse_config
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope

SOURCE = "metrics-jira"
SECRET = "metrics-webhook-secret"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class Hub:
    def __init__(self, store: Store) -> None:
        self.fake = FakeJira(30, seed=3)
        self.config: HubConfig = parse_config(
            {
                "sources": {
                    SOURCE: {
                        "tool": "jira",
                        "base_url": self.fake.base_url,
                        "email": self.fake.email,
                        "api_token": self.fake.api_token,
                        "projects": list(self.fake.projects),
                        "webhook_secret": SECRET,
                        "page_size": 10,
                    }
                }
            }
        )

    def connector(self, source: SourceDefinition) -> Connector:
        async def no_sleep(_seconds: float) -> None:
            return None

        return source.connector_cls(source.name, source.config, transport=asgi_transport(self.fake.app), sleep=no_sleep)


@pytest.fixture
def hub_client(store: Store) -> Iterator[tuple[TestClient, Hub]]:
    hub = Hub(store)
    settings = Settings(database_url="sqlite://", background_tasks=False)
    app = create_app(store, settings, config=hub.config, connector_factory=hub.connector)
    _, token = store.keys.create(Scope.admin, "test")
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client, hub


def test_counters_move_with_a_sync_and_webhooks(hub_client: tuple[TestClient, Hub]) -> None:
    client, hub = hub_client
    before = scrape(client)
    runtime = client.app.state.runtime  # type: ignore[attr-defined]

    hub.fake.faults.inject(429, count=2, retry_after="1")
    summary = client.portal.call(runtime.sync.run, SOURCE)  # type: ignore[union-attr]
    assert summary.status == "succeeded", summary.error
    after_sync = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after_sync, name, **labels) - value(before, name, **labels)

    assert delta("opshub_sync_runs_total", source=SOURCE, outcome="succeeded") == 1
    assert delta("opshub_sync_records_fetched_total", source=SOURCE) == summary.fetched == 30
    assert delta("opshub_sync_records_changed_total", source=SOURCE) == summary.changed == 30
    assert delta("opshub_sync_run_duration_seconds_count", source=SOURCE) == 1
    assert delta("opshub_tool_requests_total", source=SOURCE) == summary.requests
    assert delta("opshub_tool_rate_limited_total", source=SOURCE) == 2
    assert delta("opshub_tool_retries_total", source=SOURCE) == summary.retries == 2
    assert value(after_sync, "opshub_changes_head_seq") == value(before, "opshub_changes_head_seq") + 30

    # Webhooks: one accepted, the same again (duplicate), one badly signed, one to a source
    # that does not exist (counted under "(unknown)", not under the name the caller chose).
    native_id = sorted(hub.fake.ids())[0]
    hub.fake.edit(native_id)
    headers, body = hub.fake.webhook("upsert", native_id, secret=SECRET)
    assert client.post(f"/webhooks/{SOURCE}", headers=headers, content=body).status_code == 202
    assert client.post(f"/webhooks/{SOURCE}", headers=headers, content=body).json()["duplicate"] is True
    bad_headers, bad_body = hub.fake.webhook("upsert", native_id, secret="wrong")
    assert client.post(f"/webhooks/{SOURCE}", headers=bad_headers, content=bad_body).status_code == 401
    assert client.post("/webhooks/attacker-chosen-name", content=b"{}").status_code == 404
    waiting = scrape(client)
    assert value(waiting, "opshub_inbox_depth", status="pending") == 1
    assert value(waiting, "opshub_inbox_oldest_pending_age_seconds") >= 0

    client.portal.call(runtime.worker.drain)  # type: ignore[union-attr]
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(after_sync, name, **labels)

    assert moved("opshub_webhooks_received_total", source=SOURCE, outcome="accepted") == 1
    assert moved("opshub_webhooks_received_total", source=SOURCE, outcome="duplicate") == 1
    assert moved("opshub_webhooks_received_total", source=SOURCE, outcome="rejected") == 1
    assert moved("opshub_webhooks_received_total", source="(unknown)", outcome="unknown_source") == 1
    assert not any(dict(labels).get("source") == "attacker-chosen-name" for _, labels in after)
    assert moved("opshub_inbox_deliveries_processed_total", source=SOURCE, status="done") == 1
    assert value(after, "opshub_inbox_depth", status="pending") == 0
    assert value(after, "opshub_inbox_oldest_pending_age_seconds") == 0
    assert value(after, "opshub_changes_head_seq") == value(after_sync, "opshub_changes_head_seq") + 1
    assert value(after, "opshub_store_up") == 1

    # Latency by route template: the item route is counted under its template, not its path.
    assert client.get(f"/v1/items/{SOURCE}:{native_id}").status_code == 200
    final = scrape(client)
    template = [
        labels
        for name, labels in final
        if name == "opshub_http_request_duration_seconds_count" and ("route", "/v1/items/{item_id}") in labels
    ]
    assert template, sorted({dict(labels).get("route") for _, labels in final if dict(labels).get("route")})
    assert not any(native_id in dict(labels).get("route", "") for _, labels in final)
    # A path no route matches is one label value, whatever the path.
    assert client.get("/no/such/path/12345").status_code == 404
    unmatched = scrape(client)
    assert (
        value(unmatched, "opshub_http_request_duration_seconds_count", method="GET", route="(unmatched)", status="404")
        >= 1
    )
    assert not any("12345" in dict(labels).get("route", "") for _, labels in unmatched)


def test_outbound_metrics_are_defined_for_the_outbound_worker(sqlite_store: Store) -> None:
    from hub import metrics

    with TestClient(create_app(sqlite_store, Settings(database_url="sqlite://", background_tasks=False))) as client:
        before = scrape(client)
        metrics.outbound_delivered("sub-1", 0.3)
        metrics.outbound_failed("sub-1", "http_5xx")
        after = scrape(client)
    assert value(after, "opshub_outbound_delivery_lag_seconds_count", subscription="sub-1") == (
        value(before, "opshub_outbound_delivery_lag_seconds_count", subscription="sub-1") + 1
    )
    assert value(after, "opshub_outbound_delivery_failures_total", subscription="sub-1", reason="http_5xx") == (
        value(before, "opshub_outbound_delivery_failures_total", subscription="sub-1", reason="http_5xx") + 1
    )


def test_metrics_token_protects_the_endpoint(sqlite_store: Store) -> None:
    settings = Settings(database_url="sqlite://", background_tasks=False, metrics_token="scrape-me")  # type: ignore[arg-type]
    with TestClient(create_app(sqlite_store, settings)) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        # An API key is not the scrape token.
        _, api_key = sqlite_store.keys.create(Scope.admin, "admin")
        assert client.get("/metrics", headers={"Authorization": f"Bearer {api_key}"}).status_code == 401
        assert "opshub_store_up" in client.get("/metrics", headers={"Authorization": "Bearer scrape-me"}).text


def test_metrics_can_be_switched_off(sqlite_store: Store) -> None:
    settings = Settings(database_url="sqlite://", background_tasks=False, metrics_enabled=False)
    with TestClient(create_app(sqlite_store, settings)) as client:
        assert client.get("/metrics").status_code == 404


def test_a_store_that_does_not_answer_is_a_gauge_not_a_failed_scrape(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from hub import metrics

    unreachable = create_engine(f"sqlite:///{tmp_path / 'missing-dir' / 'hub.db'}")
    samples: Samples = {}
    for family in text_string_to_metric_families(metrics.render(unreachable).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert samples[("opshub_store_up", ())] == 0
    assert ("opshub_inbox_depth", (("status", "pending"),)) not in samples
    assert ("opshub_changes_head_seq", ()) not in samples


MULTIPROCESS_CHILD = textwrap.dedent(
    """
    from hub import metrics
    metrics.webhook_received("mp-src", "accepted")
    metrics.sync_finished("mp-src", "succeeded", fetched=5, changed=2, seconds=1.0)
    """
)


def test_worker_processes_add_up_in_multiprocess_mode(tmp_path: Path) -> None:
    """Two worker processes count into PROMETHEUS_MULTIPROC_DIR; a third renders /metrics'
    body: each counter is the sum of the two, once (not per process, not twice)."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[1]
    for _ in range(2):
        subprocess.run([sys.executable, "-c", MULTIPROCESS_CHILD], env=env, cwd=root, check=True, timeout=60)
    render = "import sys; from hub import metrics; sys.stdout.write(metrics.render(None).decode())"
    out = subprocess.run(
        [sys.executable, "-c", render], env=env, cwd=root, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    samples: Samples = {}
    for family in text_string_to_metric_families(out):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert value(samples, "opshub_webhooks_received_total", source="mp-src", outcome="accepted") == 2
    assert value(samples, "opshub_sync_records_fetched_total", source="mp-src") == 10
    assert value(samples, "opshub_sync_run_duration_seconds_count", source="mp-src") == 2
