"""Prometheus metrics: the one place where the hub's metrics are defined, and how /metrics renders.

Code that counts something calls the small functions below (`sync_finished`,
`webhook_received`, `outbound_delivered` ...) rather than touching metric objects, so names
and labels are decided here once. Label values are bounded: sources come from the config
file (an unknown source posting webhooks is counted as `(unknown)`, so a caller cannot grow
the label set), routes are route templates, never raw paths.

Several processes. Each `opshub serve` process (one container, one replica) keeps its own
counters, and Prometheus scrapes each replica as its own target: the `instance` label it adds
is the per-process label. When one hub runs several worker processes behind one port (uvicorn
`--workers`, gunicorn), a scrape reaches any one of them, so the counters would jump between
processes; there, set `PROMETHEUS_MULTIPROC_DIR` to an empty directory before the processes
start: prometheus-client's multiprocess mode then writes every process's values to files in
it and /metrics sums them (https://prometheus.github.io/client_python/multiprocess/). In both
modes the values read from the store at scrape time (inbox depth, oldest pending delivery,
change-feed head) are computed once per scrape by the process that answers, never summed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN_SOURCE = "(unknown)"
UNMATCHED_ROUTE = "(unmatched)"

# ---------------------------------------------------------------- definitions

HTTP_LATENCY = Histogram(
    "opshub_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template (not the raw path), method and status code.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WEBHOOKS = Counter(
    "opshub_webhooks_received",
    "Webhook deliveries posted to /webhooks/{source}, by source and outcome "
    "(accepted, duplicate, rejected, invalid, too_large, unknown_source, error).",
    ["source", "outcome"],
)
INBOX_PROCESSED = Counter(
    "opshub_inbox_deliveries_processed",
    "Inbox deliveries handled by a worker, by source and the status written (done, ignored, failed, dead; "
    "pending: released to wait for its tool; lost: another worker took the claim over; interrupted: store down).",
    ["source", "status"],
)
SYNC_RUNS = Counter(
    "opshub_sync_runs", "Finished sync runs by source and outcome (succeeded, failed).", ["source", "outcome"]
)
SYNC_DURATION = Histogram(
    "opshub_sync_run_duration_seconds",
    "Duration of finished sync runs by source.",
    ["source"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
RECORDS_FETCHED = Counter("opshub_sync_records_fetched", "Records read from the tool by sync runs.", ["source"])
RECORDS_CHANGED = Counter("opshub_sync_records_changed", "Records whose change a sync run stored.", ["source"])
TOOL_REQUESTS = Counter("opshub_tool_requests", "HTTP requests sent to a source's tool (every attempt).", ["source"])
TOOL_RETRIES = Counter("opshub_tool_retries", "Retries of requests to a source's tool (after a wait).", ["source"])
TOOL_RATE_LIMITED = Counter(
    "opshub_tool_rate_limited",
    "Answers from a source's tool that were rate limits (429 or the tool's own).",
    ["source"],
)
# Outbound (Standard Webhooks subscriptions, hub/outbound/): defined here, fed by that code.
OUTBOUND_LAG = Histogram(
    "opshub_outbound_delivery_lag_seconds",
    "Time from a change's commit to its successful delivery to a subscription.",
    ["subscription"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)
OUTBOUND_FAILURES = Counter(
    "opshub_outbound_delivery_failures",
    "Failed outbound delivery attempts by subscription and reason (timeout, connect, refused, http_4xx, http_5xx).",
    ["subscription", "reason"],
)


# ---------------------------------------------------------------- the API callers use

# The labelled children of the per-request and per-delivery metrics, by their label values.
# `labels()` checks and stringifies the values and takes the metric's lock on every call
# (~2-3 us; the webhook intake calls two per delivery, the inbox worker one); a child, once
# made, is the same object for the life of the process (prometheus-client keeps it in the
# metric until `remove`/`clear`, which the hub never calls), so it is looked up once here.
# These hold no more entries than the metrics' own children do.
# https://prometheus.github.io/client_python/instrumenting/labels/
_Child = TypeVar("_Child", Counter, Histogram)
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: _Child, *values: object) -> _Child:
    """`metric.labels(*values)` (each value as text), made once per metric and label values."""
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*(str(value) for value in values))
    return cast("_Child", child)


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    _child(HTTP_LATENCY, method, route, status).observe(seconds)


def webhook_received(source: str, outcome: str, *, known_source: bool = True) -> None:
    _child(WEBHOOKS, source if known_source else UNKNOWN_SOURCE, outcome).inc()


def inbox_processed(source: str, status: str) -> None:
    _child(INBOX_PROCESSED, source, status).inc()


def sync_finished(source: str, outcome: str, *, fetched: int, changed: int, seconds: float) -> None:
    SYNC_RUNS.labels(source, outcome).inc()
    SYNC_DURATION.labels(source).observe(seconds)
    RECORDS_FETCHED.labels(source).inc(fetched)
    RECORDS_CHANGED.labels(source).inc(changed)


def tool_request(source: str) -> None:
    TOOL_REQUESTS.labels(source).inc()


def tool_retry(source: str) -> None:
    TOOL_RETRIES.labels(source).inc()


def tool_rate_limited(source: str) -> None:
    TOOL_RATE_LIMITED.labels(source).inc()


def outbound_delivered(subscription: str, lag_seconds: float) -> None:
    """A change reached a subscription's receiver `lag_seconds` after it was committed."""
    OUTBOUND_LAG.labels(subscription).observe(max(0.0, lag_seconds))


def outbound_failed(subscription: str, reason: str) -> None:
    """One failed delivery attempt; `reason` is one of a few fixed words (see OUTBOUND_FAILURES)."""
    OUTBOUND_FAILURES.labels(subscription, reason).inc()


# ---------------------------------------------------------------- read from the store at scrape time


class StoreCollector(Collector):
    """Gauges read from the database when scraped: one indexed query each, no full scans.

    Inbox depth counts rows by status on `ix_webhook_inbox_status (status, id)`; the oldest
    waiting delivery is the first of that index among the waiting statuses; the change-feed
    head is the one row of `change_counter`. A database that does not answer gives
    `opshub_store_up 0` and no other store gauge, so the scrape itself still works.
    """

    WAITING = ("pending", "processing", "failed")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterable[GaugeMetricFamily]:
        from hub.db.tables import change_counter, webhook_inbox

        up = GaugeMetricFamily("opshub_store_up", "1 when the store answered this scrape's queries.")
        t = webhook_inbox.c
        try:
            with self.engine.connect() as conn:
                depth: dict[str, int] = dict(
                    conn.execute(
                        select(t.status, func.count()).where(t.status.in_(self.WAITING)).group_by(t.status)
                    ).all()
                )
                oldest = conn.execute(
                    select(t.received_at).where(t.status.in_(self.WAITING)).order_by(t.id).limit(1)
                ).scalar()
                head = conn.execute(select(change_counter.c.last_seq)).scalar()
        except Exception:  # noqa: BLE001 - reported as opshub_store_up 0; /readyz says why
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        gauge = GaugeMetricFamily(
            "opshub_inbox_depth", "Webhook deliveries not applied yet, by status.", labels=["status"]
        )
        for status in self.WAITING:
            gauge.add_metric([status], int(depth.get(status, 0)))
        yield gauge
        age = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        yield GaugeMetricFamily(
            "opshub_inbox_oldest_pending_age_seconds",
            "Age of the oldest delivery not applied yet (0 when there is none).",
            value=age,
        )
        yield GaugeMetricFamily(
            "opshub_changes_head_seq", "Newest seq of the change feed (/v1/changes).", value=int(head or 0)
        )


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(engine: Engine | None) -> bytes:
    """The /metrics body: this process's (or, in multiprocess mode, all processes') metrics,
    then the store gauges, read once."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if engine is not None:
        store_registry = CollectorRegistry(auto_describe=False)
        store_registry.register(StoreCollector(engine))
        body += generate_latest(store_registry)
    return body


__all__ = [
    "CONTENT_TYPE",
    "StoreCollector",
    "http_request",
    "inbox_processed",
    "outbound_delivered",
    "outbound_failed",
    "render",
    "sync_finished",
    "tool_rate_limited",
    "tool_request",
    "tool_retry",
    "webhook_received",
]
