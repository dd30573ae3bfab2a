"""What `connectors.base.Connector` now does for every tool: the HTTP
client built from the connector's transport/sleep and closed/counted by the base, a clock,
the webhook body's JSON-object check and the `sha256:` delivery-id fallback."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import orjson
import pytest

from connectors.base import Connector, body_digest
from connectors.registry import connector_class

# The least each tool's config needs (the credentials are fakes; nothing leaves the process).
MINIMAL: dict[str, dict[str, Any]] = {
    "jira": {"base_url": "https://acme.atlassian.net", "email": "ops@acme.com", "api_token": "t", "projects": ["P"]},
    "linear": {"base_url": "https://api.linear.app", "api_key": "k"},
    "github": {"base_url": "https://api.github.com", "token": "t", "repositories": ["octo/api"]},
    "gitlab": {"base_url": "https://gitlab.com", "token": "t", "projects": ["acme/api"]},
    "redmine": {"base_url": "https://redmine.example.com", "api_key": "k"},
    "productboard": {"base_url": "https://api.productboard.com", "token": "t"},
    "aha": {"base_url": "https://acme.aha.io", "api_key": "k", "products": ["PRJ"]},
}

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _connector(tool: str, transport: httpx.AsyncBaseTransport, **extra: Any) -> Connector:
    cls = connector_class(tool)
    config = cls.config_model.model_validate({"tool": tool, **MINIMAL[tool], **extra})
    return cls("src", config, transport=transport, clock=lambda: 1234.5)


@pytest.mark.parametrize("tool", sorted(MINIMAL))
async def test_every_connector_sends_through_its_transport_counts_and_closes(tool: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    connector = _connector(tool, httpx.MockTransport(answer), overlap="90s")
    assert connector.clock() == 1234.5
    assert connector.overlap.total_seconds() == 90
    http = connector.http  # type: ignore[attr-defined]
    await http.get_json("/probe")
    assert len(seen) == 1 and seen[0].url.path.endswith("/probe")
    # The tool's own auth went with it (a header, never the client's defaults).
    assert any(h in seen[0].headers for h in ("authorization", "x-redmine-api-key", "private-token"))
    assert connector.stats()["requests"] == 1
    await connector.aclose()
    assert http._client.is_closed


def test_delivery_id_is_the_first_header_present_else_the_body_digest() -> None:
    body = b'{"a": 1}'
    headers = {"x-gitlab-event-uuid": "uuid-1", "Idempotency-Key": ""}
    assert Connector.delivery_id(headers, body, "Idempotency-Key", "X-Gitlab-Event-UUID") == "uuid-1"
    assert Connector.delivery_id({"IDEMPOTENCY-KEY": "k"}, body, "Idempotency-Key", "X-Gitlab-Event-UUID") == "k"
    fallback = Connector.delivery_id({}, body, "X-GitHub-Delivery")
    assert fallback == body_digest(body) == "sha256:" + hashlib.sha256(body).hexdigest()
    assert Connector.delivery_id({}, b'{"a": 2}', "X-GitHub-Delivery") != fallback


@pytest.mark.parametrize(("body", "message"), [(b"{nope", "not JSON"), (b"[1, 2]", "not a JSON object")])
def test_a_webhook_body_must_be_a_json_object(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Connector.json_object(body)
    if message == "not JSON":
        assert isinstance(caught.value.__cause__, orjson.JSONDecodeError)
    assert Connector.json_object(b'{"ok": true}') == {"ok": True}
