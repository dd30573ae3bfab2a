"""Logs (issue 12 item 4): request ids on every line of a request, JSON lines, sync runs and
inbox deliveries logged with source and id, and no secret in any line.

The redaction test runs every tool's connector against its fake served on a real loopback
socket (so httpx and httpcore log what they really log at DEBUG), syncs, posts webhooks,
drains the inbox, and greps everything logged for every secret of the test config.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from connectors.base import Connector
from fakes.common import FakeTool, listening_socket, serve
from hub.api.app import create_app
from hub.config import HubConfig, SourceDefinition, parse_config
from hub.logs import MAX_REQUEST_ID_CHARS, REDACTED, Redactor, configure_for, configure_logging
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from tests.conformance.cases import CASES, WEBHOOK_SECRET, ConformanceCase

SOURCE = "logged-src"
METRICS_TOKEN = "metrics-scrape-token-0123456789"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the other tests."""
    names = ["", "opshub", "hub", "connectors", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore"]
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in names}
    propagate = {name: logging.getLogger(name).propagate for name in names}
    yield
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers = handlers
        logger.propagate = propagate[name]


def _no_sleep_factory() -> Any:
    async def no_sleep(_seconds: float) -> None:
        return None

    return no_sleep


class _CarelessTransport(httpx.AsyncHTTPTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        logging.getLogger("httpx.debugging").debug(
            "sending %s %s headers=%s", request.method, request.url, dict(request.headers.items())
        )
        return await super().handle_async_request(request)


def _rebase(fake: FakeTool, served: str) -> None:
    """Point the fake's own links (next pages, self URLs) at the address it is served on."""
    parts = urlsplit(fake.base_url)
    fake.base_url = served + fake.base_url[len(f"{parts.scheme}://{parts.netloc}") :]


def _secrets(config: HubConfig) -> set[str]:
    """Every secret of the test config, read independently of hub/logs.py."""
    found = {WEBHOOK_SECRET, METRICS_TOKEN}
    for source in config.sources.values():
        values = [getattr(source.config, name) for name in type(source.config).model_fields]
        users = [value for value in values if isinstance(value, str)]
        for value in values:
            if hasattr(value, "get_secret_value"):
                secret = value.get_secret_value()
                found.add(secret)
                # As Basic auth carries it (Jira: email + API token).
                found |= {base64.b64encode(f"{user}:{secret}".encode()).decode() for user in users}
    return found


@pytest.mark.parametrize("log_format", ["json", "text"])
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_no_secret_reaches_a_log_line(case: ConformanceCase, log_format: str, sqlite_store: Store) -> None:
    fake = case.fake(20)
    sock = listening_socket()  # bound now: the config below names its port
    port = sock.getsockname()[1]
    _rebase(fake, f"http://127.0.0.1:{port}")
    config = parse_config({"sources": {SOURCE: {**case.config(fake), "webhook_secret": WEBHOOK_SECRET}}})
    settings = Settings(
        database_url="sqlite://",
        background_tasks=False,
        log_level="debug",
        log_format=log_format,  # type: ignore[arg-type]
        metrics_token=METRICS_TOKEN,  # type: ignore[arg-type]
    )
    captured = io.StringIO()
    configure_for(settings, config, stream=captured)

    def connector(source: SourceDefinition) -> Connector:
        # Real sockets through httpcore, as in production, and a careless debug hook that
        # logs every request's URL and raw headers: each tool's credential reaches the log
        # call, wherever the tool carries it (header, Basic auth, query), so this test fails
        # unless the redaction holds.
        return source.connector_cls(
            source.name, source.config, sleep=_no_sleep_factory(), transport=_CarelessTransport()
        )

    _, api_key = sqlite_store.keys.create(Scope.admin, "test")
    secrets = _secrets(config) | {api_key}
    app = create_app(sqlite_store, settings, config=config, connector_factory=connector)
    with serve(fake.app, sock=sock), TestClient(app, headers={"Authorization": f"Bearer {api_key}"}) as client:
        runtime = client.app.state.runtime  # type: ignore[attr-defined]
        fake.faults.inject(429, count=1, retry_after="0")
        run = client.portal.call(runtime.sync.run, SOURCE)  # type: ignore[union-attr]
        assert run.status == "succeeded", run.error
        supports_webhooks = config.sources[SOURCE].connector_cls.supports_webhooks
        if supports_webhooks:
            native_id = sorted(fake.ids())[0]
            fake.edit(native_id)
            for kind in ("upsert", "ignore"):
                headers, body = fake.webhook(kind, native_id, secret=WEBHOOK_SECRET)  # type: ignore[arg-type]
                assert client.post(f"/webhooks/{SOURCE}", headers=headers, content=body).status_code == 202
            bad_headers, bad_body = fake.webhook("upsert", native_id, secret="not-the-secret")
            assert client.post(f"/webhooks/{SOURCE}", headers=bad_headers, content=bad_body).status_code == 401
            client.portal.call(runtime.worker.drain)  # type: ignore[union-attr]
        assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
        # A tool that refuses the credentials: the error path logs too.
        fake.faults.inject(401, count=10)
        failed = client.portal.call(runtime.sync.run, SOURCE)  # type: ignore[union-attr]
        assert failed.status == "failed"
    output = captured.getvalue()

    # The capture holds what the test is about: the libraries' DEBUG lines and the hub's own.
    assert "httpcore" in output and "httpx" in output and "sending " in output
    assert f"sync run {run.run_id} of {SOURCE}" in output
    if supports_webhooks:
        assert f"of {SOURCE}: done" in output
    leaked = sorted(secret for secret in secrets if secret in output)
    assert not leaked, f"secrets in the log: {leaked}"


def test_json_lines_carry_the_request_id_and_the_delivery(sqlite_store: Store) -> None:
    case = next(c for c in CASES if c.id == "jira")
    fake = case.fake(5)
    config = parse_config({"sources": {SOURCE: {**case.config(fake), "webhook_secret": WEBHOOK_SECRET}}})
    settings = Settings(database_url="sqlite://", background_tasks=False, log_format="json")
    captured = io.StringIO()
    configure_for(settings, config, stream=captured)
    from fakes.common import asgi_transport

    def connector(source: SourceDefinition) -> Connector:
        return source.connector_cls(source.name, source.config, transport=asgi_transport(fake.app))

    app = create_app(sqlite_store, settings, config=config, connector_factory=connector)
    native_id = sorted(fake.ids())[0]
    headers, body = fake.webhook("upsert", native_id, secret=WEBHOOK_SECRET)
    with TestClient(app) as client:
        given = client.post(f"/webhooks/{SOURCE}", headers={**headers, "X-Request-ID": "trace-42"}, content=body)
        assert given.headers["x-request-id"] == "trace-42"
        generated = client.get("/healthz")
        assert len(generated.headers["x-request-id"]) == 32
        for bad in ("x" * (MAX_REQUEST_ID_CHARS + 1), "evil id\n{}", ""):
            answer = client.get("/healthz", headers={"X-Request-ID": bad})
            assert answer.headers["x-request-id"] != bad
            assert len(answer.headers["x-request-id"]) == 32
        client.portal.call(client.app.state.runtime.worker.drain)  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    stored = [line for line in lines if line["message"].startswith("webhook ")]
    assert stored and stored[0]["request_id"] == "trace-42"
    assert stored[0]["source"] == SOURCE and stored[0]["delivery_id"]
    applied = [line for line in lines if line.get("outcome") == "done" and "inbox_id" in line]
    assert applied and applied[0]["source"] == SOURCE
    assert applied[0]["delivery_id"] == stored[0]["delivery_id"]
    assert {"time", "level", "logger"} <= set(applied[0])


def test_redactor_catches_credentials_it_was_not_told_about() -> None:
    redact = Redactor()
    lines = {
        "GET /x Authorization: Bearer abcdefghijklmnop": "abcdefghijklmnop",
        "headers={'authorization': 'Basic dXNlcjpzZWNyZXQtdG9rZW4='}": "dXNlcjpzZWNyZXQtdG9rZW4=",
        "key ohk_0123456789ab_SeCrEtPaRt-xyz used": "SeCrEtPaRt-xyz",
        "subscription secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "GET https://tool.example/issues.json?key=0a1b2c3d4e5f&page=2": "0a1b2c3d4e5f",
        "'PRIVATE-TOKEN': 'glpat-abcdef123456'": "glpat-abcdef123456",
    }
    for line, secret in lines.items():
        cleaned = redact(line)
        assert secret not in cleaned, cleaned
        assert REDACTED in cleaned
    assert redact("sync run 12 of acme-jira succeeded") == "sync run 12 of acme-jira succeeded"


def test_text_format_keeps_one_line_per_record() -> None:
    captured = io.StringIO()
    configure_logging("info", "text", secrets=["hunter2-password"], stream=captured)
    logging.getLogger("opshub.test").warning("connecting with %s", "hunter2-password")
    logging.getLogger("opshub.test").warning("delivery %s stored", "d-1\n2026-01-01 00:00:00 ERROR forged")
    out = captured.getvalue()
    assert out.count("\n") == 2
    assert "d-1\\n2026-01-01" in out
    assert "hunter2-password" not in out and REDACTED in out


def test_an_unexpected_error_is_logged_and_answered_with_the_request_id(sqlite_store: Store) -> None:
    captured = io.StringIO()
    configure_logging("info", "json", stream=captured)
    app = create_app(sqlite_store, Settings(database_url="sqlite://", background_tasks=False))

    def boom() -> None:
        raise RuntimeError("kaput")

    app.add_api_route("/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "req-500"
    errors = [json.loads(line) for line in captured.getvalue().splitlines() if "kaput" in line]
    assert errors and errors[0]["request_id"] == "req-500" and errors[0]["level"] == "ERROR"
