"""The lean intake path (`WebhookIntakePath`): `POST /webhooks/{source}` served without
FastAPI's router must answer exactly as the routed endpoint does, keep request ids and the
latency metric's route label, and really be the path a configured source's POST takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select

from fakes.common import hmac_sha256_hex
from fakes.jira import FakeJira
from hub.api.routes import webhooks
from hub.api.routes.webhooks import WebhookIntakePath
from hub.config import parse_config
from hub.db.tables import webhook_inbox
from hub.settings import Settings
from hub.store import Store

SOURCE = "acme-jira"
SECRET = "lean-path-secret"
MAX_BODY = 20_000


def _app(store: Store, fake: FakeJira, *, lean: bool) -> FastAPI:
    from hub.api.app import create_app

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
                },
                "acme-redmine": {"tool": "redmine", "base_url": "https://redmine.invalid", "api_key": "k"},
            }
        }
    )
    app = create_app(store, Settings(background_tasks=False, webhook_max_bytes=MAX_BODY), config=config)
    assert any(m.cls is WebhookIntakePath for m in app.user_middleware)
    if not lean:  # the same app with the lean path taken out: every POST goes through the router
        app.user_middleware = [m for m in app.user_middleware if m.cls is not WebhookIntakePath]
    return app


@contextmanager
def _client(store: Store, fake: FakeJira, *, lean: bool) -> Iterator[TestClient]:
    with TestClient(_app(store, fake, lean=lean), raise_server_exceptions=False) as client:
        yield client


def _signed(fake: FakeJira, n: int) -> tuple[dict[str, str], bytes]:
    return fake.webhook("upsert", fake.ids()[n], secret=SECRET)


def _requests(fake: FakeJira) -> list[tuple[str, str, dict[str, str], Any]]:
    """(method, path, headers, body): accepted, duplicate, and every refusal on this path."""
    headers, body = _signed(fake, 1)
    bad_json = b'{"webhookEvent": "jira:issue_updated", '
    too_big = b'{"x": "' + b"a" * MAX_BODY + b'"}'
    big = b'{"x": "' + b"b" * MAX_BODY + b'"}'
    other_headers, other_body = _signed(fake, 2)
    third_headers, third_body = _signed(fake, 3)
    return [
        ("POST", f"/webhooks/{SOURCE}", {**headers, "X-Request-Id": "req-lean-1"}, body),
        ("POST", f"/webhooks/{SOURCE}", headers, body),  # the same delivery again
        ("POST", f"/webhooks/{SOURCE}", {**other_headers, "X-Hub-Signature": "sha256=" + "0" * 64}, other_body),
        ("POST", f"/webhooks/{SOURCE}", {k: v for k, v in other_headers.items() if k != "X-Hub-Signature"}, other_body),
        ("POST", f"/webhooks/{SOURCE}", _sign({"X-Atlassian-Webhook-Identifier": "bad-1"}, bad_json), bad_json),
        ("POST", f"/webhooks/{SOURCE}", _sign({"X-Atlassian-Webhook-Identifier": "big-1"}, too_big), too_big),
        ("POST", f"/webhooks/{SOURCE}", {**other_headers, "X-Long": "x" * 9000}, other_body),
        ("POST", f"/webhooks/{SOURCE}", _sign({"X-Atlassian-Webhook-Identifier": "d" * 300}, body), body),
        ("POST", f"/webhooks/{SOURCE}?ignored=1", other_headers, other_body),
        ("POST", "/webhooks/acme-redmine", other_headers, other_body),  # a source that takes no webhooks
        ("POST", "/webhooks/nobody", other_headers, other_body),  # unknown: the router's 404
        ("POST", f"/webhooks/{SOURCE}/", third_headers, third_body),  # the router takes it too
        ("POST", "/webhooks/" + "n" * 101, other_headers, other_body),  # longer than a source name
        ("GET", f"/webhooks/{SOURCE}", {}, b""),
        ("PUT", f"/webhooks/{SOURCE}", other_headers, other_body),
        # no Content-Length (chunked): the cap is enforced while the body streams in
        (
            "POST",
            f"/webhooks/{SOURCE}",
            _sign({"X-Atlassian-Webhook-Identifier": "big-2"}, big),
            [big[:9000], big[9000:]],
        ),
    ]


def _sign(headers: dict[str, str], body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", **headers, "X-Hub-Signature": "sha256=" + hmac_sha256_hex(SECRET, body)}


def _answer(response: Any) -> tuple[int, dict[str, str], Any]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id")}
    if "x-request-id" in response.headers and response.request.headers.get("x-request-id"):
        headers["x-request-id"] = response.headers["x-request-id"]  # an id given is echoed
    body = orjson.loads(response.content) if response.content[:1] == b"{" else response.content
    return response.status_code, headers, body


def _send_all(
    store: Store, fake: FakeJira, requests: list[tuple[str, str, dict[str, str], Any]], *, lean: bool
) -> list[tuple[int, dict[str, str], Any]]:
    with store.engine.begin() as conn:
        conn.execute(delete(webhook_inbox))
    with _client(store, fake, lean=lean) as client:
        answers = [
            _answer(client.request(method, path, headers=headers, content=body))
            for method, path, headers, body in requests
        ]
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(webhook_inbox)).scalar_one()
    assert stored == 3  # the three accepted delivery (the duplicate and the refusals stored nothing)
    return answers


def test_the_lean_path_answers_every_request_as_the_routed_endpoint_does(store: Store) -> None:
    fake = FakeJira(10, seed=5)
    requests = _requests(fake)  # the same bytes to both apps (each delivery id is made once)
    routed = _send_all(store, fake, requests, lean=False)
    lean = _send_all(store, fake, requests, lean=True)
    assert [status for status, _, _ in lean] == [
        *(202, 202, 401, 401, 400, 413, 400, 400, 202),
        *(404, 404, 202, 422, 405, 405, 413),
    ]
    for n, (want, got) in enumerate(zip(routed, lean, strict=True)):
        assert got == want, f"request {n}: {requests[n][:2]}"
    assert lean[0][2] == {"delivery_id": requests[0][2]["X-Atlassian-Webhook-Identifier"], "duplicate": False}
    assert lean[0][1]["x-request-id"] == "req-lean-1"
    assert lean[1][2]["duplicate"] is True


def _route_count(route: str) -> float:
    value = REGISTRY.get_sample_value(
        "opshub_http_request_duration_seconds_count", {"method": "POST", "route": route, "status": "202"}
    )
    return value or 0.0


def test_a_configured_sources_post_skips_the_router_and_keeps_ids_and_metrics(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeJira(10, seed=6)
    app = _app(store, fake, lean=True)
    # The lean path calls the module's `receive_webhook` (looked up at each call); the router
    # calls the endpoint function it captured when the route was declared.
    served: list[str] = []
    original: Callable[..., Any] = webhooks.receive_webhook

    async def spy(source: str, request: Any) -> Any:
        served.append(source)
        return await original(source, request)

    monkeypatch.setattr(webhooks, "receive_webhook", spy)
    before = _route_count("/webhooks/{source}")
    headers, body = _signed(fake, 3)
    with TestClient(app) as client:
        response = client.post(f"/webhooks/{SOURCE}", content=body, headers=headers)
        assert client.post("/webhooks/nobody", content=body, headers=headers).status_code == 404
    assert response.status_code == 202, response.text
    assert response.headers["x-request-id"]  # one made up when the client sent none
    assert served == [SOURCE]  # the configured source's POST took the lean path, the unknown one did not
    assert _route_count("/webhooks/{source}") == before + 1  # labelled by its template, not its path
